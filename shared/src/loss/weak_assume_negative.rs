//! "Weak assume negative" (WAN) from Cole et al. 2021: unobserved labels are still assumed
//! negative, but each weighs only `1 / (classes - 1)`, so that together the assumed negatives of
//! an image count about as much as its one observed positive and the few false negatives among
//! them do less harm.

use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

use super::{LossOutput, complement, neg_log, positive_mask};

/// WAN: observed positives at full weight, assumed negatives down-weighted by `1 / (classes - 1)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeakAssumeNegativeLoss;

impl WeakAssumeNegativeLoss {
    /// `observed_labels`: `[batch, classes]`, 1 for an observed positive, 0 for unobserved.
    /// The total is the mean over all entries.
    pub fn forward(&self, logits: Tensor<2>, observed_labels: Tensor<2>) -> LossOutput {
        let [_, classes] = logits.dims();
        assert!(classes > 1, "WAN needs at least two classes");
        let probabilities = sigmoid(logits);
        let positive_term = neg_log(probabilities.clone());
        let negative_term = neg_log(complement(probabilities)).div_scalar((classes - 1) as f64);
        let loss_matrix = negative_term.mask_where(positive_mask(observed_labels), positive_term);
        LossOutput::mean_over_entries(loss_matrix, None)
    }
}
