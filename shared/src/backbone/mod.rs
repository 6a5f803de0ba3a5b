//! CNN backbones: EfficientNet-Lite0/1/2 (an exact port of `efficientnet-lite-pytorch`) and
//! torchvision's ResNet-50/101. All give a stride-32 feature map through
//! [`Backbone::forward_features`].
//!
//! [`Backbone`] is a Burn module enum. Note that Burn puts the enum variant name into tensor
//! paths (`backbone.EfficientNetLite.conv_stem.weight`) unless a store is built with
//! `skip_enum_variants(true)` (the default of `PytorchStore`, not of `SafetensorsStore`).

pub mod batch_norm_folding;
pub mod depthwise_gradients;
pub mod efficientnet_lite;
pub mod relu6;
pub mod resnet;
pub mod training_convolution;

use core::fmt;
use core::str::FromStr;

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use efficientnet_lite::{EfficientNetLite, EfficientNetLiteConfig, LiteVariant};
pub use resnet::{ResNet, ResNetConfig, ResNetDepth};

/// The backbone architectures, serialised as `"efficientnet-lite0"`, `"efficientnet-lite1"`,
/// `"efficientnet-lite2"`, `"resnet50"`, `"resnet101"` (also what [`FromStr`] and
/// [`Display`](fmt::Display) use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackboneKind {
    /// EfficientNet-Lite0: 1280 feature channels.
    #[serde(rename = "efficientnet-lite0")]
    EfficientNetLite0,
    /// EfficientNet-Lite1: 1280 feature channels.
    #[serde(rename = "efficientnet-lite1")]
    EfficientNetLite1,
    /// EfficientNet-Lite2: 1280 feature channels.
    #[serde(rename = "efficientnet-lite2")]
    EfficientNetLite2,
    /// ResNet-50: 2048 feature channels.
    #[serde(rename = "resnet50")]
    ResNet50,
    /// ResNet-101: 2048 feature channels.
    #[serde(rename = "resnet101")]
    ResNet101,
}

impl BackboneKind {
    /// Every kind.
    pub const ALL: [BackboneKind; 5] = [
        Self::EfficientNetLite0,
        Self::EfficientNetLite1,
        Self::EfficientNetLite2,
        Self::ResNet50,
        Self::ResNet101,
    ];

    /// The serialised name.
    pub fn name(self) -> &'static str {
        match self {
            Self::EfficientNetLite0 => "efficientnet-lite0",
            Self::EfficientNetLite1 => "efficientnet-lite1",
            Self::EfficientNetLite2 => "efficientnet-lite2",
            Self::ResNet50 => "resnet50",
            Self::ResNet101 => "resnet101",
        }
    }

    /// Channels of the feature map.
    pub fn feature_channels(self) -> usize {
        match self.lite_variant() {
            Some(_) => efficientnet_lite::LITE_FEATURE_CHANNELS,
            None => resnet::RESNET_FEATURE_CHANNELS,
        }
    }

    /// The EfficientNet-Lite variant, for the Lite kinds.
    pub fn lite_variant(self) -> Option<LiteVariant> {
        match self {
            Self::EfficientNetLite0 => Some(LiteVariant::Lite0),
            Self::EfficientNetLite1 => Some(LiteVariant::Lite1),
            Self::EfficientNetLite2 => Some(LiteVariant::Lite2),
            Self::ResNet50 | Self::ResNet101 => None,
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
                let names: Vec<&str> = Self::ALL.iter().map(|kind| kind.name()).collect();
                format!(
                    "unknown backbone {s:?}; expected one of {}",
                    names.join(", ")
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
        let depth = match (self.kind.lite_variant(), self.kind) {
            (Some(variant), _) => {
                return Backbone::EfficientNetLite(
                    EfficientNetLiteConfig::new()
                        .with_variant(variant)
                        .with_with_classifier(self.with_classifier)
                        .with_frozen_bn(self.frozen_bn)
                        .init(device),
                );
            }
            (None, BackboneKind::ResNet50) => ResNetDepth::ResNet50,
            (None, _) => ResNetDepth::ResNet101,
        };
        Backbone::ResNet(
            ResNetConfig::new(depth)
                .with_with_classifier(self.with_classifier)
                .with_frozen_bn(self.frozen_bn)
                .init(device),
        )
    }
}

/// A CNN backbone.
// One value per model: the size difference between the variants' headers does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone {
    /// EfficientNet-Lite0, Lite1 or Lite2.
    EfficientNetLite(EfficientNetLite),
    /// ResNet-50 or ResNet-101.
    ResNet(ResNet),
}

impl Backbone {
    /// The feature map `[B, C, ceil(H/32), ceil(W/32)]` of a normalised `[B, 3, H, W]` batch.
    pub fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        match self {
            Self::EfficientNetLite(net) => net.forward_features(images),
            Self::ResNet(net) => net.forward_features(images),
        }
    }

    /// `C` of [`forward_features`](Self::forward_features): 1280 or 2048.
    pub fn feature_channels(&self) -> usize {
        match self {
            Self::EfficientNetLite(net) => net.feature_channels(),
            Self::ResNet(net) => net.feature_channels(),
        }
    }

    /// Total stride of the feature map: 32.
    pub fn feature_stride(&self) -> usize {
        32
    }

    /// The same backbone for inference, with its batch norms folded into the convolutions
    /// before them (see [`batch_norm_folding`]): an EfficientNet-Lite's; a ResNet, which no
    /// shipped model uses, keeps its own. Only for a backbone that is neither trained nor saved
    /// after.
    pub fn fold_batch_norms(self) -> Self {
        match self {
            Self::EfficientNetLite(net) => Self::EfficientNetLite(net.fold_batch_norms()),
            Self::ResNet(net) => Self::ResNet(net),
        }
    }

    /// The same backbone with every batch norm frozen.
    pub fn freeze_batch_norms(self) -> Self {
        match self {
            Self::EfficientNetLite(net) => Self::EfficientNetLite(net.freeze_batch_norms()),
            Self::ResNet(net) => Self::ResNet(net.freeze_batch_norms()),
        }
    }
}

impl From<EfficientNetLite> for Backbone {
    fn from(net: EfficientNetLite) -> Self {
        Self::EfficientNetLite(net)
    }
}

impl From<ResNet> for Backbone {
    fn from(net: ResNet) -> Self {
        Self::ResNet(net)
    }
}
