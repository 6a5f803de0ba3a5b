//! The optimisers a run can train with, built the same way for training and for the benchmark.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use querylabel::optim::{ADAM_EPSILON, adam};
use serde::{Deserialize, Serialize};

/// The optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Adam,
    Adamw,
}

/// `kind` with this weight decay (L2 for Adam, decoupled for AdamW) and optional gradient-norm
/// clipping.
pub fn build_optimizer(
    kind: OptimizerKind,
    weight_decay: f64,
    grad_clip_norm: Option<f32>,
) -> ModuleOptimizer {
    let clipping = grad_clip_norm.map(GradientClippingConfig::Norm);
    match kind {
        OptimizerKind::Adam => adam()
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
