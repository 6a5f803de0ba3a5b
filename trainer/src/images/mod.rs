//! From image files to network input for training and evaluation: reproducible augmentation,
//! parallel batch loading that skips bad files, and prefetching of the next batch.

pub mod augment;
pub mod loader;
pub mod prefetch;
pub mod rand_augment;

pub use augment::{
    AugmentationConfig, CutoutConfig, CutoutFill, RandomResizedCropConfig, Region, augment,
    augmentation_rng,
};
pub use loader::{ImageLoader, ImageRequest, LoadedBatch, SkipReason, SkippedImage};
pub use prefetch::{Prefetched, prefetch};
pub use rand_augment::{RandAugmentConfig, RandAugmentOp};
