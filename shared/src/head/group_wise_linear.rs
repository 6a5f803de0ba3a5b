//! Query2Label's classifier: one weight vector and one bias per class, applied to that class's
//! own decoder output, so that each label query answers only for its label.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

/// Configuration of a [`GroupWiseLinear`] layer.
#[derive(Config, Debug)]
pub struct GroupWiseLinearConfig {
    /// Number of classes (label queries).
    pub num_classes: usize,
    /// Width of each query's embedding.
    pub hidden_dim: usize,
}

/// Per-class linear scores: `logit[b, k] = W[k] · x[b, k] + bias[k]`.
#[derive(Module, Debug)]
pub struct GroupWiseLinear {
    /// `[num_classes, hidden_dim]`.
    pub weight: Param<Tensor<2>>,
    /// `[num_classes]`.
    pub bias: Param<Tensor<1>>,
}

impl GroupWiseLinearConfig {
    /// Uniform in ±1/√hidden_dim for weights and biases, as the official initialisation.
    pub fn init(&self, device: &Device) -> GroupWiseLinear {
        let bound = 1.0 / (self.hidden_dim as f64).sqrt();
        let uniform = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        GroupWiseLinear {
            weight: uniform.init([self.num_classes, self.hidden_dim], device),
            bias: uniform.init([self.num_classes], device),
        }
    }
}

impl GroupWiseLinear {
    /// `queries`: `[batch, num_classes, hidden_dim]` → logits `[batch, num_classes]`.
    pub fn forward(&self, queries: Tensor<3>) -> Tensor<2> {
        let scores = (queries * self.weight.val().unsqueeze_dim::<3>(0)).sum_dim(2);
        scores.squeeze_dim::<2>(2) + self.bias.val().unsqueeze_dim::<2>(0)
    }
}
