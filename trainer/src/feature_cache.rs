//! A cache of frozen-backbone features. `trainer extract` runs the backbone once over a data set;
//! frozen-backbone training then reads features instead of decoding and convolving images, which
//! turns an epoch of minutes into seconds.
//!
//! One safetensors file: `features` `[N, V, C, H, W]` in half precision (`V` views per photo,
//! see [`crate::images::views`]; `H = W = 1` when pooled), `labels` `[N, K]` multi-hot bytes,
//! and a JSON [`FeatureCacheHeader`] in the metadata. Rows are the images that loaded, in
//! data-set order; training carves its validation split from them.
//!
//! The views of one photo are adjacent (photo-major). Extraction produces a photo's views
//! together and appends them as it goes, without knowing in advance how many photos will load;
//! a view-major layout would need that count up front, or a transpose of the whole cache at the
//! end. Photo-major also keeps a photo's label, its views and its place in the train/validation
//! split in one row, and any (photo, view) is one contiguous slice.
//!
//! Caches from before views existed have no `views` in their header and a 4-D `[N, C, H, W]`
//! `features`; they read as one view per photo. The format version did not change for this:
//! the change only adds to the header, and a trainer from before views refuses a cache of
//! several views on its size check, naming the file.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use half::f16;
use querylabel::backbone::BackboneKind;
use querylabel::labels::LabelSpace;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::atomic_files::write_atomically;
use crate::dataset::Split;
use crate::error::{Context, Locate, Result, TrainerError};
use crate::images::{PLAIN_VIEW, RandomResizedCropConfig};

/// Version of the cache layout; readers refuse versions they do not know.
pub const FEATURE_CACHE_VERSION: u32 = 1;
const HEADER_KEY: &str = "querylabel_feature_cache";
/// The largest safetensors header the format allows (the safetensors crate's limit).
const MAX_SAFETENSORS_HEADER: usize = 100_000_000;
const EXTRACT_AGAIN: &str = "extract the features again with `trainer extract`";

fn not_a_cache(path: &Path) -> TrainerError {
    TrainerError::new("not a feature cache of this trainer")
        .in_file(path)
        .with_hint("make one with `trainer extract`")
}

/// The cache header in a safetensors file's `metadata`, of the version this trainer reads.
fn parse_header(
    metadata: Option<&HashMap<String, String>>,
    path: &Path,
) -> Result<FeatureCacheHeader> {
    let header_json = metadata
        .and_then(|entries| entries.get(HEADER_KEY))
        .ok_or_else(|| not_a_cache(path))?;
    let header: FeatureCacheHeader = serde_json::from_str(header_json).or_error(|| {
        TrainerError::new("the cache's header is malformed")
            .at_field(path, HEADER_KEY)
            .with_hint(EXTRACT_AGAIN)
    })?;
    if header.format_version != FEATURE_CACHE_VERSION {
        return Err(TrainerError::new(format!(
            "is not the feature cache version {FEATURE_CACHE_VERSION} this trainer reads"
        ))
        .at_field_value(path, "format_version", header.format_version)
        .with_hint(EXTRACT_AGAIN));
    }
    Ok(header)
}
const FEATURES: &str = "features";
const LABELS: &str = "labels";

/// What the features are: which backbone saw which images, how.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeatureCacheHeader {
    pub format_version: u32,
    pub backbone: BackboneKind,
    /// Weights the backbone ran with (`None`: the default ImageNet Lite0 weights).
    pub backbone_weights: Option<PathBuf>,
    pub image_size: usize,
    /// Whether the feature maps were averaged to `1 × 1`.
    pub pooled: bool,
    /// `[C, H, W]` of one image's features.
    pub feature_shape: [usize; 3],
    /// Views per photo (view 0 plain, view 1 mirrored, views 2.. random resized crops).
    #[serde(default = "single_view")]
    pub views: usize,
    /// Seed and ranges of the random crops, when there are any (views 2..).
    #[serde(default)]
    pub view_crops: Option<ViewCrops>,
    pub label_space: LabelSpace,
    /// The data set directory and split the images came from.
    pub source: PathBuf,
    pub split: Split,
    /// The image of each row.
    pub images: Vec<PathBuf>,
    /// Files of the data set that could not be read, left out.
    pub skipped: Vec<PathBuf>,
}

/// How the random-crop views of a cache were drawn, to reproduce or compare caches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewCrops {
    pub seed: u64,
    pub crop: RandomResizedCropConfig,
}

/// The number of views of a cache written before views existed.
fn single_view() -> usize {
    1
}

/// Features and labels of a data set's images, in memory.
pub struct FeatureCache {
    pub header: FeatureCacheHeader,
    /// `[N, V, C, H, W]`, row-major.
    features: Vec<f16>,
    /// `[N, K]` multi-hot.
    labels: Vec<u8>,
}

impl FeatureCache {
    /// Assembles a cache; `features` must hold `views` views per image of the header, photo by
    /// photo, and `labels` one row per image.
    pub fn new(header: FeatureCacheHeader, features: Vec<f16>, labels: Vec<u8>) -> Result<Self> {
        let cache = Self {
            header,
            features,
            labels,
        };
        cache.check_sizes().context("the new feature cache")?;
        Ok(cache)
    }

    pub fn len(&self) -> usize {
        self.header.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn n_classes(&self) -> usize {
        self.header.label_space.n_classes()
    }

    /// Views per photo.
    pub fn views(&self) -> usize {
        self.header.views
    }

    /// Values of one view of one photo.
    fn view_size(&self) -> usize {
        self.header.feature_shape.iter().product()
    }

    /// Multi-hot labels of every row, `[N, K]` as floats.
    pub fn label_matrix(&self) -> Vec<f32> {
        self.labels.iter().map(|&label| f32::from(label)).collect()
    }

    /// The labels of `rows`, `[rows, K]`.
    pub fn labels_of(&self, rows: &[usize]) -> Vec<f32> {
        let k = self.n_classes();
        rows.iter()
            .flat_map(|&row| self.labels[row * k..(row + 1) * k].iter())
            .map(|&label| f32::from(label))
            .collect()
    }

    /// The plain view's features of `rows` widened to f32, with their `[rows, C, H, W]` shape:
    /// what validation, evaluation and the lesson export use.
    pub fn features_of(&self, rows: &[usize]) -> (Vec<f32>, [usize; 4]) {
        self.view_features_of(rows, &vec![PLAIN_VIEW; rows.len()])
    }

    /// The features of view `views[i]` of row `rows[i]`, widened to f32, with their
    /// `[rows, C, H, W]` shape. Panics when the slices differ in length or a view is not below
    /// [`FeatureCache::views`]: callers draw the views from that count.
    pub fn view_features_of(&self, rows: &[usize], views: &[usize]) -> (Vec<f32>, [usize; 4]) {
        assert_eq!(rows.len(), views.len(), "one view per row");
        let size = self.view_size();
        let values = rows
            .iter()
            .zip(views)
            .flat_map(|(&row, &view)| {
                assert!(
                    view < self.views(),
                    "view {view} of a {}-view cache",
                    self.views()
                );
                let start = (row * self.views() + view) * size;
                self.features[start..start + size].iter()
            })
            .map(|value| value.to_f32())
            .collect();
        let [c, h, w] = self.header.feature_shape;
        (values, [rows.len(), c, h, w])
    }

    /// The plain view's features of `rows` as a tensor on `device`.
    pub fn feature_tensor(&self, rows: &[usize], device: &Device) -> Tensor<4> {
        self.view_feature_tensor(rows, &vec![PLAIN_VIEW; rows.len()], device)
    }

    /// The features of view `views[i]` of row `rows[i]` as a tensor on `device`.
    pub fn view_feature_tensor(
        &self,
        rows: &[usize],
        views: &[usize],
        device: &Device,
    ) -> Tensor<4> {
        let (values, shape) = self.view_features_of(rows, views);
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// Bytes the features take in memory and on disk.
    pub fn feature_bytes(&self) -> usize {
        self.features.len() * std::mem::size_of::<f16>()
    }

    /// Writes the cache to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let [c, h, w] = self.header.feature_shape;
        let feature_bytes: Vec<u8> = self
            .features
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        let serialising = "cannot serialise the feature cache";
        let features = TensorView::new(
            Dtype::F16,
            vec![self.len(), self.views(), c, h, w],
            &feature_bytes,
        )
        .context_in(path, serialising)?;
        let labels = TensorView::new(Dtype::U8, vec![self.len(), self.n_classes()], &self.labels)
            .context_in(path, serialising)?;
        let header = serde_json::to_string(&self.header).context_in(path, serialising)?;
        let metadata = HashMap::from([(HEADER_KEY.to_string(), header)]);
        let bytes =
            safetensors::serialize([(FEATURES, features), (LABELS, labels)], Some(metadata))
                .context_in(path, serialising)?;
        write_atomically(path, &bytes)
    }

    /// Reads a cache written by [`FeatureCache::write`], checking that its parts agree.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).context_in(path, "cannot read")?;
        let (_, metadata) = SafeTensors::read_metadata(&bytes).or_error(|| not_a_cache(path))?;
        let header = parse_header(metadata.metadata().as_ref(), path)?;
        let tensors = SafeTensors::deserialize(&bytes).or_error(|| not_a_cache(path))?;
        let tensor = |name: &str, dtype: Dtype| -> Result<TensorView<'_>> {
            let at_tensor =
                |error: TrainerError| error.at_field(path, name).with_hint(EXTRACT_AGAIN);
            let view = tensors
                .tensor(name)
                .or_error(|| at_tensor(TrainerError::new("no such tensor")))?;
            if view.dtype() != dtype {
                let found = view.dtype();
                return Err(at_tensor(TrainerError::new(format!(
                    "a tensor of {found:?}, expected {dtype:?}"
                ))));
            }
            Ok(view)
        };
        let features = tensor(FEATURES, Dtype::F16)?;
        let [c, h, w] = header.feature_shape;
        let (n, views) = (header.images.len(), header.views);
        let shape_ok = features.shape() == [n, views, c, h, w]
            || (views == 1 && features.shape() == [n, c, h, w]);
        if !shape_ok {
            return Err(TrainerError::new(format!(
                "has shape {:?}, but the header describes {n} images of {views} views of shape \
                 {:?}",
                features.shape(),
                header.feature_shape
            ))
            .at_field(path, FEATURES)
            .with_hint(EXTRACT_AGAIN));
        }
        let features = features
            .data()
            .chunks_exact(2)
            .map(|pair| f16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        let labels = tensor(LABELS, Dtype::U8)?.data().to_vec();
        let cache = Self {
            header,
            features,
            labels,
        };
        cache
            .check_sizes()
            .in_file(path)
            .map_err(|error| error.with_hint(EXTRACT_AGAIN))?;
        Ok(cache)
    }

    /// The header of the cache at `path`, checked as [`FeatureCache::read`] checks it, read
    /// without the features: a Lite2 cache is gigabytes, and choosing a threshold needs only
    /// the photos it lists.
    pub fn read_header(path: &Path) -> Result<FeatureCacheHeader> {
        let mut file = std::fs::File::open(path).context_in(path, "cannot read")?;
        let mut length = [0u8; 8];
        file.read_exact(&mut length)
            .or_error(|| not_a_cache(path))?;
        let length = usize::try_from(u64::from_le_bytes(length))
            .ok()
            .filter(|&n| n <= MAX_SAFETENSORS_HEADER)
            .ok_or_else(|| not_a_cache(path))?;
        let mut json = vec![0u8; length];
        file.read_exact(&mut json).or_error(|| not_a_cache(path))?;
        /// The part of a safetensors header that holds the free-form metadata.
        #[derive(Deserialize)]
        struct MetadataOnly {
            #[serde(rename = "__metadata__")]
            metadata: Option<HashMap<String, String>>,
        }
        let parsed: MetadataOnly = serde_json::from_slice(&json).or_error(|| not_a_cache(path))?;
        parse_header(parsed.metadata.as_ref(), path)
    }

    /// Whether the header, the features and the labels agree; the error says which does not.
    fn check_sizes(&self) -> Result<()> {
        let n = self.len();
        let views = self.views();
        let problem = |what: String| Err(TrainerError::new(what));
        if views == 0 {
            return problem("the header says 0 views per photo".into());
        }
        let needed = n * views * self.view_size();
        if self.features.len() != needed {
            return problem(format!(
                "`{FEATURES}` holds {} values, but {n} images of {views} views of shape {:?} \
                 need {needed}",
                self.features.len(),
                self.header.feature_shape,
            ));
        }
        if self.labels.len() != n * self.n_classes() {
            return problem(format!(
                "`{LABELS}` holds {} values, but {n} images of {} classes need {}",
                self.labels.len(),
                self.n_classes(),
                n * self.n_classes()
            ));
        }
        if let Some(position) = self.labels.iter().position(|&label| label > 1) {
            return problem(format!(
                "`{LABELS}` row {} is not multi-hot (value {})",
                position / self.n_classes().max(1),
                self.labels[position]
            ));
        }
        Ok(())
    }
}
