//! Batch norms folded into the convolutions before them, for inference with frozen statistics.
//!
//! In inference a batch norm is a per-channel affine map, `γ (y − μ) / √(σ² + ε) + β`, so the
//! convolution `y = W x + b` before it can absorb it: each output channel's kernel is scaled by
//! `s = γ / √(σ² + ε)` and its bias becomes `s b + β − s μ`. The network computes the same
//! function, to rounding, and skips the batch norm's passes over every activation: Burn's
//! batch norm subtracts, divides, multiplies and adds, each a pass over the whole tensor, where
//! the folded bias is added inside the convolution.
//!
//! A folded network has no batch norm left to train or to save in the pretrained layout, so
//! only inference folds, after the weights are loaded: never a model that is trained, exported
//! or checkpointed.

use burn::module::Param;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;

use super::training_convolution::convolve;
use burn::tensor::Tensor;

/// `conv` with `norm` (in inference mode, with its running statistics) folded into its weight
/// and bias.
pub fn fold_batch_norm(conv: Conv2d, norm: &BatchNorm) -> Conv2d {
    let scale = norm.gamma.val() / norm.running_var.value().add_scalar(norm.epsilon).sqrt();
    let shift = norm.beta.val() - norm.running_mean.value() * scale.clone();
    let bias = match &conv.bias {
        Some(bias) => bias.val() * scale.clone() + shift,
        None => shift,
    };
    let [channels] = scale.dims();
    let per_output_channel = scale.reshape([channels, 1, 1, 1]);
    Conv2d {
        weight: conv.weight.map(|weight| weight * per_output_channel),
        bias: Some(Param::from_tensor(bias)),
        ..conv
    }
}

/// `conv` with the batch norm after it folded in, if it has one (a folded network has none
/// left to fold).
pub fn folded(conv: Conv2d, norm: Option<BatchNorm>) -> Conv2d {
    match norm {
        Some(norm) => fold_batch_norm(conv, &norm),
        None => conv,
    }
}

/// `conv`, then `norm` unless it has been folded into `conv`.
pub fn conv_then_norm(conv: &Conv2d, norm: Option<&BatchNorm>, input: Tensor<4>) -> Tensor<4> {
    let output = convolve(conv, input);
    match norm {
        Some(norm) => norm.forward(output),
        None => output,
    }
}

#[cfg(test)]
mod tests {
    use burn::module::RunningState;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};
    use burn::tensor::{Device, Distribution};

    use super::*;

    /// A batch norm with statistics and affine parameters far from the identity, as a trained
    /// network has them.
    fn trained_norm(channels: usize, device: &Device) -> BatchNorm {
        let uniform =
            |low, high| Tensor::random([channels], Distribution::Uniform(low, high), device);
        let mut norm = BatchNormConfig::new(channels)
            .with_epsilon(1e-3)
            .init(device);
        norm.gamma = Param::from_tensor(uniform(-2.0, 2.0));
        norm.beta = Param::from_tensor(uniform(-1.0, 1.0));
        norm.running_mean = RunningState::new(uniform(-1.0, 1.0));
        norm.running_var = RunningState::new(uniform(0.01, 3.0));
        norm
    }

    fn max_abs_difference(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn a_folded_convolution_computes_what_the_convolution_and_its_norm_did() {
        let device = Device::flex();
        let channels = 12;
        let convolutions = [
            // Depthwise, strided, with asymmetric padding, as the Lite blocks have.
            Conv2dConfig::new([channels, channels], [5, 5])
                .with_stride([2, 2])
                .with_groups(channels)
                .with_padding(PaddingConfig2d::Explicit(1, 1, 2, 2))
                .with_bias(false),
            // A 1×1 convolution that has a bias of its own.
            Conv2dConfig::new([channels, channels], [1, 1]).with_bias(true),
        ];
        for config in convolutions {
            let conv = config.init(&device);
            let norm = trained_norm(channels, &device);
            let input = Tensor::random(
                [2, channels, 13, 11],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let expected = conv_then_norm(&conv, Some(&norm), input.clone());
            let actual = conv_then_norm(&folded(conv, Some(norm)), None, input);
            let error = max_abs_difference(actual, expected.clone());
            let scale = expected.abs().max().into_scalar::<f32>().max(1.0);
            assert!(
                error <= 1e-5 * scale,
                "{config:?}: error {error}, scale {scale}"
            );
        }
    }
}
