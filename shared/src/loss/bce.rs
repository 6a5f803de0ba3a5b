//! Binary cross-entropy on fully observed labels (`loss_bce` and `loss_bce_ls` of Cole et al.):
//! the upper bound that the single-positive losses are compared against.

use burn::config::Config;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Bool, Tensor};

use super::{LossOutput, complement, neg_log, positive_mask};

/// Configuration of [`BinaryCrossEntropy`].
#[derive(Config, Debug)]
pub struct BinaryCrossEntropyConfig {
    /// Label smoothing: positives are pulled towards `1 - label_smoothing` and negatives towards
    /// `label_smoothing` (the paper uses 0.1). Zero gives plain BCE.
    #[config(default = 0.0)]
    pub label_smoothing: f64,
}

impl BinaryCrossEntropyConfig {
    /// The loss with this smoothing.
    pub fn init(&self) -> BinaryCrossEntropy {
        assert!(
            (0.0..=1.0).contains(&self.label_smoothing),
            "label smoothing must lie in [0, 1], got {}",
            self.label_smoothing
        );
        BinaryCrossEntropy {
            label_smoothing: self.label_smoothing,
        }
    }
}

/// Binary cross-entropy where every label is known: 1 is a positive, anything else a negative.
#[derive(Debug, Clone, Copy)]
pub struct BinaryCrossEntropy {
    label_smoothing: f64,
}

impl BinaryCrossEntropy {
    /// `logits` and `labels` are `[batch, classes]`; the total is the mean over all entries.
    pub fn forward(&self, logits: Tensor<2>, labels: Tensor<2>) -> LossOutput {
        let loss_matrix =
            cross_entropy_matrix(sigmoid(logits), positive_mask(labels), self.label_smoothing);
        LossOutput::mean_over_entries(loss_matrix, None)
    }
}

/// Per-entry cross-entropy of probabilities against hard targets given by `positives`, with
/// optional label smoothing, written term by term as the official code so that values and
/// rounding agree with it.
pub(crate) fn cross_entropy_matrix(
    probabilities: Tensor<2>,
    positives: Tensor<2, Bool>,
    label_smoothing: f64,
) -> Tensor<2> {
    let towards_one = neg_log(probabilities.clone());
    let towards_zero = neg_log(complement(probabilities));
    let (positive_term, negative_term) = if label_smoothing == 0.0 {
        (towards_one, towards_zero)
    } else {
        let keep = 1.0 - label_smoothing;
        (
            towards_one.clone().mul_scalar(keep) + towards_zero.clone().mul_scalar(label_smoothing),
            towards_zero.mul_scalar(keep) + towards_one.mul_scalar(label_smoothing),
        )
    };
    negative_term.mask_where(positives, positive_term)
}
