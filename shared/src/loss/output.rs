//! What every loss returns: the per-entry terms as well as the scalar to minimise, so that
//! callers can log, weight or test either.

use burn::tensor::{Bool, Tensor};

/// The result of a multi-label loss on a batch.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// One term per image and class, `[batch, classes]`, before any normalisation. Zero where a
    /// loss ignores an entry (e.g. unobserved labels under EPR).
    pub loss_matrix: Tensor<2>,
    /// The batch-level regulariser already included in `total` (EPR and ROLE), `[1]`.
    pub regularizer: Option<Tensor<1>>,
    /// The scalar to minimise, `[1]`.
    pub total: Tensor<1>,
    /// Entries this batch turned into observed positives for the rest of training (LL-Cp), to
    /// be written back into the training labels after the step.
    pub corrections: Option<Tensor<2, Bool>>,
}

impl LossOutput {
    /// The normalisation of Cole et al.'s `compute_batch_loss`: every entry divided by
    /// `batch · classes`, summed, plus the regulariser. Dividing before summing, as the official
    /// code does, keeps the rounding of the reference.
    pub(crate) fn mean_over_entries(
        loss_matrix: Tensor<2>,
        regularizer: Option<Tensor<1>>,
    ) -> Self {
        let [batch, classes] = loss_matrix.dims();
        let main = loss_matrix
            .clone()
            .div_scalar((batch * classes) as f64)
            .sum();
        let total = match &regularizer {
            Some(regularizer) => main + regularizer.clone(),
            None => main,
        };
        Self {
            loss_matrix,
            regularizer,
            total,
            corrections: None,
        }
    }

    /// The plain sum of the entries, the reduction of the official asymmetric loss.
    pub(crate) fn summed(loss_matrix: Tensor<2>) -> Self {
        let total = loss_matrix.clone().sum();
        Self {
            loss_matrix,
            regularizer: None,
            total,
            corrections: None,
        }
    }
}
