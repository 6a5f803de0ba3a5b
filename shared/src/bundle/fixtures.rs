//! Tiny bundles for the tests: the real backbone at 32 px, small heads.

use super::description::{BundleDescription, HeadDescription};
use crate::backbone::{BackboneConfig, BackboneKind};
use crate::exported::DecisionThreshold;
use crate::head::{LinearHeadConfig, Query2LabelConfig};
use crate::labels::LabelSpace;
use crate::model::HeadConfig;
use crate::preprocess::Preprocessing;

/// A linear head called `name` over Lite0's 1280 channels, 80 classes.
pub fn linear_head(name: &str) -> HeadDescription {
    HeadDescription {
        name: name.into(),
        description: String::new(),
        labels: None,
        loss: None,
        head: HeadConfig::Linear(LinearHeadConfig::new(80, 1280)),
        decision_threshold: DecisionThreshold::default(),
        weights: None,
    }
}

/// A narrow Query2Label head called `name`.
pub fn q2l_head(name: &str) -> HeadDescription {
    HeadDescription {
        head: HeadConfig::Query2Label(
            Query2LabelConfig::new(80, 1280)
                .with_hidden_dim(16)
                .with_feedforward_dim(16),
        ),
        ..linear_head(name)
    }
}

/// Lite0 at 32 px with COCO's 80 labels and the given heads.
pub fn with_heads(heads: Vec<HeadDescription>) -> BundleDescription {
    BundleDescription {
        backbone: BackboneConfig::new(BackboneKind::EfficientNetLite0),
        preprocessing: Preprocessing::imagenet(32),
        label_space: LabelSpace::coco80(),
        heads,
    }
}

/// A Query2Label head "full" and a linear head "wan".
pub fn two_heads() -> BundleDescription {
    with_heads(vec![q2l_head("full"), linear_head("wan")])
}
