//! The optimisers a run can train with, built the same way for training and for the benchmark.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer};
use serde::{Deserialize, Serialize};

/// The optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adam,
    Adamw,
}

/// PyTorch's epsilon, which the papers trained with. Burn's default (1e-5) is larger than the
/// gradients of mean-reduced losses on a transformer head, and damped their steps tenfold: a
/// Query2Label head with AN sat at 9 mAP after two epochs.
pub const ADAM_EPSILON: f32 = 1e-8;

/// `kind` with this weight decay (L2 for Adam, decoupled for AdamW) and optional gradient-norm
/// clipping.
pub fn build_optimizer(
    kind: OptimizerKind,
    weight_decay: f64,
    grad_clip_norm: Option<f32>,
) -> ModuleOptimizer {
    let clipping = grad_clip_norm.map(GradientClippingConfig::Norm);
    match kind {
        OptimizerKind::Adam => AdamConfig::new()
            .with_epsilon(ADAM_EPSILON)
            .with_weight_decay(
                (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
            )
            .with_grad_clipping(clipping)
            .init(),
        OptimizerKind::Adamw => AdamWConfig::new()
            .with_epsilon(ADAM_EPSILON)
            .with_weight_decay(weight_decay as f32)
            .with_grad_clipping(clipping)
            .init(),
    }
}
