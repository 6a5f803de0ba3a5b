//! The linear head of the MLSPL "linear" setting: global average pooling of the feature map,
//! then one fully connected layer.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::pooling::global_average_pool;

/// Configuration of a [`LinearHead`].
#[derive(Config, Debug)]
pub struct LinearHeadConfig {
    /// Number of labels.
    pub num_classes: usize,
    /// Channels of the backbone's feature map.
    pub in_channels: usize,
}

/// Global average pool + linear layer.
#[derive(Module, Debug)]
pub struct LinearHead {
    pub classifier: Linear,
}

impl LinearHeadConfig {
    pub fn init(&self, device: &Device) -> LinearHead {
        LinearHead {
            classifier: LinearConfig::new(self.in_channels, self.num_classes).init(device),
        }
    }
}

impl LinearHead {
    /// `features`: `[batch, channels, height, width]` → logits `[batch, num_classes]`.
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        self.forward_pooled(global_average_pool(features))
    }

    /// Logits from already pooled features `[batch, channels]`, e.g. a feature cache.
    pub fn forward_pooled(&self, pooled: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(pooled)
    }
}
