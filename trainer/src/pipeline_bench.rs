//! Throughput of the training data pipeline, the work that feeds a backend: read each photo,
//! decode it (with the damaged-JPEG check), augment it as `trainer train` does, resize and
//! normalise it, in parallel on every core of the machine, as training loads its batches. On
//! a GPU this has to keep up with the training step, or the GPU waits; nothing here touches a
//! backend, and nothing asserts a time.

use std::path::Path;
use std::time::Instant;

use querylabel::preprocess::Preprocessing;
use serde::Serialize;

use crate::dataset::{Split, open_dataset};
use crate::error::{Result, TrainerError};
use crate::images::{AugmentationConfig, ImageLoader, ImageRequest};

/// Photos loaded per batch, as a training batch would (in parallel within it).
const PIPELINE_BATCH: usize = 256;

/// The pipeline's throughput over one data set.
#[derive(Debug, Serialize)]
pub struct PipelineResult {
    pub work: &'static str,
    pub data: String,
    /// Threads of the pool the batches load on (every core unless `RAYON_NUM_THREADS` says).
    pub threads: usize,
    pub image_size: usize,
    /// Photos loaded in the timed passes, and the ones skipped as unreadable.
    pub images: usize,
    pub skipped: usize,
    pub images_per_second: f64,
}

/// Loads every photo of the data set in `data` with training's augmentation at `image_size`,
/// once untimed (so that the files are in the page cache, as from the second epoch on) and
/// then `passes` times timed.
pub fn bench_pipeline(data: &Path, image_size: usize, passes: usize) -> Result<PipelineResult> {
    let dataset = open_dataset(data, None, Split::Train)?;
    if dataset.is_empty() {
        return Err(TrainerError::new("holds no photo to load").in_file(data));
    }
    let loader = ImageLoader {
        preprocessing: Preprocessing::imagenet(image_size),
        augmentation: Some(AugmentationConfig::default()),
    };
    let requests: Vec<ImageRequest> = (dataset.examples.iter().enumerate())
        .map(|(index, example)| ImageRequest {
            path: example.path.clone(),
            index: index as u64,
        })
        .collect();
    let load_all = |seed: u64| {
        let (mut loaded, mut skipped) = (0, 0);
        for batch in requests.chunks(PIPELINE_BATCH) {
            let batch = loader.load_batch(batch, seed);
            loaded += batch.images.len();
            skipped += batch.skipped.len();
        }
        (loaded, skipped)
    };
    load_all(0);
    let started = Instant::now();
    let (mut images, mut skipped) = (0, 0);
    for pass in 1..=passes as u64 {
        let (loaded, left_out) = load_all(pass);
        images += loaded;
        skipped += left_out;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(PipelineResult {
        work: "pipeline",
        data: data.display().to_string(),
        threads: rayon::current_num_threads(),
        image_size,
        images,
        skipped,
        images_per_second: images as f64 / seconds,
    })
}
