//! "Expected positive regularisation" (EPR) from Cole et al. 2021: unobserved labels get no
//! per-entry loss at all; instead a batch-level penalty keeps the predicted number of positives
//! per image near the dataset's known average, which stops the trivial "everything is positive"
//! solution that training on positives alone would find.

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

use super::{LossOutput, neg_log, positive_mask};

/// Configuration of [`ExpectedPositiveLoss`].
#[derive(Config, Debug)]
pub struct ExpectedPositiveLossConfig {
    /// Average number of positive labels per image in the dataset (the paper: 1.5 for PASCAL
    /// VOC, 2.9 for COCO).
    pub expected_num_pos: f64,
}

impl ExpectedPositiveLossConfig {
    /// The loss with this expected count.
    pub fn init(&self) -> ExpectedPositiveLoss {
        ExpectedPositiveLoss {
            expected_num_pos: self.expected_num_pos,
        }
    }
}

/// EPR: cross-entropy on observed positives only, plus [`expected_positive_regularizer`].
#[derive(Debug, Clone, Copy)]
pub struct ExpectedPositiveLoss {
    expected_num_pos: f64,
}

impl ExpectedPositiveLoss {
    /// `observed_labels`: `[batch, classes]`, 1 for an observed positive, 0 for unobserved.
    /// The total is the mean of the loss matrix over all entries plus the regulariser.
    pub fn forward(&self, logits: Tensor<2>, observed_labels: Tensor<2>) -> LossOutput {
        let probabilities = sigmoid(logits);
        let loss_matrix = observed_positive_matrix(probabilities.clone(), observed_labels);
        let regularizer = expected_positive_regularizer(probabilities, self.expected_num_pos);
        LossOutput::mean_over_entries(loss_matrix, Some(regularizer))
    }
}

/// `-log(p)` at observed positives and zero elsewhere: the only label information that
/// single-positive data really contains.
pub(crate) fn observed_positive_matrix(
    probabilities: Tensor<2>,
    observed_labels: Tensor<2>,
) -> Tensor<2> {
    let positive_term = neg_log(probabilities);
    positive_term
        .zeros_like()
        .mask_where(positive_mask(observed_labels), positive_term)
}

/// `(mean over images of Σ_k p_k − expected_num_pos)² / classes²`, `[1]`: the squared gap
/// between the predicted and the expected number of positives per image. The division by
/// `classes²` is the one `loss_epr` and `loss_role` apply, which keeps the penalty on the scale of
/// the per-entry mean.
pub fn expected_positive_regularizer(probabilities: Tensor<2>, expected_num_pos: f64) -> Tensor<1> {
    let [_, classes] = probabilities.dims();
    probabilities
        .sum_dim(1)
        .mean()
        .sub_scalar(expected_num_pos)
        .square()
        .div_scalar((classes * classes) as f64)
}
