//! "Regularized online label estimation" (ROLE) from Cole et al. 2021: unobserved labels are
//! neither assumed negative nor ignored but estimated. A [`LabelEstimator`] keeps a learnable
//! guess for every image and class; classifier and estimator are trained jointly, each fitting
//! the observed positives, each fitting the other's current (detached) prediction, and each
//! kept near the expected number of positives by the EPR regulariser.
//!
//! [`LabelEstimator`]: super::LabelEstimator

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

use super::expected_positive::{expected_positive_regularizer, observed_positive_matrix};
use super::{LossOutput, complement, neg_log};

/// Configuration of [`RoleLoss`].
#[derive(Config, Debug)]
pub struct RoleLossConfig {
    /// Average number of positive labels per image in the dataset, as for EPR.
    pub expected_num_pos: f64,
}

impl RoleLossConfig {
    /// The loss with this expected count.
    pub fn init(&self) -> RoleLoss {
        RoleLoss {
            expected_num_pos: self.expected_num_pos,
        }
    }
}

/// ROLE: the symmetric classifier / label-estimator objective of `loss_role`.
#[derive(Debug, Clone, Copy)]
pub struct RoleLoss {
    expected_num_pos: f64,
}

impl RoleLoss {
    /// `logits`: the classifier's `[batch, classes]`; `estimated_labels`: the estimator's
    /// probabilities for the same images (from [`LabelEstimator::forward`]); `observed_labels`:
    /// 1 for an observed positive, 0 for unobserved.
    ///
    /// Gradients reach the classifier through its own terms and the estimator through its own:
    /// each side's cross term uses the other side's prediction detached, so neither can lower the
    /// loss by moving the other towards itself. The total is the mean of the loss matrix over all
    /// entries plus the average of both regularisers.
    ///
    /// [`LabelEstimator::forward`]: super::LabelEstimator::forward
    pub fn forward(
        &self,
        logits: Tensor<2>,
        estimated_labels: Tensor<2>,
        observed_labels: Tensor<2>,
    ) -> LossOutput {
        assert_eq!(
            logits.dims(),
            estimated_labels.dims(),
            "ROLE: classifier and estimator disagree on [batch, classes]"
        );
        let predictions = sigmoid(logits);

        let classifier_positive =
            observed_positive_matrix(predictions.clone(), observed_labels.clone());
        let classifier_cross =
            soft_cross_entropy(predictions.clone(), estimated_labels.clone().detach());
        let classifier_regularizer =
            expected_positive_regularizer(predictions.clone(), self.expected_num_pos);

        let estimator_positive =
            observed_positive_matrix(estimated_labels.clone(), observed_labels);
        let estimator_cross = soft_cross_entropy(estimated_labels.clone(), predictions.detach());
        let estimator_regularizer =
            expected_positive_regularizer(estimated_labels, self.expected_num_pos);

        let regularizer = (classifier_regularizer + estimator_regularizer).mul_scalar(0.5);
        let loss_matrix = (classifier_positive + estimator_positive).mul_scalar(0.5)
            + (classifier_cross + estimator_cross).mul_scalar(0.5);
        LossOutput::mean_over_entries(loss_matrix, Some(regularizer))
    }
}

/// Cross-entropy of `probabilities` against soft `targets`: `t·(−log p) + (1−t)·(−log(1−p))`.
fn soft_cross_entropy(probabilities: Tensor<2>, targets: Tensor<2>) -> Tensor<2> {
    targets.clone() * neg_log(probabilities.clone())
        + complement(targets) * neg_log(complement(probabilities))
}
