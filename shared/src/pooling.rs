//! Global average pooling: the summary of a feature map that linear classifiers read, both the
//! backbones' ImageNet heads and the MLSPL linear head.

use burn::tensor::Tensor;

/// `[batch, channels, height, width]` → `[batch, channels]`, the mean over positions.
pub fn global_average_pool(features: Tensor<4>) -> Tensor<2> {
    let [batch, channels, height, width] = features.dims();
    features
        .reshape([batch, channels, height * width])
        .mean_dim(2)
        .reshape([batch, channels])
}
