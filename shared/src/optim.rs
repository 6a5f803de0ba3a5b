//! The optimiser settings every trainer of this project shares (the native trainer and the
//! page's lesson).

use burn::optim::AdamConfig;

/// Adam's epsilon as in PyTorch, which the papers trained with. Burn's default (1e-5) is larger
/// than the gradients of mean-reduced losses on a transformer head, and damped their steps
/// tenfold: a Query2Label head with AN sat at 9 mAP after two epochs.
pub const ADAM_EPSILON: f32 = 1e-8;

/// Adam as the papers ran it: PyTorch's epsilon, no weight decay, no clipping.
pub fn adam() -> AdamConfig {
    AdamConfig::new().with_epsilon(ADAM_EPSILON)
}
