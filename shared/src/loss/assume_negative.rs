//! "Assume negative" (AN) and its label-smoothed variant (AN-LS) from Cole et al. 2021: the
//! simplest way to train on single positive labels is to pretend every unobserved label is
//! negative, which is usually right (most classes are absent) but punishes the missed positives
//! as hard as true negatives. Label smoothing softens that: the assumed negatives are only pulled
//! towards `ls`, not to zero.

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

use super::bce::cross_entropy_matrix;
use super::{LossOutput, positive_mask};

/// Configuration of [`AssumeNegativeLoss`].
#[derive(Config, Debug)]
pub struct AssumeNegativeLossConfig {
    /// Zero gives AN; the paper's AN-LS uses 0.1. Applies to observed positives (towards
    /// `1 - label_smoothing`) and assumed negatives (towards `label_smoothing`) alike.
    #[config(default = 0.0)]
    pub label_smoothing: f64,
}

impl AssumeNegativeLossConfig {
    /// The loss with this smoothing.
    pub fn init(&self) -> AssumeNegativeLoss {
        assert!(
            (0.0..=1.0).contains(&self.label_smoothing),
            "label smoothing must lie in [0, 1], got {}",
            self.label_smoothing
        );
        AssumeNegativeLoss {
            label_smoothing: self.label_smoothing,
        }
    }
}

/// AN / AN-LS: unobserved labels are treated as negatives (softened by label smoothing).
#[derive(Debug, Clone, Copy)]
pub struct AssumeNegativeLoss {
    label_smoothing: f64,
}

impl AssumeNegativeLoss {
    /// `observed_labels`: `[batch, classes]`, 1 for an observed positive, 0 for unobserved.
    /// The total is the mean over all entries.
    pub fn forward(&self, logits: Tensor<2>, observed_labels: Tensor<2>) -> LossOutput {
        let loss_matrix = cross_entropy_matrix(
            sigmoid(logits),
            positive_mask(observed_labels),
            self.label_smoothing,
        );
        LossOutput::mean_over_entries(loss_matrix, None)
    }
}
