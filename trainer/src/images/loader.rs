//! Loading a batch of image files into network input, in parallel on the rayon pool.
//!
//! One bad file must not end a long training run, so a file that cannot be read or decoded is
//! skipped with a warning that names it and the reason, and the batch reports which requests it
//! kept; the caller drops the matching labels. Augmentation of each image draws from its own
//! generator (see [`augmentation_rng`]), so a batch is identical however many threads load it.

use std::fmt;
use std::path::{Path, PathBuf};

use image::DynamicImage;
use querylabel::preprocess::{ImageError, MAX_PHOTO_FILE_BYTES, Preprocessing, decode_image};
use rayon::prelude::*;

use super::augment::{AugmentationConfig, augment, augmentation_rng};

/// One image to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRequest {
    pub path: PathBuf,
    /// The image's stable index in its data set, which selects its augmentation generator, so
    /// that the same image gets the same augmentation in a given epoch wherever it is batched.
    pub index: u64,
}

/// Turns image files into normalised CHW values, with training augmentation or without.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageLoader {
    pub preprocessing: Preprocessing,
    /// `None` for evaluation and prediction: the image is only resized and normalised.
    pub augmentation: Option<AugmentationConfig>,
}

/// The images of a batch that loaded, and the ones that did not.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedBatch {
    /// Normalised CHW values, ready for `Preprocessing::batch`, in request order.
    pub images: Vec<Vec<f32>>,
    /// For each entry of `images`, its position in the request slice.
    pub kept: Vec<usize>,
    /// The requests that were skipped, in request order.
    pub skipped: Vec<SkippedImage>,
}

/// A file left out of a batch, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedImage {
    /// Position in the request slice.
    pub position: usize,
    pub path: PathBuf,
    pub reason: SkipReason,
}

/// Why a file was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The file could not be read (missing, no permission, I/O error).
    Unreadable(String),
    /// Not an image format we read, or a corrupt or truncated one.
    Undecodable(String),
    /// Larger than the decoding limits of `querylabel::preprocess`.
    TooLarge(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Unreadable(why) => write!(f, "cannot read the file: {why}"),
            SkipReason::Undecodable(why) => write!(f, "not a readable image: {why}"),
            SkipReason::TooLarge(why) => write!(f, "image too large: {why}"),
        }
    }
}

impl fmt::Display for SkippedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl From<ImageError> for SkipReason {
    fn from(error: ImageError) -> Self {
        match error {
            ImageError::Decode(why) => SkipReason::Undecodable(why),
            ImageError::TooLarge(why) => SkipReason::TooLarge(why),
        }
    }
}

impl ImageLoader {
    /// Loads `requests` in parallel on the current rayon pool, augmenting with `seed` (the
    /// epoch's seed; ignored without augmentation). Prints a warning for each skipped file. The
    /// result may hold fewer images than requested, or none.
    pub fn load_batch(&self, requests: &[ImageRequest], seed: u64) -> LoadedBatch {
        let results = requests
            .par_iter()
            .map(|request| self.load_image(request, seed))
            .collect();
        load_each(requests, results)
    }

    /// Loads one image: read, decode, augment (if configured), normalise to CHW.
    pub fn load_image(&self, request: &ImageRequest, seed: u64) -> Result<Vec<f32>, SkipReason> {
        let image = read_image(&request.path)?;
        Ok(match &self.augmentation {
            Some(config) => {
                let mut rng = augmentation_rng(seed, request.index);
                let (width, height) = (
                    self.preprocessing.width as u32,
                    self.preprocessing.height as u32,
                );
                let augmented = augment(&image, width, height, config, &mut rng);
                self.preprocessing
                    .image_to_chw(&DynamicImage::ImageRgb8(augmented))
            }
            None => self.preprocessing.image_to_chw(&image),
        })
    }
}

/// Sorts the loading results of `requests` (one each, in order) into the kept images and the
/// skipped files, printing a warning for each skipped one.
pub(crate) fn load_each(
    requests: &[ImageRequest],
    results: Vec<Result<Vec<f32>, SkipReason>>,
) -> LoadedBatch {
    let mut batch = LoadedBatch {
        images: Vec::with_capacity(requests.len()),
        kept: Vec::with_capacity(requests.len()),
        skipped: Vec::new(),
    };
    for (position, (request, result)) in requests.iter().zip(results).enumerate() {
        match result {
            Ok(image) => {
                batch.images.push(image);
                batch.kept.push(position);
            }
            Err(reason) => {
                let skipped = SkippedImage {
                    position,
                    path: request.path.clone(),
                    reason,
                };
                eprintln!("warning: skipping image {skipped}");
                batch.skipped.push(skipped);
            }
        }
    }
    batch
}

/// Reads and decodes one file with the shared decoder (size limits, truncated JPEGs refused).
pub fn read_image(path: &Path) -> Result<DynamicImage, SkipReason> {
    Ok(decode_image(&read_photo_file(path)?)?)
}

/// Reads a photo file whole, refusing one larger than [`MAX_PHOTO_FILE_BYTES`] before reading.
pub fn read_photo_file(path: &Path) -> Result<Vec<u8>, SkipReason> {
    let unreadable = |error: std::io::Error| SkipReason::Unreadable(error.to_string());
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_PHOTO_FILE_BYTES {
        return Err(SkipReason::TooLarge(format!(
            "the file has {size} bytes ({:.0} MiB); photo files of up to {} MiB are read",
            size as f64 / 1048576.0,
            MAX_PHOTO_FILE_BYTES / 1048576
        )));
    }
    std::fs::read(path).map_err(unreadable)
}
