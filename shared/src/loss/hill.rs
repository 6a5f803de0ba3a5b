//! The Hill loss (Zhang et al., 2021, "Simple and Robust Loss Design for Multi-Label Learning
//! with Missing Labels"): a missed positive among the negatives is usually predicted with
//! middling confidence, so the negative loss `(λ − p)·p²` is hill-shaped, weighing moderately
//! confident negatives less than plain BCE does. Positives get a margin-shifted focal loss.

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, sigmoid};

use super::{LossOutput, check_settings, complement, finite_non_negative};

/// Configuration of [`HillLoss`]; the defaults are the official ones.
#[derive(Config, Debug)]
pub struct HillLossConfig {
    /// `λ` of the negative term (`lamb`).
    #[config(default = 1.5)]
    pub lambda: f64,
    /// Logit margin subtracted for the positives' term (the docstring recommends 0.5 to 1).
    #[config(default = 1.0)]
    pub margin: f64,
    /// Focusing exponent of the positives' term.
    #[config(default = 2.0)]
    pub gamma: f64,
}

impl HillLossConfig {
    /// Whether the settings make sense, with a message naming the bad one.
    pub fn check(&self) -> Result<(), String> {
        check_settings(
            "Hill",
            "finite and non-negative",
            &[
                ("lambda", self.lambda),
                ("margin", self.margin),
                ("gamma", self.gamma),
            ],
            finite_non_negative,
        )
    }

    /// The loss with these settings.
    pub fn init(&self) -> HillLoss {
        if let Err(problem) = self.check() {
            panic!("{problem}");
        }
        HillLoss {
            lambda: self.lambda,
            margin: self.margin,
            gamma: self.gamma,
        }
    }
}

/// Hill loss.
#[derive(Debug, Clone, Copy)]
pub struct HillLoss {
    lambda: f64,
    margin: f64,
    gamma: f64,
}

impl HillLoss {
    /// `labels`: 1 for a positive, anything else a negative. The focal weight of the positives
    /// is differentiated (unlike ASL's). The total is the sum over all entries, as the official
    /// loss reduces by default.
    pub fn forward(&self, logits: Tensor<2>, labels: Tensor<2>) -> LossOutput {
        let shifted = logits.clone().sub_scalar(self.margin);
        let positive_probability = sigmoid(shifted.clone());
        let positive_term = complement(positive_probability)
            .powf_scalar(self.gamma)
            .mul(log_sigmoid(shifted))
            .neg();
        let probabilities = sigmoid(logits);
        let negative_term =
            probabilities.clone().neg().add_scalar(self.lambda) * probabilities.powi_scalar(2);
        let loss_matrix = negative_term.mask_where(labels.equal_elem(1.0), positive_term);
        LossOutput::summed(loss_matrix)
    }
}
