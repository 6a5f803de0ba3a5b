//! Self-paced loss correction (SPLC; Zhang et al., 2021, beside the Hill loss): a focal loss
//! with a margin on the positives, where from `change_epoch` on every unobserved entry that the
//! network already predicts above `τ` is trained as a positive in that batch. The correction is
//! re-decided at every batch and never stored.

use burn::config::Config;
use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Bool, Tensor};

use super::{LossOutput, check_settings, complement, finite_non_negative};

/// Configuration of [`SelfPacedCorrectionLoss`]; the defaults are the official ones (its README
/// uses τ 0.65 only for COCO with 75% of the labels left).
#[derive(Config, Debug)]
pub struct SelfPacedCorrectionLossConfig {
    /// Probability above which an unobserved entry is corrected to positive (`tau`).
    #[config(default = 0.6)]
    pub tau: f64,
    /// First epoch, 0-based as in the official loop, that corrects (`change_epoch`).
    #[config(default = 1)]
    pub change_epoch: usize,
    /// Logit margin subtracted for observed positives.
    #[config(default = 1.0)]
    pub margin: f64,
    /// Focusing exponent.
    #[config(default = 2.0)]
    pub gamma: f64,
}

impl SelfPacedCorrectionLossConfig {
    /// Whether the settings make sense, with a message naming the bad one.
    pub fn check(&self) -> Result<(), String> {
        if !(self.tau.is_finite() && (0.0..=1.0).contains(&self.tau)) {
            return Err(format!("SPLC's tau must lie in [0, 1], got {}", self.tau));
        }
        check_settings(
            "SPLC",
            "finite and non-negative",
            &[("margin", self.margin), ("gamma", self.gamma)],
            finite_non_negative,
        )
    }

    /// The loss with these settings.
    pub fn init(&self) -> SelfPacedCorrectionLoss {
        if let Err(problem) = self.check() {
            panic!("{problem}");
        }
        SelfPacedCorrectionLoss {
            config: self.clone(),
        }
    }
}

/// SPLC.
#[derive(Debug, Clone)]
pub struct SelfPacedCorrectionLoss {
    config: SelfPacedCorrectionLossConfig,
}

/// SPLC's corrected targets beside the loss.
#[derive(Debug, Clone)]
pub struct SelfPacedCorrectionOutput {
    pub output: LossOutput,
    /// The targets after correction, `[batch, classes]`.
    pub targets: Tensor<2, Bool>,
}

impl SelfPacedCorrectionLoss {
    /// `labels`: 1 for an observed positive, 0 for unobserved; `epoch` is 1-based (the
    /// official loop's index is `epoch − 1`). The total is the sum over all entries.
    pub fn forward(&self, logits: Tensor<2>, labels: Tensor<2>, epoch: usize) -> LossOutput {
        self.forward_detailed(logits, labels, epoch).output
    }

    /// [`forward`](Self::forward) with the corrected targets.
    pub fn forward_detailed(
        &self,
        logits: Tensor<2>,
        labels: Tensor<2>,
        epoch: usize,
    ) -> SelfPacedCorrectionOutput {
        let positives = labels.equal_elem(1.0);
        let shifted = logits
            .clone()
            .mask_where(positives.clone(), logits.sub_scalar(self.config.margin));
        let corrects = epoch.saturating_sub(1) >= self.config.change_epoch;
        let targets = if corrects {
            let confident = sigmoid(shifted.clone().detach()).greater_elem(self.config.tau);
            positives.bool_or(confident)
        } else {
            positives
        };
        let target = shifted.zeros_like().mask_fill(targets.clone(), 1.0);
        let probabilities = sigmoid(shifted.clone());
        let focusing = (complement(probabilities.clone()) * target.clone()
            + probabilities * complement(target.clone()))
        .powf_scalar(self.config.gamma);
        let log_likelihood = target.clone() * log_sigmoid(shifted.clone())
            + complement(target) * log_sigmoid(shifted.neg());
        SelfPacedCorrectionOutput {
            output: LossOutput::summed(log_likelihood.neg() * focusing),
            targets,
        }
    }
}
