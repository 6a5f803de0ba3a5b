//! "Acknowledging the Unknown for Multi-label Learning with Single Positive Labels" (Zhou et
//! al., ECCV 2022): rather than guessing what an unobserved label is, keep the prediction
//! uncertain by maximising its entropy (EM). EM+APL adds soft pseudo-negatives: after a warm-up,
//! the most confidently negative unobserved entries of each class are trained towards their own
//! prediction (see [`pseudo_label`](super::pseudo_label) for how they are chosen).

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

use super::{LossOutput, check_settings, complement, finite_non_negative, neg_log};

/// Configuration of [`EntropyMaximizationLoss`]. The defaults are the official COCO row of
/// `main.py` (PASCAL: α 0.2, β 0.02).
#[derive(Config, Debug)]
pub struct EntropyMaximizationLossConfig {
    /// Weight of the entropy term on unobserved labels (`alpha`).
    #[config(default = 0.1)]
    pub alpha: f64,
    /// Weight of the soft pseudo-negatives' cross-entropy (`beta`; EM+APL only).
    #[config(default = 0.9)]
    pub beta: f64,
}

impl EntropyMaximizationLossConfig {
    /// Whether the settings make sense, with a message naming the bad one.
    pub fn check(&self) -> Result<(), String> {
        check_settings(
            "EM",
            "finite and non-negative",
            &[("alpha", self.alpha), ("beta", self.beta)],
            finite_non_negative,
        )
    }

    /// The loss with these weights.
    pub fn init(&self) -> EntropyMaximizationLoss {
        if let Err(problem) = self.check() {
            panic!("{problem}");
        }
        EntropyMaximizationLoss {
            alpha: self.alpha,
            beta: self.beta,
        }
    }
}

/// EM, and EM+APL where labels may be soft pseudo-negatives.
#[derive(Debug, Clone, Copy)]
pub struct EntropyMaximizationLoss {
    alpha: f64,
    beta: f64,
}

impl EntropyMaximizationLoss {
    /// `labels`: 1 for an observed positive, 0 for unobserved, and `-s` for a pseudo-negative
    /// with soft target `s` (EM+APL). Unobserved entries get α times the negated entropy, so
    /// their terms, and possibly the total, are negative. The total is the mean over all
    /// entries.
    pub fn forward(&self, logits: Tensor<2>, labels: Tensor<2>) -> LossOutput {
        let probabilities = sigmoid(logits);
        let towards_one = neg_log(probabilities.clone());
        let towards_zero = neg_log(complement(probabilities.clone()));
        let entropy = probabilities.clone() * towards_one.clone()
            + complement(probabilities) * towards_zero.clone();
        let unobserved_term = entropy.mul_scalar(-self.alpha);
        let soft_target = labels.clone().neg().clamp_min(0.0);
        let pseudo_negative_term = (soft_target.clone() * towards_one.clone()
            + complement(soft_target) * towards_zero)
            .mul_scalar(self.beta);
        let loss_matrix = unobserved_term
            .mask_where(labels.clone().lower_elem(0.0), pseudo_negative_term)
            .mask_where(labels.equal_elem(1.0), towards_one);
        LossOutput::mean_over_entries(loss_matrix, None)
    }
}
