//! `trainer extract`: runs a frozen backbone once over a data set and writes its features to a
//! [`FeatureCache`], for fast linear-head and frozen-backbone training.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use half::f16;
use indicatif::{ProgressBar, ProgressStyle};
use querylabel::backbone::{BackboneConfig, BackboneKind};
use querylabel::pooling::global_average_pool;
use querylabel::preprocess::Preprocessing;

use crate::backend::BackendChoice;
use crate::dataset::{DatasetFormat, Split, open_dataset};
use crate::feature_cache::{FEATURE_CACHE_VERSION, FeatureCache, FeatureCacheHeader};
use crate::images::{ImageLoader, ImageRequest, prefetch};
use crate::weights::pretrained_backbone;

/// What to extract.
#[derive(Clone, Debug)]
pub struct ExtractOptions {
    pub data: PathBuf,
    pub format: Option<DatasetFormat>,
    pub split: Split,
    pub backbone: BackboneKind,
    pub backbone_weights: Option<PathBuf>,
    pub image_size: usize,
    /// Average each feature map to one vector (enough for linear heads, 1/49 of the size).
    pub pooled: bool,
    pub batch_size: usize,
    /// Extract only the first this many images (for quick runs).
    pub max_images: Option<usize>,
    pub backend: BackendChoice,
    pub device: usize,
}

/// Extracts the features of every readable image and writes the cache to `out`.
pub fn extract_features(options: &ExtractOptions, out: &Path) -> Result<FeatureCacheHeader> {
    let mut dataset = open_dataset(&options.data, options.format, options.split)?;
    if let Some(limit) = options.max_images {
        let first: Vec<usize> = (0..dataset.len().min(limit)).collect();
        dataset = dataset.subset(&first);
    }
    let device = options.backend.device(options.device);
    let backbone = pretrained_backbone(
        &BackboneConfig::new(options.backbone).with_frozen_bn(true),
        options.backbone_weights.as_deref(),
        &device,
    )?
    .valid();
    let loader = ImageLoader {
        preprocessing: Preprocessing::imagenet(options.image_size),
        augmentation: None,
    };
    let preprocessing = loader.preprocessing.clone();

    let progress = ProgressBar::new(dataset.len() as u64).with_style(
        ProgressStyle::with_template("extract [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let requests: Vec<ImageRequest> = dataset
        .examples
        .iter()
        .enumerate()
        .map(|(index, example)| ImageRequest {
            path: example.path.clone(),
            index: index as u64,
        })
        .collect();
    let chunks: Vec<Vec<ImageRequest>> = requests
        .chunks(options.batch_size.max(1))
        .map(<[ImageRequest]>::to_vec)
        .collect();
    let batches = prefetch(
        chunks.into_iter().map(move |chunk| {
            let batch = loader.load_batch(&chunk, 0);
            (chunk, batch)
        }),
        1,
    );

    let n_classes = dataset.n_classes();
    let all_labels = dataset.label_matrix();
    let (mut features, mut labels, mut images, mut skipped) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut feature_shape = None;
    for (chunk, batch) in batches {
        progress.inc(chunk.len() as u64);
        skipped.extend(batch.skipped.iter().map(|s| s.path.clone()));
        if batch.images.is_empty() {
            continue;
        }
        let mut maps = backbone.forward_features(preprocessing.batch(&batch.images, &device));
        if options.pooled {
            let [b, c, _, _] = maps.dims();
            maps = global_average_pool(maps).reshape([b, c, 1, 1]);
        }
        let [_, c, h, w] = maps.dims();
        feature_shape = Some([c, h, w]);
        let values = maps
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("float features");
        features.extend(values.into_iter().map(f16::from_f32));
        for &position in &batch.kept {
            let row = chunk[position].index as usize;
            images.push(chunk[position].path.clone());
            labels.extend(
                all_labels[row * n_classes..(row + 1) * n_classes]
                    .iter()
                    .map(|&label| u8::from(label > 0.5)),
            );
        }
    }
    progress.finish_and_clear();
    let Some(feature_shape) = feature_shape else {
        bail!(
            "{}: none of its {} images could be read",
            options.data.display(),
            dataset.len()
        );
    };
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "extracted {} images in {elapsed:.0} s ({:.1} images/s){}",
        images.len(),
        images.len() as f64 / elapsed.max(1e-9),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable images skipped", skipped.len())
        }
    );
    let header = FeatureCacheHeader {
        format_version: FEATURE_CACHE_VERSION,
        backbone: options.backbone,
        backbone_weights: options.backbone_weights.clone(),
        image_size: options.image_size,
        pooled: options.pooled,
        feature_shape,
        label_space: dataset.label_space.clone(),
        source: options.data.clone(),
        split: options.split,
        images,
        skipped,
    };
    let cache = FeatureCache::new(header, features, labels)?;
    cache.write(out)?;
    Ok(cache.header)
}
