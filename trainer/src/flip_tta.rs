//! Test-time flip averaging: each photo is scored as it is and as its mirror image, and the two
//! probabilities are averaged. Mirroring keeps the labels of everyday photos, so the average is
//! a cheap ensemble of two looks at the photo.
//!
//! Probabilities are averaged rather than logits: they are what the metrics rank and threshold,
//! and one confident look is not outvoted by an unbounded logit of the other.
//!
//! From a feature cache the mirror is view 1 (see [`crate::images::views`]); from photos it is
//! the evaluation input flipped along its width, the same pixels view 1 caches.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use querylabel::model::Classifier;

use crate::dataset::Dataset;
use crate::error::{Result, TrainerError};
use crate::evaluate::{ScoredImages, attention_focus, score_dataset_with};
use crate::feature_cache::FeatureCache;
use crate::images::{ImageLoader, MIRRORED_VIEW, PLAIN_VIEW};

/// A probability tensor's values.
pub fn probabilities_of(probabilities: Tensor<2>) -> Vec<f32> {
    probabilities
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float probabilities")
}

/// The mean of two probability tensors, as plain values.
pub fn averaged(first: Tensor<2>, second: Tensor<2>) -> Vec<f32> {
    probabilities_of((first + second) * 0.5)
}

/// Runs `model`'s head (in inference mode) over the plain and the mirrored view of `rows` and
/// averages their probabilities. Fails when the cache has no mirrored view.
pub fn score_cached_features_flip_averaged(
    model: &Classifier,
    cache: &FeatureCache,
    rows: &[usize],
    batch_size: usize,
    device: &Device,
) -> Result<ScoredImages> {
    if cache.views() <= MIRRORED_VIEW {
        return Err(TrainerError::new(format!(
            "the feature cache has {} view(s) per photo, and flip averaging needs the mirrored \
             view 1",
            cache.views()
        ))
        .at_flag("--tta-flip")
        .with_hint("extract the features with --views 2 or more"));
    }
    let mut scores = Vec::with_capacity(rows.len() * cache.n_classes());
    let mut focus = Vec::new();
    for chunk in rows.chunks(batch_size.max(1)) {
        let forward = |view: usize| {
            let features = cache.view_feature_tensor(chunk, &vec![view; chunk.len()], device);
            model.head.forward(features)
        };
        let plain = forward(PLAIN_VIEW);
        // The plain view's attention: the map the demo draws over the photo as it is.
        focus.extend(attention_focus(&plain));
        scores.extend(averaged(
            sigmoid(plain.logits),
            sigmoid(forward(MIRRORED_VIEW).logits),
        ));
    }
    Ok(ScoredImages {
        scores,
        labels: cache.labels_of(rows),
        n_classes: cache.n_classes(),
        attention_focus: focus,
        skipped: 0,
    })
}

/// Runs `model` (in inference mode) over every image of `dataset` and its mirror image and
/// averages their probabilities; otherwise as [`crate::evaluate::score_dataset`].
pub fn score_dataset_flip_averaged(
    model: &Classifier,
    dataset: &Dataset,
    loader: &ImageLoader,
    batch_size: usize,
    device: &Device,
) -> ScoredImages {
    score_dataset_with(dataset, loader, batch_size, device, |images| {
        let mirrored = images.clone().flip([3]);
        let plain = model.forward(images);
        let focus = attention_focus(&plain);
        let probabilities = averaged(
            sigmoid(plain.logits),
            sigmoid(model.forward(mirrored).logits),
        );
        (probabilities, focus)
    })
}
