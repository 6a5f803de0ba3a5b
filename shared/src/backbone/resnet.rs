//! ResNet-50 and ResNet-101 in torchvision's layout and parameter names (`conv1`, `bn1`,
//! `layer1`..`layer4` of `Bottleneck`s with `conv1..3`, `bn1..3`, `downsample.0/1`, `fc`), so a
//! torchvision `state_dict` loads with `PytorchStore` without any key remapping.
//!
//! torchvision "v1.5": the stride of a stage sits on the 3×3 convolution of its first block.
//! Batch norms use `eps = 1e-5`, momentum 0.1. The backbone output is layer4: 2048 channels at
//! stride 32.
//!
//! "Frozen batch norm" (as in DETR/Query2Label's `FrozenBatchNorm2d`): every batch norm is
//! frozen with Burn's [`Module::freeze`] — its training flag is disabled, so
//! [`BatchNorm::forward`] always normalises with the running statistics and never updates them
//! (also on an autodiff device), and γ/β no longer require gradients, so no optimiser trains
//! them. The state survives `train()`/`valid()` and weight loading.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::pooling::global_average_pool;

/// Channels of layer4, the output of [`ResNet::forward_features`].
pub const RESNET_FEATURE_CHANNELS: usize = 2048;
/// Batch-norm epsilon of torchvision's ResNets.
pub const RESNET_BN_EPS: f64 = 1e-5;

/// Which ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResNetDepth {
    /// ResNet-50: 3, 4, 6, 3 bottlenecks.
    #[serde(rename = "50")]
    ResNet50,
    /// ResNet-101: 3, 4, 23, 3 bottlenecks.
    #[serde(rename = "101")]
    ResNet101,
}

impl ResNetDepth {
    /// Bottlenecks per stage.
    pub fn blocks(self) -> [usize; 4] {
        match self {
            Self::ResNet50 => [3, 4, 6, 3],
            Self::ResNet101 => [3, 4, 23, 3],
        }
    }

    /// 50 or 101.
    pub fn layers(self) -> usize {
        match self {
            Self::ResNet50 => 50,
            Self::ResNet101 => 101,
        }
    }
}

/// Configuration of a [`ResNet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// ResNet-50 or ResNet-101.
    pub depth: ResNetDepth,
    /// Build the 2048→`num_classes` classifier `fc` (for loading/checking an ImageNet
    /// checkpoint; a multi-label head does not need it).
    #[config(default = false)]
    pub with_classifier: bool,
    /// Classes of the classifier, when there is one.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Freeze every batch norm (inference statistics, untrained γ/β); see the module docs.
    #[config(default = false)]
    pub frozen_bn: bool,
}

/// torchvision's `Bottleneck` (expansion 4).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1×1 reduction.
    pub conv1: Conv2d,
    /// Batch norm after `conv1`.
    pub bn1: BatchNorm,
    /// 3×3, carries the stage's stride (v1.5).
    pub conv2: Conv2d,
    /// Batch norm after `conv2`.
    pub bn2: BatchNorm,
    /// 1×1 expansion to 4× width.
    pub conv3: Conv2d,
    /// Batch norm after `conv3`.
    pub bn3: BatchNorm,
    /// Projection shortcut of the first block of each stage: torchvision's
    /// `Sequential(conv1x1, BatchNorm2d)` as a tuple, i.e. keys `downsample.0.weight` and
    /// `downsample.1.*`.
    pub downsample: Option<(Conv2d, BatchNorm)>,
}

fn conv(
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
        .init(device)
}

fn bn(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(RESNET_BN_EPS)
        .init(device)
}

impl Bottleneck {
    fn new(input: usize, width: usize, stride: usize, device: &Device) -> Self {
        let output = width * 4;
        let downsample = (stride != 1 || input != output).then(|| {
            (
                conv(input, output, 1, stride, 0, device),
                bn(output, device),
            )
        });
        Self {
            conv1: conv(input, width, 1, 1, 0, device),
            bn1: bn(width, device),
            conv2: conv(width, width, 3, stride, 1, device),
            bn2: bn(width, device),
            conv3: conv(width, output, 1, 1, 0, device),
            bn3: bn(output, device),
            downsample,
        }
    }

    /// The block's forward pass.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = relu(self.bn1.forward(self.conv1.forward(input.clone())));
        let x = relu(self.bn2.forward(self.conv2.forward(x)));
        let x = self.bn3.forward(self.conv3.forward(x));
        let identity = match &self.downsample {
            Some((conv, bn)) => bn.forward(conv.forward(input)),
            None => input,
        };
        relu(x + identity)
    }

    fn freeze_bn(self) -> Self {
        Self {
            bn1: self.bn1.freeze(),
            bn2: self.bn2.freeze(),
            bn3: self.bn3.freeze(),
            downsample: self.downsample.map(|(conv, bn)| (conv, bn.freeze())),
            ..self
        }
    }
}

/// A torchvision ResNet (50 or 101).
#[derive(Module, Debug)]
pub struct ResNet {
    /// 7×7 stride-2 stem, 3→64.
    pub conv1: Conv2d,
    /// Stem batch norm.
    pub bn1: BatchNorm,
    /// 3×3 stride-2 max pooling (padding 1).
    pub maxpool: MaxPool2d,
    /// Stage 1 (stride 4, 256 channels).
    pub layer1: Vec<Bottleneck>,
    /// Stage 2 (stride 8, 512 channels).
    pub layer2: Vec<Bottleneck>,
    /// Stage 3 (stride 16, 1024 channels).
    pub layer3: Vec<Bottleneck>,
    /// Stage 4 (stride 32, 2048 channels).
    pub layer4: Vec<Bottleneck>,
    /// ImageNet classifier (optional).
    pub fc: Option<Linear>,
}

impl ResNetConfig {
    /// Builds the network with freshly initialised parameters (load weights afterwards).
    pub fn init(&self, device: &Device) -> ResNet {
        let blocks = self.depth.blocks();
        let mut input = 64;
        let mut stage = |index: usize, width: usize, stride: usize| {
            let layer: Vec<Bottleneck> = (0..blocks[index])
                .map(|i| match i {
                    0 => Bottleneck::new(input, width, stride, device),
                    _ => Bottleneck::new(width * 4, width, 1, device),
                })
                .collect();
            input = width * 4;
            layer
        };
        let layer1 = stage(0, 64, 1);
        let layer2 = stage(1, 128, 2);
        let layer3 = stage(2, 256, 2);
        let layer4 = stage(3, 512, 2);
        let model = ResNet {
            conv1: conv(3, 64, 7, 2, 3, device),
            bn1: bn(64, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            fc: self
                .with_classifier
                .then(|| LinearConfig::new(RESNET_FEATURE_CHANNELS, self.num_classes).init(device)),
        };
        if self.frozen_bn {
            model.freeze_batch_norms()
        } else {
            model
        }
    }
}

impl ResNet {
    /// Channels of [`forward_features`](Self::forward_features): 2048.
    pub fn feature_channels(&self) -> usize {
        RESNET_FEATURE_CHANNELS
    }

    /// Total stride of [`forward_features`](Self::forward_features): 32.
    pub fn feature_stride(&self) -> usize {
        32
    }

    /// layer4's output `[B, 2048, H/32, W/32]` (torchvision rounding) of a normalised
    /// `[B, 3, H, W]` batch.
    pub fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        let x = relu(self.bn1.forward(self.conv1.forward(images)));
        let mut x = self.maxpool.forward(x);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        x
    }

    /// ImageNet logits: global average pooling, then `fc`.
    ///
    /// # Panics
    /// If the model was built without the classifier.
    pub fn forward_logits(&self, images: Tensor<4>) -> Tensor<2> {
        let fc = self
            .fc
            .as_ref()
            .expect("ResNet::forward_logits needs a model built with_classifier(true)");
        fc.forward(global_average_pool(self.forward_features(images)))
    }

    /// The same network with every batch norm frozen (see the module docs).
    pub fn freeze_batch_norms(self) -> Self {
        let freeze = |layer: Vec<Bottleneck>| -> Vec<Bottleneck> {
            layer.into_iter().map(Bottleneck::freeze_bn).collect()
        };
        Self {
            bn1: self.bn1.freeze(),
            layer1: freeze(self.layer1),
            layer2: freeze(self.layer2),
            layer3: freeze(self.layer3),
            layer4: freeze(self.layer4),
            ..self
        }
    }
}
