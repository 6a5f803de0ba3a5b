//! The generalized robust loss (GR; Chen et al., IJCAI 2024): observed positives get plain
//! cross-entropy, and each unobserved entry a blend of two robust losses, a generalised
//! cross-entropy `L1(p) = (1 − p^q2) / q2` that pulls it towards positive and the MAE-like
//! `L2(p) = (1 − (1 − p)^q3) / q3` that pulls it towards negative. The blend `k̂ = sigmoid(w·p + b)`
//! leans towards positive where the prediction already is, and the weight `v`, a Gaussian in `p`
//! around `μ`, discounts the entries the network is surest about. `w`, `b`, `μ` and `σ` move
//! from their start to their end values over the epochs. `k̂` and `v` use the prediction
//! without its gradient.

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

use super::{LossOutput, check_settings, complement};

/// Added inside the positives' logarithm (the official code's 1e-7, not Cole et al.'s 1e-5).
const GR_LOG_EPSILON: f64 = 1e-7;

/// Configuration of [`GeneralizedRobustLoss`]; the defaults are the official `config.py`'s
/// (the repository has no per-data-set values).
#[derive(Config, Debug)]
pub struct GeneralizedRobustLossConfig {
    /// `w` of `k̂` in the first epoch, and the value it moves towards (`beta[0]`, `beta[1]`).
    #[config(default = 0.0)]
    pub w_start: f64,
    #[config(default = 2.0)]
    pub w_end: f64,
    /// `b` of `k̂` (`beta[2]`, `beta[3]`).
    #[config(default = -2.0)]
    pub b_start: f64,
    #[config(default = -2.0)]
    pub b_end: f64,
    /// Centre `μ` of the weight `v` (`alpha[0]`, `alpha[2]`).
    #[config(default = 0.5)]
    pub mu_start: f64,
    #[config(default = 0.8)]
    pub mu_end: f64,
    /// Width `σ` of the weight `v` (`alpha[1]`, `alpha[3]`).
    #[config(default = 2.0)]
    pub sigma_start: f64,
    #[config(default = 0.5)]
    pub sigma_end: f64,
    /// Exponents of `L1` and `L2` (`q2q3`).
    #[config(default = 0.01)]
    pub q2: f64,
    #[config(default = 1.0)]
    pub q3: f64,
    /// Epochs trained with the backbone frozen before fine-tuning (`linear_init`); the
    /// schedule starts after them.
    #[config(default = 0)]
    pub linear_init: usize,
}

/// The scheduled weights of one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneralizedRobustWeights {
    pub w: f64,
    pub b: f64,
    pub mu: f64,
    pub sigma: f64,
}

impl GeneralizedRobustLossConfig {
    /// Whether the settings make sense, with a message naming the bad one.
    pub fn check(&self) -> Result<(), String> {
        check_settings(
            "GR",
            "finite",
            &[
                ("w_start", self.w_start),
                ("w_end", self.w_end),
                ("b_start", self.b_start),
                ("b_end", self.b_end),
                ("mu_start", self.mu_start),
                ("mu_end", self.mu_end),
            ],
            f64::is_finite,
        )?;
        check_settings(
            "GR",
            "positive",
            &[
                ("sigma_start", self.sigma_start),
                ("sigma_end", self.sigma_end),
                ("q2", self.q2),
                ("q3", self.q3),
            ],
            |value| value.is_finite() && value > 0.0,
        )
    }

    /// `w`, `b`, `μ` and `σ` in `epoch` (1-based) of `epochs`: `w` and `b` move by
    /// `max(e − n − 1, 0) / (T − n)` of the way, `μ` and `σ` by `max(e − n, 0) / (T − n)`, so
    /// the first pair lags one epoch and never reaches its end value (the official train.py).
    pub fn weights(&self, epoch: usize, epochs: usize) -> GeneralizedRobustWeights {
        let span = epochs.saturating_sub(self.linear_init).max(1) as f64;
        let offset = epoch as f64 - self.linear_init as f64;
        let lagging = (offset - 1.0).max(0.0) / span;
        let leading = offset.max(0.0) / span;
        let between = |start: f64, end: f64, fraction: f64| start + (end - start) * fraction;
        GeneralizedRobustWeights {
            w: between(self.w_start, self.w_end, lagging),
            b: between(self.b_start, self.b_end, lagging),
            mu: between(self.mu_start, self.mu_end, leading),
            sigma: between(self.sigma_start, self.sigma_end, leading),
        }
    }

    /// The loss with these settings.
    pub fn init(&self) -> GeneralizedRobustLoss {
        if let Err(problem) = self.check() {
            panic!("{problem}");
        }
        GeneralizedRobustLoss {
            config: self.clone(),
        }
    }
}

/// GR loss.
#[derive(Debug, Clone)]
pub struct GeneralizedRobustLoss {
    config: GeneralizedRobustLossConfig,
}

/// GR's per-entry weights beside the loss.
#[derive(Debug, Clone)]
pub struct GeneralizedRobustOutput {
    pub output: LossOutput,
    pub weights: GeneralizedRobustWeights,
    /// `k̂`, `[batch, classes]`.
    pub k_hat: Tensor<2>,
    /// `v`, `[batch, classes]`.
    pub v: Tensor<2>,
}

impl GeneralizedRobustLoss {
    /// `labels`: 1 for an observed positive, 0 for unobserved; any other value gets no loss.
    /// The total is the mean over all entries.
    pub fn forward(
        &self,
        logits: Tensor<2>,
        labels: Tensor<2>,
        epoch: usize,
        epochs: usize,
    ) -> LossOutput {
        self.forward_detailed(logits, labels, epoch, epochs).output
    }

    /// [`forward`](Self::forward) with the weights it used.
    pub fn forward_detailed(
        &self,
        logits: Tensor<2>,
        labels: Tensor<2>,
        epoch: usize,
        epochs: usize,
    ) -> GeneralizedRobustOutput {
        let weights = self.config.weights(epoch, epochs);
        let (q2, q3) = (self.config.q2, self.config.q3);
        let probabilities = sigmoid(logits);
        let fixed = probabilities.clone().detach();
        let k_hat = sigmoid(fixed.clone().mul_scalar(weights.w).add_scalar(weights.b));
        let v = fixed
            .sub_scalar(weights.mu)
            .div_scalar(weights.sigma)
            .powi_scalar(2)
            .mul_scalar(-0.5)
            .exp();
        let towards_positive = complement(probabilities.clone().powf_scalar(q2)).div_scalar(q2);
        let towards_negative =
            complement(complement(probabilities.clone()).powf_scalar(q3)).div_scalar(q3);
        let unobserved_term = v.clone()
            * (k_hat.clone() * towards_positive + complement(k_hat.clone()) * towards_negative);
        let positive_term = probabilities.add_scalar(GR_LOG_EPSILON).log().neg();
        let loss_matrix = unobserved_term
            .mask_fill(labels.clone().not_equal_elem(0.0), 0.0)
            .mask_where(labels.equal_elem(1.0), positive_term);
        GeneralizedRobustOutput {
            output: LossOutput::mean_over_entries(loss_matrix, None),
            weights,
            k_hat,
            v,
        }
    }
}
