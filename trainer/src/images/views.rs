//! The views of one photo that `trainer extract --views N` caches, so that training on frozen
//! features still sees augmented photos: view 0 is the plain evaluation input, view 1 its mirror
//! image, and views 2.. are random resized crops.
//!
//! The mirror is taken after the resize, of the very pixels of view 0, so that view 1 is what a
//! test-time flip of the evaluation input gives (see [`crate::flip_tta`]). The crops are milder
//! than torchvision's `RandomResizedCrop` (at least half the photo, see
//! [`RandomResizedCropConfig::default`]): a multi-label photo cropped to a small patch has lost
//! most of its labelled objects. Every view is brought to the input size, so all views of a
//! cache have the same feature shape.
//!
//! A crop's randomness is a function of (seed, image index, view) alone, so extracting again
//! gives the same cache, whatever the batching or the number of threads.

use image::DynamicImage;
use querylabel::preprocess::Preprocessing;
use rayon::prelude::*;

use super::augment::{AugmentationConfig, RandomResizedCropConfig, augment, augmentation_rng};
use super::loader::{ImageRequest, LoadedBatch, load_each, read_image};

/// The view that is the plain evaluation input; validation and evaluation use it alone.
pub const PLAIN_VIEW: usize = 0;
/// The view that is the mirror image of [`PLAIN_VIEW`].
pub const MIRRORED_VIEW: usize = 1;
/// The first view that is a random resized crop.
pub const FIRST_CROP_VIEW: usize = 2;

/// Which views of each photo to make.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoViews {
    /// Views per photo, at least 1.
    pub count: usize,
    /// Seed of the crops of views 2...
    pub seed: u64,
    /// Ranges of those crops.
    pub crop: RandomResizedCropConfig,
}

impl PhotoViews {
    /// `count` views with the default crop ranges.
    pub fn new(count: usize, seed: u64) -> Self {
        PhotoViews {
            count,
            seed,
            crop: RandomResizedCropConfig::default(),
        }
    }

    /// Whether any view is random (a crop), which makes the seed and crop ranges matter.
    pub fn has_crops(&self) -> bool {
        self.count > FIRST_CROP_VIEW
    }

    /// The views of one decoded photo, each normalised CHW at the input size of `preprocessing`.
    /// `image_index` is the photo's stable index in its data set.
    pub fn render(
        &self,
        image: &DynamicImage,
        image_index: u64,
        preprocessing: &Preprocessing,
    ) -> Vec<Vec<f32>> {
        let plain = preprocessing.image_to_chw(image);
        let mut views = Vec::with_capacity(self.count);
        if self.count > MIRRORED_VIEW {
            views.push(mirror_chw(&plain, preprocessing.width));
        }
        let crop_only = AugmentationConfig {
            random_resized_crop: Some(self.crop.clone()),
            ..AugmentationConfig::disabled()
        };
        for view in FIRST_CROP_VIEW..self.count {
            let mut rng = augmentation_rng(view_seed(self.seed, view), image_index);
            let cropped = augment(
                image,
                preprocessing.width as u32,
                preprocessing.height as u32,
                &crop_only,
                &mut rng,
            );
            views.push(preprocessing.rgb_to_chw(cropped.as_raw()));
        }
        views.insert(PLAIN_VIEW, plain);
        views
    }

    /// Reads `requests` in parallel on the current rayon pool and renders their views. Each
    /// entry of the result's `images` holds all `count` views of one photo, one after another
    /// (`[count, 3, height, width]` values); unreadable files are skipped with a warning, as in
    /// [`super::ImageLoader::load_batch`].
    pub fn load_batch(
        &self,
        requests: &[ImageRequest],
        preprocessing: &Preprocessing,
    ) -> LoadedBatch {
        let results = requests
            .par_iter()
            .map(|request| {
                let image = read_image(&request.path)?;
                Ok(self.render(&image, request.index, preprocessing).concat())
            })
            .collect();
        load_each(requests, results)
    }
}

/// The seed of view `view`'s crop: a different generator key per view, and the image index
/// selects the stream within it (see [`augmentation_rng`]).
fn view_seed(seed: u64, view: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(view as u64)
}

/// The left-right mirror image of normalised CHW values of width `width`.
pub fn mirror_chw(chw: &[f32], width: usize) -> Vec<f32> {
    chw.chunks_exact(width.max(1))
        .flat_map(|row| row.iter().rev().copied())
        .collect()
}
