//! `trainer extract`: runs a frozen backbone once over a data set and writes its features to a
//! [`FeatureCache`], for fast linear-head and frozen-backbone training. With `--views N` it
//! caches N views of each photo (plain, mirrored, random crops; see [`crate::images::views`]),
//! so that training on the cache still sees augmented photos.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use half::f16;
use indicatif::{ProgressBar, ProgressStyle};
use querylabel::backbone::{BackboneConfig, BackboneKind};
use querylabel::pooling::global_average_pool;
use querylabel::preprocess::Preprocessing;
use serde::Serialize;

use crate::backend::BackendChoice;
use crate::dataset::{Dataset, DatasetFormat, Split, open_dataset};
use crate::error::{Result, TrainerError};
use crate::extract_parts::ExtractionParts;
use crate::fault_points::pause_if_asked;
use crate::feature_cache::{FEATURE_CACHE_VERSION, FeatureCache, FeatureCacheHeader, ViewCrops};
use crate::images::{ImageRequest, LoadedBatch, PhotoViews, prefetch};
use crate::weights::pretrained_backbone;

/// Views per photo when `--views` is not given: the plain photo alone, the cache of before
/// views existed.
pub const DEFAULT_VIEWS: usize = 1;
/// Seed of the random-crop views when `--seed` is not given.
pub const DEFAULT_VIEW_SEED: u64 = 1;
/// Seconds of extraction between the parts a killed extraction continues from, unless
/// `--part-seconds` says: at most this much work is lost, for a write of what it made.
pub const DEFAULT_PART_SECONDS: u64 = 300;

/// What to extract. Serialised, it is the record a killed extraction's parts are kept under
/// (extract_parts): everything but what does not change the features.
#[derive(Clone, Debug, Serialize)]
pub struct ExtractOptions {
    pub data: PathBuf,
    pub format: Option<DatasetFormat>,
    pub split: Split,
    pub backbone: BackboneKind,
    pub backbone_weights: Option<PathBuf>,
    pub image_size: usize,
    /// Average each feature map to one vector (enough for linear heads, 1/49 of the size).
    pub pooled: bool,
    /// Backbone inputs per batch (views count: a batch holds `batch_size / views` photos).
    pub batch_size: usize,
    /// Views per photo: 1 the plain photo, 2 adds its mirror image, more add random crops.
    pub views: usize,
    /// Seed of the random crops (views 2..).
    pub view_seed: u64,
    /// Extract only the first this many images (for quick runs).
    pub max_images: Option<usize>,
    /// Write a part (extract_parts) after whole batches once this many seconds have passed
    /// since the last (0: after every batch).
    #[serde(skip)]
    pub part_seconds: u64,
    pub backend: BackendChoice,
    #[serde(skip)]
    pub device: usize,
}

/// Extracts the features of every readable image and writes the cache to `out`.
pub fn extract_features(options: &ExtractOptions, out: &Path) -> Result<FeatureCacheHeader> {
    let dataset = extraction_dataset(options)?;
    let device = options.backend.device(options.device);
    let backbone = pretrained_backbone(
        &BackboneConfig::new(options.backbone).with_frozen_bn(true),
        options.backbone_weights.as_deref(),
        &device,
    )?
    .valid()
    .fold_batch_norms();
    let preprocessing = Preprocessing::imagenet(options.image_size);
    let views = PhotoViews::new(options.views, options.view_seed);
    let n_views = views.count;
    let progress = ProgressBar::new((dataset.len() * n_views) as u64).with_style(
        ProgressStyle::with_template("extract [{bar:30}] {pos}/{len} views {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut extracted = Extracted {
        all_labels: dataset.label_matrix(),
        n_classes: dataset.n_classes(),
        ..Extracted::default()
    };
    let (parts, photos_done, done) = ExtractionParts::open(out, options, dataset.len())?;
    for part in done {
        extracted.append(part);
    }
    if photos_done > 0 {
        progress.suspend(|| {
            eprintln!(
                "continuing a killed extraction after its first {photos_done} photos (their \
                 parts are beside the cache)"
            )
        });
    }
    let from_parts = extracted.images.len();
    progress.set_position((photos_done * n_views) as u64);
    let mut part = PartStart::at(photos_done, &extracted);
    let mut last_part = Instant::now();
    let batches = view_batches(
        &dataset,
        &views,
        &preprocessing,
        options.batch_size,
        photos_done,
    );
    for (chunk, batch) in batches {
        progress.inc((chunk.len() * n_views) as u64);
        (extracted.skipped).extend(batch.skipped.iter().map(|s| s.path.clone()));
        if batch.images.is_empty() {
            continue;
        }
        // Each loaded entry holds a photo's views one after another, so the batch's rows are
        // photo-major, the cache's layout.
        let inputs = batch.images.len() * n_views;
        let shape = [inputs, 3, preprocessing.height, preprocessing.width];
        let input = Tensor::<4>::from_data(TensorData::new(batch.images.concat(), shape), &device);
        let mut maps = backbone.forward_features(input);
        if options.pooled {
            let [b, c, _, _] = maps.dims();
            maps = global_average_pool(maps).reshape([b, c, 1, 1]);
        }
        if extracted.feature_shape.is_none() {
            let [_, c, h, w] = maps.dims();
            let bytes = dataset.len() * n_views * c * h * w * std::mem::size_of::<f16>();
            progress.suspend(|| {
                eprintln!(
                    "extracting {} images × {} × {c}×{h}×{w} half floats: a cache of up to {}, \
                     held in memory until it is written",
                    dataset.len(),
                    view_count(n_views),
                    human_bytes(bytes)
                )
            });
        }
        extracted.add(maps, &chunk, &batch.kept);
        let photos_after = chunk.last().map_or(0, |request| request.index as usize + 1);
        if last_part.elapsed().as_secs() >= options.part_seconds {
            extracted.write_part(&parts, (&part, photos_after), options, &views, &dataset)?;
            part = PartStart::at(photos_after, &extracted);
            last_part = Instant::now();
            pause_if_asked("extract-part");
        }
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let skipped = match extracted.skipped.len() {
        0 => String::new(),
        skipped => format!(", {skipped} unreadable images skipped"),
    };
    let now = extracted.images.len() - from_parts;
    let continued = match from_parts {
        0 => String::new(),
        _ => format!(" (and {from_parts} from the killed run's parts)"),
    };
    eprintln!(
        "extracted {now} images × {} in {elapsed:.0} s ({:.1} views/s){continued}{skipped}",
        view_count(n_views),
        (now * n_views) as f64 / elapsed.max(1e-9),
    );
    let cache = match extracted.into_cache(options, &views, &dataset) {
        Ok(cache) => cache,
        Err(error) => {
            // Nothing worth continuing from: no photo could be read.
            let _ = parts.remove();
            return Err(error);
        }
    };
    cache.write(out)?;
    parts.remove()?;
    let size = human_bytes(cache.feature_bytes());
    eprintln!("wrote {} ({size})", out.display());
    Ok(cache.header)
}

/// The data set to extract: its first `--max-images` photos, or all.
fn extraction_dataset(options: &ExtractOptions) -> Result<Dataset> {
    if options.views == 0 {
        return Err(
            TrainerError::new("every photo needs at least its plain view")
                .at_flag_value("--views", 0)
                .with_hint(
                    "give --views 1 (the plain photo), 2 (and its mirror image) or more (and \
                     random crops)",
                ),
        );
    }
    let dataset = open_dataset(&options.data, options.format, options.split)?;
    Ok(match options.max_images {
        Some(limit) => dataset.subset(&(0..dataset.len().min(limit)).collect::<Vec<_>>()),
        None => dataset,
    })
}

/// The photos of `dataset` in batches of `batch_size` inputs (a photo's views count), loaded
/// one batch ahead on another thread.
fn view_batches(
    dataset: &Dataset,
    views: &PhotoViews,
    preprocessing: &Preprocessing,
    batch_size: usize,
    first_photo: usize,
) -> impl Iterator<Item = (Vec<ImageRequest>, LoadedBatch)> + use<> {
    let requests: Vec<ImageRequest> = (dataset.examples.iter().enumerate())
        .map(|(index, example)| ImageRequest {
            path: example.path.clone(),
            index: index as u64,
        })
        .collect();
    let photos_per_batch = (batch_size / views.count).max(1);
    // Parts end on whole batches (extract_parts), so the batches after them are those of a run
    // that was never killed.
    let chunks: Vec<Vec<ImageRequest>> = (requests.chunks(photos_per_batch))
        .skip(first_photo / photos_per_batch)
        .map(<[ImageRequest]>::to_vec)
        .collect();
    let (views, preprocessing) = (views.clone(), preprocessing.clone());
    let load = move |chunk: Vec<ImageRequest>| {
        let batch = views.load_batch(&chunk, &preprocessing);
        (chunk, batch)
    };
    prefetch(chunks.into_iter().map(load), 1)
}

/// Where the part being gathered starts: its first photo (data-set position) and the lengths
/// of what [`Extracted`] held then.
struct PartStart {
    first: usize,
    features: usize,
    labels: usize,
    images: usize,
    skipped: usize,
}

impl PartStart {
    fn at(first: usize, extracted: &Extracted) -> Self {
        Self {
            first,
            features: extracted.features.len(),
            labels: extracted.labels.len(),
            images: extracted.images.len(),
            skipped: extracted.skipped.len(),
        }
    }
}

/// What extraction has gathered so far: features photo-major in half precision, with each
/// kept photo's labels and path.
#[derive(Default)]
struct Extracted {
    /// The data set's `[images, classes]` labels, which `labels` copies for kept photos.
    all_labels: Vec<f32>,
    n_classes: usize,
    features: Vec<f16>,
    labels: Vec<u8>,
    images: Vec<PathBuf>,
    skipped: Vec<PathBuf>,
    /// `[C, H, W]` of every map, once one is seen.
    feature_shape: Option<[usize; 3]>,
}

impl Extracted {
    /// The cache of what was extracted from `dataset` with `options`.
    fn into_cache(
        self,
        options: &ExtractOptions,
        views: &PhotoViews,
        dataset: &Dataset,
    ) -> Result<FeatureCache> {
        let Some(feature_shape) = self.feature_shape else {
            return Err(TrainerError::new(format!(
                "none of its {} images could be read",
                dataset.len()
            ))
            .in_file(&dataset.source)
            .with_hint("the warnings above say why each photo was skipped"));
        };
        let header = cache_header(
            options,
            views,
            dataset,
            feature_shape,
            self.images,
            self.skipped,
        );
        FeatureCache::new(header, self.features, self.labels)
    }

    /// Writes what was gathered since `start`, up to photo `end`, as a part of the extraction.
    fn write_part(
        &self,
        parts: &ExtractionParts,
        (start, end): (&PartStart, usize),
        options: &ExtractOptions,
        views: &PhotoViews,
        dataset: &Dataset,
    ) -> Result<()> {
        // A part is written once a map has been seen, so the shape is known.
        let feature_shape = self.feature_shape.unwrap_or_default();
        let header = cache_header(
            options,
            views,
            dataset,
            feature_shape,
            self.images[start.images..].to_vec(),
            self.skipped[start.skipped..].to_vec(),
        );
        parts.write(
            (start.first, end),
            &header,
            &self.features[start.features..],
            &self.labels[start.labels..],
        )
    }

    /// Adds a part written by an earlier run of the same extraction.
    fn append(&mut self, part: FeatureCache) {
        let (header, features, labels) = part.into_parts();
        self.feature_shape = Some(header.feature_shape);
        self.features.extend(features);
        self.labels.extend(labels);
        self.images.extend(header.images);
        self.skipped.extend(header.skipped);
    }

    /// Adds the maps of a batch: `kept` says which photos of `chunk` they are.
    fn add(&mut self, maps: Tensor<4>, chunk: &[ImageRequest], kept: &[usize]) {
        let [_, c, h, w] = maps.dims();
        self.feature_shape = Some([c, h, w]);
        let values = maps
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("float features");
        self.features.extend(values.into_iter().map(f16::from_f32));
        let classes = self.n_classes;
        for &position in kept {
            let row = chunk[position].index as usize;
            self.images.push(chunk[position].path.clone());
            let labels = &self.all_labels[row * classes..(row + 1) * classes];
            (self.labels).extend(labels.iter().map(|&label| u8::from(label > 0.5)));
        }
    }
}

/// The header of a cache (or a part of one) of `images` extracted from `dataset`.
fn cache_header(
    options: &ExtractOptions,
    views: &PhotoViews,
    dataset: &Dataset,
    feature_shape: [usize; 3],
    images: Vec<PathBuf>,
    skipped: Vec<PathBuf>,
) -> FeatureCacheHeader {
    FeatureCacheHeader {
        format_version: FEATURE_CACHE_VERSION,
        backbone: options.backbone,
        backbone_weights: options.backbone_weights.clone(),
        image_size: options.image_size,
        pooled: options.pooled,
        feature_shape,
        views: views.count,
        view_crops: views.has_crops().then(|| ViewCrops {
            seed: views.seed,
            crop: views.crop.clone(),
        }),
        label_space: dataset.label_space.clone(),
        source: options.data.clone(),
        split: options.split,
        images,
        skipped,
    }
}

/// "1 view", "3 views", for messages.
fn view_count(views: usize) -> String {
    match views {
        1 => "1 view".to_string(),
        _ => format!("{views} views"),
    }
}

/// `bytes` in MB or GB, for messages.
fn human_bytes(bytes: usize) -> String {
    let megabytes = bytes as f64 / 1e6;
    if megabytes >= 1000.0 {
        format!("{:.2} GB", megabytes / 1000.0)
    } else {
        format!("{megabytes:.1} MB")
    }
}
