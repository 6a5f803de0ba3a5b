//! Scoring a data set with a model and summarising the scores with the standard multi-label
//! metrics.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use querylabel::exported::DEFAULT_DECISION_THRESHOLD;
use querylabel::head::{AttentionSelection, attention_maps, peak_over_even_share};
use querylabel::metrics::{
    AveragePrecisionKind, LabelledScores, labels_per_image, per_class_average_precision,
    threshold_metrics, top_k_metrics,
};
use querylabel::model::{Classifier, ClassifierOutput};
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Result, TrainerError};
use crate::feature_cache::FeatureCache;
use crate::images::{ImageLoader, ImageRequest};

/// Probabilities for the images of a data set that loaded, with their labels.
pub struct ScoredImages {
    /// `[images, classes]` sigmoid probabilities, row-major.
    pub scores: Vec<f32>,
    /// `[images, classes]` multi-hot labels.
    pub labels: Vec<f32>,
    pub n_classes: usize,
    /// `[images, classes]`: how focused each label's attention map is, its peak over an even
    /// share ([`peak_over_even_share`], mean over layers and heads, as the demo draws it).
    /// Empty for a head without attention.
    pub attention_focus: Vec<f32>,
    /// Files that could not be read or decoded.
    pub skipped: usize,
}

/// The per-label attention focus of a forward pass, row-major; empty for a linear head.
pub fn attention_focus(output: &ClassifierOutput) -> Vec<f32> {
    if output.cross_attention.is_empty() {
        return Vec::new();
    }
    let maps = attention_maps(
        &output.cross_attention,
        output.feature_size,
        AttentionSelection::default(),
    );
    peak_over_even_share(maps)
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float attention")
}

/// The mean attention focus over every (image, label it has) pair; `None` without attention.
fn true_label_attention_focus(scored: &ScoredImages) -> Option<f64> {
    if scored.attention_focus.is_empty() {
        return None;
    }
    let (sum, count) = scored
        .attention_focus
        .iter()
        .zip(&scored.labels)
        .filter(|&(_, &label)| label > 0.5)
        .fold((0.0, 0usize), |(sum, count), (&focus, _)| {
            (sum + f64::from(focus), count + 1)
        });
    (count > 0).then(|| sum / count as f64)
}

/// Runs `model` (in inference mode) over every image of `dataset`.
pub fn score_dataset(
    model: &Classifier,
    dataset: &Dataset,
    loader: &ImageLoader,
    batch_size: usize,
    device: &Device,
) -> ScoredImages {
    score_dataset_with(dataset, loader, batch_size, device, |images| {
        let output = model.forward(images);
        let focus = attention_focus(&output);
        (probabilities(output.logits), focus)
    })
}

/// Sigmoid probabilities of `logits`, row-major.
pub fn probabilities(logits: Tensor<2>) -> Vec<f32> {
    sigmoid(logits)
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float probabilities")
}

/// Loads the images of `dataset` in batches of `batch_size` and scores each preprocessed batch
/// with `score`, which gives its probabilities and attention focus (row-major, empty without
/// attention); the labels kept are those of the images that loaded.
pub fn score_dataset_with(
    dataset: &Dataset,
    loader: &ImageLoader,
    batch_size: usize,
    device: &Device,
    mut score: impl FnMut(Tensor<4>) -> (Vec<f32>, Vec<f32>),
) -> ScoredImages {
    let n_classes = dataset.n_classes();
    let all_labels = dataset.label_matrix();
    let mut scored = ScoredImages {
        scores: Vec::with_capacity(dataset.len() * n_classes),
        labels: Vec::with_capacity(dataset.len() * n_classes),
        n_classes,
        attention_focus: Vec::new(),
        skipped: 0,
    };
    let indices: Vec<usize> = (0..dataset.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let requests: Vec<ImageRequest> = chunk
            .iter()
            .map(|&i| ImageRequest {
                path: dataset.examples[i].path.clone(),
                index: i as u64,
            })
            .collect();
        let batch = loader.load_batch(&requests, 0);
        scored.skipped += batch.skipped.len();
        if batch.images.is_empty() {
            continue;
        }
        let (probabilities, focus) = score(loader.preprocessing.batch(&batch.images, device));
        scored.scores.extend(probabilities);
        scored.attention_focus.extend(focus);
        for &position in &batch.kept {
            let row = chunk[position];
            scored
                .labels
                .extend_from_slice(&all_labels[row * n_classes..(row + 1) * n_classes]);
        }
    }
    scored
}

/// Runs `model`'s head (in inference mode) over the cached features of `rows`, their plain view
/// (view 0) only: the other views are training augmentations, not what evaluation sees.
pub fn score_cached_features(
    model: &Classifier,
    cache: &FeatureCache,
    rows: &[usize],
    batch_size: usize,
    device: &Device,
) -> ScoredImages {
    let mut scores = Vec::with_capacity(rows.len() * cache.n_classes());
    let mut focus = Vec::new();
    for chunk in rows.chunks(batch_size.max(1)) {
        let output = model.head.forward(cache.feature_tensor(chunk, device));
        focus.extend(attention_focus(&output));
        scores.extend(probabilities(output.logits));
    }
    ScoredImages {
        scores,
        labels: cache.labels_of(rows),
        n_classes: cache.n_classes(),
        attention_focus: focus,
        skipped: 0,
    }
}

/// The numbers a researcher compares, in percent: mAP (scikit-learn's AP), CF1 and OF1 at a
/// decision threshold and for each image's top 3 labels (the Query2Label paper's two settings),
/// how often an image's top label is right, and AP per class; and what the threshold means for
/// one photo: how many wrong and true labels it shows on average.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    #[serde(rename = "mAP")]
    pub map: f64,
    /// The probability at or above which a label counts as predicted, for CF1, OF1 and the
    /// labels per image.
    pub threshold: f32,
    #[serde(rename = "CF1")]
    pub cf1: f64,
    #[serde(rename = "OF1")]
    pub of1: f64,
    /// Mean labels at or above the threshold that an image does not have.
    pub false_positives_per_image: f64,
    /// Mean labels at or above the threshold that an image has.
    pub true_positives_per_image: f64,
    #[serde(rename = "CF1_top3")]
    pub cf1_top3: f64,
    #[serde(rename = "OF1_top3")]
    pub of1_top3: f64,
    /// Share of images whose highest-scoring label is one of theirs: what a user of the demo
    /// sees first. It depends on how the classes' scores compare within an image, which mAP
    /// (each class ranked over the images) does not measure.
    pub top1_precision: f64,
    /// The mean peak-over-even-share of the attention maps of the labels each image has (1 is
    /// an even wash); `None` for a head without attention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention_focus: Option<f64>,
    pub images: usize,
    pub skipped: usize,
    /// `None` for classes without a positive image in the set. Printed as a table, not in the
    /// JSON summary.
    #[serde(skip)]
    pub per_class_ap: Vec<Option<f64>>,
}

/// Summarises scored images at the papers' 0.5 threshold, which training's per-epoch
/// validation reports so that its CF1 and OF1 compare with the literature and across runs.
pub fn evaluate(scored: &ScoredImages) -> Result<Evaluation> {
    evaluate_at(scored, DEFAULT_DECISION_THRESHOLD)
}

/// Summarises scored images, predicting the labels scored `>= threshold`; fails when no class
/// has a positive image.
pub fn evaluate_at(scored: &ScoredImages, threshold: f32) -> Result<Evaluation> {
    let set = LabelledScores::new(&scored.scores, &scored.labels, scored.n_classes)?;
    let per_class_ap = per_class_average_precision(&set, AveragePrecisionKind::NonInterpolated);
    let present: Vec<f64> = per_class_ap.iter().flatten().copied().collect();
    if present.is_empty() {
        return Err(TrainerError::new(
            "no class has a positive image in this set, so mAP is undefined",
        ));
    }
    let thresholded = threshold_metrics(&set, threshold).expect("some class has positives");
    let per_image = labels_per_image(&set, threshold);
    let top3 = top_k_metrics(&set, 3).expect("some class has positives");
    let top1 = top_k_metrics(&set, 1).expect("some class has positives");
    Ok(Evaluation {
        map: 100.0 * present.iter().sum::<f64>() / present.len() as f64,
        threshold,
        cf1: 100.0 * thresholded.per_class_f1,
        of1: 100.0 * thresholded.overall_f1,
        false_positives_per_image: per_image.false_positives,
        true_positives_per_image: per_image.true_positives,
        cf1_top3: 100.0 * top3.per_class_f1,
        of1_top3: 100.0 * top3.overall_f1,
        top1_precision: 100.0 * top1.overall_precision,
        attention_focus: true_label_attention_focus(scored),
        images: set.n_images(),
        skipped: scored.skipped,
        per_class_ap,
    })
}
