//! The data of the browser demo's live-training lesson: pooled backbone features of real photos,
//! a training part and a held-out part, in half precision, small enough to ship with the page.
//!
//! Tensors: `train_features` `[N, C]` f16, `train_labels` `[N, K]` u8 (clean multi-hot labels),
//! `validation_features` `[M, C]`, `validation_labels` `[M, K]`; the metadata holds the class
//! names (`classes`, a JSON list in the label space's order) and where the features came from.

use std::collections::HashMap;
use std::path::Path;

use half::f16;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use crate::atomic_files::write_atomically;
use crate::error::{Context, Result, TrainerError};
use crate::feature_cache::FeatureCache;

/// Draws `validation` held-out and `train` training rows of `cache` (disjoint, shuffled with
/// `seed`) and writes their pooled features and labels to `out`.
pub fn export_lesson_features(
    cache: &FeatureCache,
    out: &Path,
    train: usize,
    validation: usize,
    seed: u64,
) -> Result<()> {
    if train + validation > cache.len() || train == 0 || validation == 0 {
        return Err(TrainerError::new(format!(
            "the cache holds {} images; it cannot give {train} training and {validation} \
             held-out ones",
            cache.len()
        ))
        .at_flag_value("--train", train)
        .with_hint(
            "give --train and --validation of at least 1, together no more than the cache holds",
        ));
    }
    let mut rows: Vec<usize> = (0..cache.len()).collect();
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (validation_rows, rest) = rows.split_at(validation);
    let train_rows = &rest[..train];

    let channels = cache.header.feature_shape[0];
    let features_bytes = |rows: &[usize]| -> Vec<u8> {
        let (values, [n, c, h, w]) = cache.features_of(rows);
        let area = h * w;
        (0..n * c)
            .map(|map| values[map * area..(map + 1) * area].iter().sum::<f32>() / area as f32)
            .flat_map(|mean| f16::from_f32(mean).to_le_bytes())
            .collect()
    };
    let labels_bytes = |rows: &[usize]| -> Vec<u8> {
        cache
            .labels_of(rows)
            .into_iter()
            .map(|label| u8::from(label > 0.5))
            .collect()
    };
    let parts = [("train", train_rows), ("validation", validation_rows)]
        .map(|(name, rows)| (name, rows.len(), features_bytes(rows), labels_bytes(rows)));
    let k = cache.n_classes();
    let serialising = "cannot serialise the lesson's features";
    let mut tensors = Vec::new();
    for (name, n, features, labels) in &parts {
        tensors.push((
            format!("{name}_features"),
            TensorView::new(Dtype::F16, vec![*n, channels], features)
                .context_in(out, serialising)?,
        ));
        tensors.push((
            format!("{name}_labels"),
            TensorView::new(Dtype::U8, vec![*n, k], labels).context_in(out, serialising)?,
        ));
    }
    let classes = serde_json::to_string(cache.header.label_space.class_names())
        .context_in(out, serialising)?;
    let metadata = HashMap::from([
        ("classes".to_string(), classes),
        ("backbone".to_string(), cache.header.backbone.to_string()),
        (
            "image_size".to_string(),
            cache.header.image_size.to_string(),
        ),
        ("seed".to_string(), seed.to_string()),
    ]);
    let bytes = safetensors::serialize(tensors, Some(metadata)).context_in(out, serialising)?;
    write_atomically(out, &bytes)
}
