//! RandAugment (Cubuk et al., 2020), the photometric and geometric augmentation Query2Label and
//! ASL train with: each image gets `num_ops` operations drawn uniformly from a fixed list, all at
//! one shared magnitude. The magnitude scale (0 to 30) and each operation's range at full
//! magnitude follow torchvision's `RandAugment`, so published settings (two ops at magnitude 9)
//! mean the same thing here. Every operation is a plain pixel loop over an RGB image.

use image::{Rgb, RgbImage};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// The strongest magnitude (torchvision's 31 bins, numbered 0 to 30).
pub const MAX_MAGNITUDE: u32 = 30;

/// Colour of the pixels that rotation, shear and translation uncover: mid grey, as in the
/// Query2Label and timm implementations, so the border carries no strong signal.
pub const GEOMETRIC_FILL: Rgb<u8> = Rgb([128, 128, 128]);

/// How many operations and how strong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RandAugmentConfig {
    /// Operations applied to each image, drawn independently (the same one may repeat).
    pub num_ops: usize,
    /// Strength of every operation, from 0 (no change) to [`MAX_MAGNITUDE`].
    pub magnitude: u32,
}

impl Default for RandAugmentConfig {
    /// Two operations at magnitude 9, torchvision's defaults and the usual multi-label setting.
    fn default() -> Self {
        RandAugmentConfig {
            num_ops: 2,
            magnitude: 9,
        }
    }
}

/// One RandAugment operation. Operations with a direction (brighter or darker, left or right)
/// pick it at random each time they are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandAugmentOp {
    Identity,
    /// Stretches each channel to the full 0 to 255 range; ignores the magnitude.
    AutoContrast,
    /// Scales all values towards black or beyond (factor 1 ± 0.9 at full magnitude).
    Brightness,
    /// Moves colours towards or away from their grey level (saturation).
    Color,
    /// Moves values towards or away from the image's mean grey level.
    Contrast,
    /// Blends with a smoothed copy, blurring or sharpening edges.
    Sharpness,
    /// Keeps only the top bits of each value (8 bits down to 4 at full magnitude).
    Posterize,
    /// Inverts values at or above a threshold (255 down to 0 at full magnitude).
    Solarize,
    /// Turns about the centre by up to 30 degrees.
    Rotate,
    /// Shears horizontally by up to 0.3 about the centre.
    ShearX,
    /// Shears vertically by up to 0.3 about the centre.
    ShearY,
    /// Shifts horizontally by up to 150/331 of the width.
    TranslateX,
    /// Shifts vertically by up to 150/331 of the height.
    TranslateY,
}

impl RandAugmentOp {
    /// The operations RandAugment draws from.
    pub const ALL: [RandAugmentOp; 13] = [
        RandAugmentOp::Identity,
        RandAugmentOp::AutoContrast,
        RandAugmentOp::Brightness,
        RandAugmentOp::Color,
        RandAugmentOp::Contrast,
        RandAugmentOp::Sharpness,
        RandAugmentOp::Posterize,
        RandAugmentOp::Solarize,
        RandAugmentOp::Rotate,
        RandAugmentOp::ShearX,
        RandAugmentOp::ShearY,
        RandAugmentOp::TranslateX,
        RandAugmentOp::TranslateY,
    ];

    /// Applies this operation at `magnitude` (clamped to [`MAX_MAGNITUDE`]); `rng` picks the
    /// direction where the operation has one.
    pub fn apply(self, image: &RgbImage, magnitude: u32, rng: &mut impl Rng) -> RgbImage {
        let strength = magnitude.min(MAX_MAGNITUDE) as f32 / MAX_MAGNITUDE as f32;
        let mut signed = |amount: f32| {
            if rng.random_bool(0.5) {
                -amount
            } else {
                amount
            }
        };
        let (width, height) = image.dimensions();
        match self {
            RandAugmentOp::Identity => image.clone(),
            RandAugmentOp::AutoContrast => auto_contrast(image),
            RandAugmentOp::Brightness => blend(
                image,
                &RgbImage::new(width, height),
                1.0 + signed(0.9 * strength),
            ),
            RandAugmentOp::Color => blend(image, &greyscale(image), 1.0 + signed(0.9 * strength)),
            RandAugmentOp::Contrast => {
                let mean = mean_luma(image).round() as u8;
                let uniform = RgbImage::from_pixel(width, height, Rgb([mean; 3]));
                blend(image, &uniform, 1.0 + signed(0.9 * strength))
            }
            RandAugmentOp::Sharpness => blend(image, &smooth(image), 1.0 + signed(0.9 * strength)),
            RandAugmentOp::Posterize => posterize(image, 8 - (4.0 * strength).round() as u32),
            RandAugmentOp::Solarize => solarize(image, 255.0 * (1.0 - strength)),
            RandAugmentOp::Rotate => {
                let (sin, cos) = signed(30.0 * strength).to_radians().sin_cos();
                let (centre_x, centre_y) = (width as f32 / 2.0, height as f32 / 2.0);
                warp(image, |x, y| {
                    let (dx, dy) = (x - centre_x, y - centre_y);
                    (
                        centre_x + cos * dx - sin * dy,
                        centre_y + sin * dx + cos * dy,
                    )
                })
            }
            RandAugmentOp::ShearX => {
                let shear = signed(0.3 * strength);
                let centre_y = height as f32 / 2.0;
                warp(image, |x, y| (x + shear * (y - centre_y), y))
            }
            RandAugmentOp::ShearY => {
                let shear = signed(0.3 * strength);
                let centre_x = width as f32 / 2.0;
                warp(image, |x, y| (x, y + shear * (x - centre_x)))
            }
            RandAugmentOp::TranslateX => {
                let shift = signed(150.0 / 331.0 * strength * width as f32);
                warp(image, |x, y| (x - shift, y))
            }
            RandAugmentOp::TranslateY => {
                let shift = signed(150.0 / 331.0 * strength * height as f32);
                warp(image, |x, y| (x, y - shift))
            }
        }
    }
}

/// Applies `config.num_ops` operations drawn uniformly from [`RandAugmentOp::ALL`].
pub fn rand_augment(image: RgbImage, config: &RandAugmentConfig, rng: &mut impl Rng) -> RgbImage {
    (0..config.num_ops).fold(image, |image, _| {
        let op = RandAugmentOp::ALL[rng.random_range(0..RandAugmentOp::ALL.len())];
        op.apply(&image, config.magnitude, rng)
    })
}

/// `degenerate + factor × (image − degenerate)`, the interpolation (and extrapolation beyond
/// factor 1) behind PIL's `ImageEnhance`, which RandAugment's colour operations are defined by.
fn blend(image: &RgbImage, degenerate: &RgbImage, factor: f32) -> RgbImage {
    let mut blended = image.clone();
    for (out, base) in blended.iter_mut().zip(degenerate.iter()) {
        let base = *base as f32;
        *out = (base + factor * (*out as f32 - base))
            .round()
            .clamp(0.0, 255.0) as u8;
    }
    blended
}

/// ITU-R 601 luma, PIL's greyscale conversion.
fn luma(pixel: &Rgb<u8>) -> f32 {
    let [r, g, b] = pixel.0;
    0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32
}

fn greyscale(image: &RgbImage) -> RgbImage {
    let mut grey = image.clone();
    for pixel in grey.pixels_mut() {
        *pixel = Rgb([luma(pixel).round() as u8; 3]);
    }
    grey
}

fn mean_luma(image: &RgbImage) -> f32 {
    let total: f64 = image.pixels().map(|pixel| luma(pixel) as f64).sum();
    (total / (image.width() as f64 * image.height() as f64).max(1.0)) as f32
}

/// PIL's SMOOTH filter (3×3, centre weight 5, the others 1); the one-pixel border keeps its
/// values, as in PIL's sharpness enhancement.
fn smooth(image: &RgbImage) -> RgbImage {
    let (width, height) = image.dimensions();
    let mut smoothed = image.clone();
    for y in 1..height.saturating_sub(1) {
        for x in 1..width.saturating_sub(1) {
            let mut sum = [0.0f32; 3];
            for (dx, dy) in (0..3).flat_map(|dy| (0..3).map(move |dx| (dx, dy))) {
                let weight = if (dx, dy) == (1, 1) { 5.0 } else { 1.0 };
                let neighbour = image.get_pixel(x + dx - 1, y + dy - 1);
                for c in 0..3 {
                    sum[c] += weight * neighbour[c] as f32;
                }
            }
            smoothed.put_pixel(x, y, Rgb(sum.map(|s| (s / 13.0).round() as u8)));
        }
    }
    smoothed
}

/// Stretches each channel so its darkest value becomes 0 and its brightest 255.
fn auto_contrast(image: &RgbImage) -> RgbImage {
    let mut low = [u8::MAX; 3];
    let mut high = [u8::MIN; 3];
    for pixel in image.pixels() {
        for c in 0..3 {
            low[c] = low[c].min(pixel[c]);
            high[c] = high[c].max(pixel[c]);
        }
    }
    let mut stretched = image.clone();
    for pixel in stretched.pixels_mut() {
        for c in 0..3 {
            if high[c] > low[c] {
                let scale = 255.0 / (high[c] - low[c]) as f32;
                pixel[c] = ((pixel[c] - low[c]) as f32 * scale).round() as u8;
            }
        }
    }
    stretched
}

fn posterize(image: &RgbImage, bits: u32) -> RgbImage {
    let mask = (0xFFu32 << (8 - bits.clamp(1, 8))) as u8;
    let mut posterized = image.clone();
    posterized.iter_mut().for_each(|value| *value &= mask);
    posterized
}

fn solarize(image: &RgbImage, threshold: f32) -> RgbImage {
    let mut solarized = image.clone();
    for value in solarized.iter_mut() {
        if *value as f32 >= threshold {
            *value = 255 - *value;
        }
    }
    solarized
}

/// Resamples with nearest neighbours: each output pixel centre `(x + ½, y + ½)` is mapped by
/// `source_of` to a point of the input, and pixels whose point falls outside the input get
/// [`GEOMETRIC_FILL`].
fn warp(image: &RgbImage, source_of: impl Fn(f32, f32) -> (f32, f32)) -> RgbImage {
    let (width, height) = image.dimensions();
    RgbImage::from_fn(width, height, |x, y| {
        let (source_x, source_y) = source_of(x as f32 + 0.5, y as f32 + 0.5);
        let (source_x, source_y) = (source_x.floor(), source_y.floor());
        let inside =
            (0.0..width as f32).contains(&source_x) && (0.0..height as f32).contains(&source_y);
        if inside {
            *image.get_pixel(source_x as u32, source_y as u32)
        } else {
            GEOMETRIC_FILL
        }
    })
}
