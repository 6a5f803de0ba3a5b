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

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use half::f16;
use querylabel::backbone::BackboneKind;
use querylabel::labels::LabelSpace;
use safetensors::{Dtype, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::atomic_files::write_atomically_with;
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

/// A safetensors file's header: its free-form metadata and where each tensor lies.
#[derive(Deserialize)]
struct FileLayout {
    #[serde(rename = "__metadata__")]
    metadata: Option<HashMap<String, String>>,
    #[serde(flatten)]
    tensors: HashMap<String, TensorEntry>,
}

/// One tensor's entry in a safetensors header: offsets are from the start of the data, which
/// follows the header.
#[derive(Deserialize)]
struct TensorEntry {
    dtype: Dtype,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

impl TensorEntry {
    /// Whether its offsets hold exactly its shape of `dtype` and lie within the `data_len`
    /// bytes of data the file has, checked before anything is allocated for it.
    fn check_extent(&self, dtype: Dtype, data_len: u64) -> std::result::Result<(), TrainerError> {
        let [begin, end] = self.data_offsets;
        let expected = self
            .shape
            .iter()
            .try_fold(dtype.bitsize() as u64 / 8, |bytes, &d| {
                bytes.checked_mul(d as u64)
            });
        if begin > end || end > data_len || expected != Some(end - begin) {
            return Err(TrainerError::new(format!(
                "its place in the file ({begin}..{end} of {data_len} bytes of data) does not \
                 hold its shape {:?}",
                self.shape
            )));
        }
        Ok(())
    }

    fn len_bytes(&self) -> usize {
        (self.data_offsets[1] - self.data_offsets[0]) as usize
    }
}

/// Reads the safetensors header at the start of `file`: the layout, and where the data starts.
fn read_layout(file: &mut std::fs::File, path: &Path) -> Result<(FileLayout, u64)> {
    let mut length = [0u8; 8];
    file.read_exact(&mut length)
        .or_error(|| not_a_cache(path))?;
    let length = usize::try_from(u64::from_le_bytes(length))
        .ok()
        .filter(|&n| n <= MAX_SAFETENSORS_HEADER)
        .ok_or_else(|| not_a_cache(path))?;
    let mut json = vec![0u8; length];
    file.read_exact(&mut json).or_error(|| not_a_cache(path))?;
    let layout: FileLayout = serde_json::from_slice(&json).or_error(|| not_a_cache(path))?;
    Ok((layout, 8 + length as u64))
}

/// Writes a cache of `header`'s photos with these `features` and `labels` to `path`
/// atomically: a whole [`FeatureCache`], or a part of an extraction (extract_parts) straight
/// from what the extraction holds.
pub fn write_cache(
    path: &Path,
    header: &FeatureCacheHeader,
    features: &[f16],
    labels: &[u8],
) -> Result<()> {
    let [c, h, w] = header.feature_shape;
    let photos = header.images.len();
    let feature_bytes = little_endian_bytes(features);
    let serialising = "cannot serialise the feature cache";
    let features = TensorView::new(
        Dtype::F16,
        vec![photos, header.views, c, h, w],
        &feature_bytes,
    )
    .context_in(path, serialising)?;
    let labels = TensorView::new(
        Dtype::U8,
        vec![photos, header.label_space.n_classes()],
        labels,
    )
    .context_in(path, serialising)?;
    let header = serde_json::to_string(header).context_in(path, serialising)?;
    let metadata = HashMap::from([(HEADER_KEY.to_string(), header)]);
    write_atomically_with(path, |temporary| {
        // safetensors writes through a private file of its own (mode 0600); the cache gets
        // the mode that any new file gets here, so that others can read it as before.
        let mode = std::fs::File::create(temporary)
            .and_then(|file| file.metadata())
            .context_in(temporary, "cannot write")?
            .permissions();
        safetensors::serialize_to_file(
            [(FEATURES, features), (LABELS, labels)],
            Some(metadata),
            temporary,
        )
        .context_in(temporary, "cannot write")?;
        std::fs::set_permissions(temporary, mode).context_in(temporary, "cannot write")
    })
}

/// `values` as the file stores them, little-endian: their own bytes on a little-endian machine,
/// a converted copy on another.
fn little_endian_bytes(values: &[f16]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        Cow::Borrowed(bytemuck::cast_slice(values))
    } else {
        Cow::Owned(
            values
                .iter()
                .flat_map(|value| value.to_le_bytes())
                .collect(),
        )
    }
}

/// How many bytes of a tensor are read and converted at a time.
const READ_SLICE: usize = 1 << 24;

/// `entry`'s little-endian half-precision values, read a slice at a time into their vector.
fn read_f16(
    file: &mut std::fs::File,
    data_start: u64,
    entry: &TensorEntry,
) -> std::io::Result<Vec<f16>> {
    file.seek(SeekFrom::Start(data_start + entry.data_offsets[0]))?;
    let mut values = Vec::with_capacity(entry.len_bytes() / 2);
    let mut slice = vec![0u8; READ_SLICE.min(entry.len_bytes())];
    let mut left = entry.len_bytes();
    while left > 0 {
        let part = &mut slice[..READ_SLICE.min(left)];
        file.read_exact(part)?;
        values.extend(
            part.chunks_exact(2)
                .map(|pair| f16::from_le_bytes([pair[0], pair[1]])),
        );
        left -= part.len();
    }
    Ok(values)
}

/// `entry`'s bytes.
fn read_bytes(
    file: &mut std::fs::File,
    data_start: u64,
    entry: &TensorEntry,
) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(data_start + entry.data_offsets[0]))?;
    let mut bytes = vec![0u8; entry.len_bytes()];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
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

    /// The header, the features and the labels, for joining caches.
    pub fn into_parts(self) -> (FeatureCacheHeader, Vec<f16>, Vec<u8>) {
        (self.header, self.features, self.labels)
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

    /// Writes the cache to `path` atomically, the features straight from memory: writing a
    /// cache takes no memory beyond the cache.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_cache(path, &self.header, &self.features, &self.labels)
    }

    /// Reads a cache written by [`FeatureCache::write`], checking that its parts agree. The
    /// features go from the file straight into their place in memory, a slice at a time, so
    /// that reading a cache takes its size in memory, not twice that.
    pub fn read(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).context_in(path, "cannot read")?;
        let (layout, data_start) = read_layout(&mut file, path)?;
        let header = parse_header(layout.metadata.as_ref(), path)?;
        let file_len = file.metadata().context_in(path, "cannot read")?.len();
        let data_len = file_len.saturating_sub(data_start);
        let tensor = |name: &str, dtype: Dtype| -> Result<&TensorEntry> {
            let at_tensor =
                |error: TrainerError| error.at_field(path, name).with_hint(EXTRACT_AGAIN);
            let entry = layout
                .tensors
                .get(name)
                .ok_or_else(|| at_tensor(TrainerError::new("no such tensor")))?;
            if entry.dtype != dtype {
                let found = entry.dtype;
                return Err(at_tensor(TrainerError::new(format!(
                    "a tensor of {found:?}, expected {dtype:?}"
                ))));
            }
            entry.check_extent(dtype, data_len).map_err(at_tensor)?;
            Ok(entry)
        };
        let features = tensor(FEATURES, Dtype::F16)?;
        let [c, h, w] = header.feature_shape;
        let (n, views) = (header.images.len(), header.views);
        let shape_ok =
            features.shape == [n, views, c, h, w] || (views == 1 && features.shape == [n, c, h, w]);
        if !shape_ok {
            return Err(TrainerError::new(format!(
                "has shape {:?}, but the header describes {n} images of {views} views of shape \
                 {:?}",
                features.shape, header.feature_shape
            ))
            .at_field(path, FEATURES)
            .with_hint(EXTRACT_AGAIN));
        }
        let features = read_f16(&mut file, data_start, features).context_in(path, "cannot read")?;
        let labels = tensor(LABELS, Dtype::U8)?;
        let labels = read_bytes(&mut file, data_start, labels).context_in(path, "cannot read")?;
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
        let (layout, _) = read_layout(&mut file, path)?;
        parse_header(layout.metadata.as_ref(), path)
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
