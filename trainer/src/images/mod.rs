//! From image files to network input for training and evaluation: reproducible augmentation,
//! the cached views of `trainer extract --views`, parallel batch loading that skips bad files,
//! and prefetching of the next batch.

pub mod augment;
pub mod loader;
pub mod prefetch;
pub mod rand_augment;
pub mod views;

pub use augment::{
    AugmentationConfig, CutoutConfig, CutoutFill, RandomResizedCropConfig, Region, augment,
    augmentation_rng,
};
pub use loader::{
    ImageLoader, ImageRequest, LoadedBatch, SkipReason, SkippedImage, read_image, read_photo_file,
};
pub use prefetch::{Prefetched, prefetch};
pub use rand_augment::{RandAugmentConfig, RandAugmentOp};
pub use views::{MIRRORED_VIEW, PLAIN_VIEW, PhotoViews};
