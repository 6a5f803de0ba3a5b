//! A complete multi-label classifier: a CNN backbone and a head (Query2Label or linear).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::backbone::{Backbone, BackboneConfig};
use crate::head::{LinearHead, LinearHeadConfig, Query2Label, Query2LabelConfig};

/// Which head sits on the backbone.
#[derive(Config, Debug)]
pub enum HeadConfig {
    /// Label queries cross-attending to the feature map.
    Query2Label(Query2LabelConfig),
    /// Global average pooling and one linear layer.
    Linear(LinearHeadConfig),
}

/// A classification head over a feature map.
// One value per model: the size difference between the variants' headers does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Head {
    Query2Label(Query2Label),
    Linear(LinearHead),
}

/// Logits, and for Query2Label where each label looked.
pub struct ClassifierOutput {
    /// `[batch, num_classes]`.
    pub logits: Tensor<2>,
    /// Per decoder layer `[batch, heads, num_classes, height · width]`; empty for the linear
    /// head, which has no per-label attention.
    pub cross_attention: Vec<Tensor<4>>,
    /// `[height, width]` of the feature map.
    pub feature_size: [usize; 2],
}

impl HeadConfig {
    /// Why these sizes cannot make a head, if they cannot: Burn's layers would panic on them.
    /// Every reader of a stored configuration calls it before [`init`](Self::init).
    pub fn check(&self) -> Result<(), String> {
        let (classes, channels) = (self.num_classes(), self.in_channels());
        if classes == 0 || channels == 0 {
            return Err(format!(
                "a head needs at least one class and one input channel, not {classes} classes \
                 over {channels} channels"
            ));
        }
        match self {
            HeadConfig::Query2Label(config) => config.check(),
            HeadConfig::Linear(_) => Ok(()),
        }
    }

    pub fn init(&self, device: &Device) -> Head {
        match self {
            HeadConfig::Query2Label(config) => Head::Query2Label(config.init(device)),
            HeadConfig::Linear(config) => Head::Linear(config.init(device)),
        }
    }

    /// Number of labels the head predicts.
    pub fn num_classes(&self) -> usize {
        match self {
            HeadConfig::Query2Label(config) => config.num_classes,
            HeadConfig::Linear(config) => config.num_classes,
        }
    }

    /// Channels of the feature map the head reads.
    pub fn in_channels(&self) -> usize {
        match self {
            HeadConfig::Query2Label(config) => config.in_channels,
            HeadConfig::Linear(config) => config.in_channels,
        }
    }
}

impl Head {
    /// `features`: `[batch, channels, height, width]` from the backbone.
    pub fn forward(&self, features: Tensor<4>) -> ClassifierOutput {
        let [_, _, height, width] = features.dims();
        match self {
            Head::Query2Label(head) => {
                let output = head.forward(features);
                ClassifierOutput {
                    logits: output.logits,
                    cross_attention: output.cross_attention,
                    feature_size: output.feature_size,
                }
            }
            Head::Linear(head) => ClassifierOutput {
                logits: head.forward(features),
                cross_attention: Vec::new(),
                feature_size: [height, width],
            },
        }
    }
}

/// Configuration of a [`Classifier`]: serialised next to every checkpoint and export so that a
/// model file always says how to rebuild its network.
#[derive(Config, Debug)]
pub struct ClassifierConfig {
    pub backbone: BackboneConfig,
    pub head: HeadConfig,
}

/// Backbone + head.
#[derive(Module, Debug)]
pub struct Classifier {
    pub backbone: Backbone,
    pub head: Head,
}

impl ClassifierConfig {
    pub fn init(&self, device: &Device) -> Classifier {
        Classifier {
            backbone: self.backbone.init(device),
            head: self.head.init(device),
        }
    }
}

impl Classifier {
    /// `images`: normalised `[batch, 3, height, width]`.
    pub fn forward(&self, images: Tensor<4>) -> ClassifierOutput {
        self.head.forward(self.backbone.forward_features(images))
    }
}
