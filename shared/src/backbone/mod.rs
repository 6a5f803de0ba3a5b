//! CNN backbones: EfficientNet-Lite0 (an exact port of `efficientnet-lite-pytorch`) and
//! torchvision's ResNet-50/101. Both give a stride-32 feature map through
//! [`Backbone::forward_features`].
//!
//! [`Backbone`] is a Burn module enum. Note that Burn puts the enum variant name into tensor
//! paths (`backbone.EfficientNetLite0.conv_stem.weight`) unless a store is built with
//! `skip_enum_variants(true)` (the default of `PytorchStore`, not of `SafetensorsStore`).

pub mod efficientnet_lite;
pub mod resnet;

use core::fmt;
use core::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use efficientnet_lite::{EfficientNetLite, EfficientNetLiteConfig};
pub use resnet::{ResNet, ResNetConfig, ResNetDepth};

/// The backbone architectures, serialised as `"efficientnet-lite0"`, `"resnet50"`,
/// `"resnet101"` (also what [`FromStr`]/[`Display`](fmt::Display) use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackboneKind {
    /// EfficientNet-Lite0: 1280 feature channels.
    #[serde(rename = "efficientnet-lite0")]
    EfficientNetLite0,
    /// ResNet-50: 2048 feature channels.
    #[serde(rename = "resnet50")]
    ResNet50,
    /// ResNet-101: 2048 feature channels.
    #[serde(rename = "resnet101")]
    ResNet101,
}

impl BackboneKind {
    /// Every kind.
    pub const ALL: [BackboneKind; 3] = [Self::EfficientNetLite0, Self::ResNet50, Self::ResNet101];

    /// The serialised name.
    pub fn name(self) -> &'static str {
        match self {
            Self::EfficientNetLite0 => "efficientnet-lite0",
            Self::ResNet50 => "resnet50",
            Self::ResNet101 => "resnet101",
        }
    }

    /// Channels of the feature map.
    pub fn feature_channels(self) -> usize {
        match self {
            Self::EfficientNetLite0 => efficientnet_lite::LITE0_FEATURE_CHANNELS,
            Self::ResNet50 | Self::ResNet101 => resnet::RESNET_FEATURE_CHANNELS,
        }
    }
}

impl fmt::Display for BackboneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackboneKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown backbone {s:?}; expected efficientnet-lite0, resnet50 or resnet101"
                )
            })
    }
}

/// Configuration of a [`Backbone`].
#[derive(Config, Debug)]
pub struct BackboneConfig {
    /// The architecture.
    pub kind: BackboneKind,
    /// Freeze every batch norm (running statistics, untrained γ/β), as Query2Label does for
    /// its ResNets.
    #[config(default = false)]
    pub frozen_bn: bool,
    /// Also build the ImageNet classifier `fc` (only useful to check pretrained weights).
    #[config(default = false)]
    pub with_classifier: bool,
}

impl BackboneConfig {
    /// Builds the backbone with freshly initialised parameters.
    pub fn init(&self, device: &Device) -> Backbone {
        match self.kind {
            BackboneKind::EfficientNetLite0 => Backbone::EfficientNetLite0(
                EfficientNetLiteConfig::new()
                    .with_with_classifier(self.with_classifier)
                    .with_frozen_bn(self.frozen_bn)
                    .init(device),
            ),
            BackboneKind::ResNet50 | BackboneKind::ResNet101 => {
                let depth = match self.kind {
                    BackboneKind::ResNet50 => ResNetDepth::ResNet50,
                    _ => ResNetDepth::ResNet101,
                };
                Backbone::ResNet(
                    ResNetConfig::new(depth)
                        .with_with_classifier(self.with_classifier)
                        .with_frozen_bn(self.frozen_bn)
                        .init(device),
                )
            }
        }
    }
}

/// A CNN backbone.
// One value per model: the size difference between the variants' headers does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone {
    /// EfficientNet-Lite0.
    EfficientNetLite0(EfficientNetLite),
    /// ResNet-50 or ResNet-101.
    ResNet(ResNet),
}

impl Backbone {
    /// The feature map `[B, C, ceil(H/32), ceil(W/32)]` of a normalised `[B, 3, H, W]` batch.
    pub fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        match self {
            Self::EfficientNetLite0(net) => net.forward_features(images),
            Self::ResNet(net) => net.forward_features(images),
        }
    }

    /// `C` of [`forward_features`](Self::forward_features): 1280 or 2048.
    pub fn feature_channels(&self) -> usize {
        match self {
            Self::EfficientNetLite0(net) => net.feature_channels(),
            Self::ResNet(net) => net.feature_channels(),
        }
    }

    /// Total stride of the feature map: 32.
    pub fn feature_stride(&self) -> usize {
        32
    }

    /// The same backbone with every batch norm frozen.
    pub fn freeze_batch_norms(self) -> Self {
        match self {
            Self::EfficientNetLite0(net) => Self::EfficientNetLite0(net.freeze_batch_norms()),
            Self::ResNet(net) => Self::ResNet(net.freeze_batch_norms()),
        }
    }
}

impl From<EfficientNetLite> for Backbone {
    fn from(net: EfficientNetLite) -> Self {
        Self::EfficientNetLite0(net)
    }
}

impl From<ResNet> for Backbone {
    fn from(net: ResNet) -> Self {
        Self::ResNet(net)
    }
}
