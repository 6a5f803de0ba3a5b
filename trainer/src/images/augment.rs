//! Training-time image augmentation, reproducible from a seed.
//!
//! The pipeline follows Query2Label's training transform: bring the photo to the network's input
//! size first (so every later operation works on the small image and costs little), then
//! optionally flip it, cut random holes into it (Cutout) and apply RandAugment. A random resized
//! crop can replace the plain resize but is off by default: Query2Label squashes the whole photo,
//! and with single positive labels a crop that loses the one labelled object teaches the wrong
//! thing.
//!
//! All randomness comes from the generator passed in. [`augmentation_rng`] derives one generator
//! per image from a seed and the image's index, so an epoch's augmentations are the same whatever
//! order or thread the images are processed in, and an interrupted run resumes exactly.

use image::imageops::{self, FilterType};
use image::{DynamicImage, Rgb, RgbImage};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::rand_augment::{RandAugmentConfig, rand_augment};

/// Which augmentations run; `None` (or `false`) switches one off. Missing fields take the
/// defaults when deserialising, so a configuration file names only what it changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentationConfig {
    /// Mirror left-right with probability ½.
    pub horizontal_flip: bool,
    /// Crop a random region and resize it to the input size, instead of resizing the whole image.
    pub random_resized_crop: Option<RandomResizedCropConfig>,
    /// Fill random rectangles with one colour.
    pub cutout: Option<CutoutConfig>,
    /// Random photometric and geometric operations.
    pub rand_augment: Option<RandAugmentConfig>,
}

impl Default for AugmentationConfig {
    /// Query2Label's and ASL's training recipe (Cutout at half the image size, RandAugment with
    /// two operations at magnitude 9) plus a horizontal flip, which is label-preserving for
    /// everyday photos; no crop, for the reason given in the module documentation.
    fn default() -> Self {
        AugmentationConfig {
            horizontal_flip: true,
            random_resized_crop: None,
            cutout: Some(CutoutConfig::default()),
            rand_augment: Some(RandAugmentConfig::default()),
        }
    }
}

impl AugmentationConfig {
    /// Every augmentation off: [`augment`] then only resizes.
    pub fn disabled() -> Self {
        AugmentationConfig {
            horizontal_flip: false,
            random_resized_crop: None,
            cutout: None,
            rand_augment: None,
        }
    }
}

/// torchvision's `RandomResizedCrop` ranges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandomResizedCropConfig {
    /// Range of the crop's area as a fraction of the image's area.
    pub scale: [f32; 2],
    /// Range of the crop's aspect ratio (width / height), sampled uniformly in log space.
    pub ratio: [f32; 2],
}

impl Default for RandomResizedCropConfig {
    /// torchvision's aspect ratios, but at least half the image's area rather than 8%, because a
    /// multi-label photo cropped to a small patch has lost most of its labelled objects.
    fn default() -> Self {
        RandomResizedCropConfig {
            scale: [0.5, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }
    }
}

/// Query2Label's `CutoutPIL`: square-ish holes with uniformly random centres, clipped at the
/// border, so a hole near an edge is smaller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CutoutConfig {
    /// Number of holes per image.
    pub holes: usize,
    /// Hole width and height as a fraction of the image's width and height.
    pub size_fraction: f32,
    /// What the holes are filled with.
    pub fill: CutoutFill,
}

impl Default for CutoutConfig {
    /// One hole of half the image's size with a random colour, Query2Label's setting.
    fn default() -> Self {
        CutoutConfig {
            holes: 1,
            size_fraction: 0.5,
            fill: CutoutFill::Random,
        }
    }
}

/// Colour of a Cutout hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutoutFill {
    /// A new random colour for each hole (Query2Label).
    Random,
    /// The image's mean colour, so the hole shifts the image statistics least.
    Mean,
    /// One fixed colour.
    Constant([u8; 3]),
}

/// A rectangle of an image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// The generator for augmenting image `image_index` with seed `seed`: a ChaCha8 stream selected
/// by the index, so images never share random numbers and each can be redone on its own.
pub fn augmentation_rng(seed: u64, image_index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(image_index);
    rng
}

/// Augments `image` and returns it at `width` × `height`. With [`AugmentationConfig::disabled`]
/// this is exactly the resize that `Preprocessing::image_to_chw` does itself.
pub fn augment(
    image: &DynamicImage,
    width: u32,
    height: u32,
    config: &AugmentationConfig,
    rng: &mut impl Rng,
) -> RgbImage {
    // The same filter as `Preprocessing::image_to_chw`, so that disabling every augmentation
    // gives exactly the evaluation input.
    let resize = |image: &DynamicImage| image.resize_exact(width, height, FilterType::Triangle);
    let mut augmented = match &config.random_resized_crop {
        Some(crop) => {
            let region = random_resized_crop_region(image.width(), image.height(), crop, rng);
            resize(&image.crop_imm(region.x, region.y, region.width, region.height))
        }
        None => resize(image),
    }
    .to_rgb8();
    if config.horizontal_flip && rng.random_bool(0.5) {
        imageops::flip_horizontal_in_place(&mut augmented);
    }
    if let Some(cutout_config) = &config.cutout {
        cutout(&mut augmented, cutout_config, rng);
    }
    match &config.rand_augment {
        Some(rand_augment_config) => rand_augment(augmented, rand_augment_config, rng),
        None => augmented,
    }
}

/// Picks a crop as torchvision's `RandomResizedCrop` does: up to ten tries at a random area and
/// aspect ratio within the configured ranges; if none fits inside the image, the whole image.
pub fn random_resized_crop_region(
    image_width: u32,
    image_height: u32,
    config: &RandomResizedCropConfig,
    rng: &mut impl Rng,
) -> Region {
    const ATTEMPTS: usize = 10;
    let area = image_width as f32 * image_height as f32;
    let [log_ratio_low, log_ratio_high] = config.ratio.map(f32::ln);
    for _ in 0..ATTEMPTS {
        let target_area = area * uniform(rng, config.scale[0], config.scale[1]);
        let aspect_ratio = uniform(rng, log_ratio_low, log_ratio_high).exp();
        let width = (target_area * aspect_ratio).sqrt().round() as u32;
        let height = (target_area / aspect_ratio).sqrt().round() as u32;
        if (1..=image_width).contains(&width) && (1..=image_height).contains(&height) {
            return Region {
                x: rng.random_range(0..=image_width - width),
                y: rng.random_range(0..=image_height - height),
                width,
                height,
            };
        }
    }
    Region {
        x: 0,
        y: 0,
        width: image_width,
        height: image_height,
    }
}

/// Fills `config.holes` rectangles, each centred on a uniformly random pixel and clipped to the
/// image. With [`CutoutFill::Mean`] the colour is the mean before any hole is cut.
pub fn cutout(image: &mut RgbImage, config: &CutoutConfig, rng: &mut impl Rng) {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return;
    }
    let hole_width = (config.size_fraction * width as f32).round() as u32;
    let hole_height = (config.size_fraction * height as f32).round() as u32;
    let mean = mean_colour(image);
    for _ in 0..config.holes {
        let centre_x = rng.random_range(0..width);
        let centre_y = rng.random_range(0..height);
        let fill = match config.fill {
            CutoutFill::Random => Rgb(rng.random::<[u8; 3]>()),
            CutoutFill::Mean => mean,
            CutoutFill::Constant(colour) => Rgb(colour),
        };
        let (left, right) = (
            centre_x.saturating_sub(hole_width / 2),
            (centre_x + hole_width / 2).min(width),
        );
        let (top, bottom) = (
            centre_y.saturating_sub(hole_height / 2),
            (centre_y + hole_height / 2).min(height),
        );
        for y in top..bottom {
            for x in left..right {
                image.put_pixel(x, y, fill);
            }
        }
    }
}

fn mean_colour(image: &RgbImage) -> Rgb<u8> {
    let mut sums = [0u64; 3];
    for pixel in image.pixels() {
        for (sum, value) in sums.iter_mut().zip(pixel.0) {
            *sum += value as u64;
        }
    }
    let count = (image.width() as u64 * image.height() as u64).max(1);
    Rgb(sums.map(|sum| ((sum + count / 2) / count) as u8))
}

/// A uniform sample from `[low, high)`; unlike `random_range` it accepts an empty range
/// (`low == high`), which a configuration like `scale: [1, 1]` asks for.
fn uniform(rng: &mut impl Rng, low: f32, high: f32) -> f32 {
    low + (high - low) * rng.random::<f32>()
}
