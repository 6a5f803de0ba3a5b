//! The asymmetric loss (ASL) of Ridnik et al. 2021, as Query2Label trains with it: a binary
//! cross-entropy whose negatives are down-weighted by a focusing factor `p^gamma_neg` and shifted
//! by a probability margin `clip`, so the many easy negatives of multi-label data stop drowning
//! the few positives (and very easy negatives contribute nothing at all). With single positive
//! labels every unobserved label (0) is an assumed negative, softened by that focusing.

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

use super::{LossOutput, complement};

/// Configuration of [`AsymmetricLoss`]. The defaults are Query2Label's training setting
/// (`--gamma_neg 2 --gamma_pos 0 --loss_clip 0`), which `trainer train --loss asl` trains with;
/// the ASL paper's own are `gamma_neg 4, gamma_pos 1, clip 0.05`.
#[derive(Config, Debug)]
pub struct AsymmetricLossConfig {
    /// Focusing exponent for negatives: `(1 - p_neg)^gamma_neg` with `p_neg` the (shifted)
    /// probability of being negative.
    #[config(default = 2.0)]
    pub gamma_neg: f64,
    /// Focusing exponent for positives: `(1 - p)^gamma_pos`.
    #[config(default = 0.0)]
    pub gamma_pos: f64,
    /// Probability margin added to `1 - p` for negatives (capped at 1), so that negatives
    /// predicted below `clip` are discarded; 0 disables it.
    #[config(default = 0.0)]
    pub clip: f64,
    /// Lower clamp on probabilities before the logarithm.
    #[config(default = 1e-8)]
    pub eps: f64,
}

impl AsymmetricLossConfig {
    /// The loss with these settings.
    pub fn init(&self) -> AsymmetricLoss {
        assert!(
            self.gamma_neg >= 0.0 && self.gamma_pos >= 0.0 && self.clip >= 0.0 && self.eps >= 0.0,
            "asymmetric loss settings must be non-negative: {self:?}"
        );
        AsymmetricLoss {
            gamma_neg: self.gamma_neg,
            gamma_pos: self.gamma_pos,
            clip: self.clip,
            eps: self.eps,
        }
    }
}

/// ASL with the focusing weight treated as a constant (the official
/// `disable_torch_grad_focal_loss`): it scales each entry's gradient but is not itself
/// differentiated, which the authors found trains better.
#[derive(Debug, Clone, Copy)]
pub struct AsymmetricLoss {
    gamma_neg: f64,
    gamma_pos: f64,
    clip: f64,
    eps: f64,
}

impl AsymmetricLoss {
    /// `targets`: `[batch, classes]` in [0, 1] (1 positive, 0 negative or unobserved). The
    /// loss matrix holds the positive per-entry losses and the total is their plain sum, as the
    /// official `AsymmetricLoss` returns. (Query2Label's `AsymmetricLossOptimized` reports the
    /// same sum divided by `batch · classes` and multiplied by 1000.)
    pub fn forward(&self, logits: Tensor<2>, targets: Tensor<2>) -> LossOutput {
        let positive_probability = sigmoid(logits);
        let mut negative_probability = complement(positive_probability.clone());
        if self.clip > 0.0 {
            negative_probability = negative_probability.add_scalar(self.clip).clamp_max(1.0);
        }

        let anti_targets = complement(targets.clone());
        let mut log_likelihood = targets.clone()
            * positive_probability.clone().clamp_min(self.eps).log()
            + anti_targets.clone() * negative_probability.clone().clamp_min(self.eps).log();

        if self.gamma_neg > 0.0 || self.gamma_pos > 0.0 {
            let target_probability = positive_probability.detach() * targets.clone()
                + negative_probability.detach() * anti_targets.clone();
            let gamma =
                targets.mul_scalar(self.gamma_pos) + anti_targets.mul_scalar(self.gamma_neg);
            let focusing = complement(target_probability).powf(gamma);
            log_likelihood = log_likelihood * focusing;
        }

        LossOutput::summed(log_likelihood.neg())
    }
}
