//! What a bundle holds, all but its parameters: the backbone, the input it takes, the labels
//! every head predicts, and per head its name, what it was trained with, its network and its
//! decision threshold. [`BundleDescription::init`] checks that these fit together before it
//! builds anything.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::error::BundleError;
use super::model::Bundle;
use crate::backbone::BackboneConfig;
use crate::exported::{DecisionThreshold, ModelDescription};
use crate::labels::LabelSpace;
use crate::loss::LossKind;
use crate::model::{ClassifierConfig, HeadConfig};
use crate::preprocess::Preprocessing;

/// Longest head name.
const MAX_HEAD_NAME: usize = 32;

/// The backbone, input and label space shared by every head, and the heads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleDescription {
    pub backbone: BackboneConfig,
    /// Input size and normalisation: the backbone's, so every head's.
    pub preprocessing: Preprocessing,
    /// The classes every head predicts, in output order.
    pub label_space: LabelSpace,
    /// In the order they are shown.
    pub heads: Vec<HeadDescription>,
}

/// Which labels a head was trained with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainingLabels {
    /// Every positive label of every photo.
    Full,
    /// One positive label per photo (the single-positive protocol).
    SinglePositive,
}

impl TrainingLabels {
    /// The serialised name, also what [`FromStr`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::SinglePositive => "single-positive",
        }
    }

    /// The phrase a person reads: "trained with all labels", ….
    pub fn phrase(self) -> &'static str {
        match self {
            Self::Full => "trained with all labels",
            Self::SinglePositive => "trained from one positive label per image",
        }
    }
}

impl FromStr for TrainingLabels {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Full, Self::SinglePositive]
            .into_iter()
            .find(|labels| labels.name() == s)
            .ok_or_else(|| format!("{s:?}: expected full or single-positive"))
    }
}

impl fmt::Display for TrainingLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One head of a bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeadDescription {
    /// Its name, unique in the bundle (`"full"`, `"wan"`): its tensors' prefix, and what
    /// `--head` and the page call it.
    pub name: String,
    /// A short description for people ("trained with all labels, ASL loss").
    pub description: String,
    /// Which labels it was trained with, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<TrainingLabels>,
    /// The loss it was trained with, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossKind>,
    pub head: HeadConfig,
    pub decision_threshold: DecisionThreshold,
    /// The file beside the manifest that holds this head's tensors, when they are not in the
    /// bundle's main weights file: the page downloads it only when a visitor asks for the head.
    /// Such heads come after every head of the main file, so that the heads loaded first keep
    /// their places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
}

/// `"trained with all labels, ASL loss"`, or as much of it as is known (empty when nothing is).
pub fn default_head_description(labels: Option<TrainingLabels>, loss: Option<LossKind>) -> String {
    let parts: Vec<String> = [
        labels.map(|labels| labels.phrase().to_string()),
        loss.map(|loss| format!("{} loss", loss.name().to_uppercase())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let text = parts.join(", ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// A file name without a directory part, so that a manifest can only name files beside it.
fn is_plain_file_name(file: &str) -> bool {
    !file.is_empty()
        && file.len() <= 255
        && file != "."
        && file != ".."
        && !file.contains(['/', '\\', ':'])
        && !file.chars().any(char::is_control)
}

/// Whether `name` can name a head: see [`BundleError::HeadName`].
pub fn is_valid_head_name(name: &str) -> bool {
    name.len() <= MAX_HEAD_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl BundleDescription {
    /// Checks that the input can feed the backbone, that the heads' sizes can be built and fit
    /// the backbone and label space, and that they have sound unique names and probabilities as
    /// thresholds.
    pub fn validate(&self) -> Result<(), BundleError> {
        if self.heads.is_empty() {
            return Err(BundleError::NoHeads);
        }
        self.preprocessing
            .check()
            .map_err(|why| BundleError::Field {
                field: "preprocessing".into(),
                why,
            })?;
        let labels = self.label_space.n_classes();
        let channels = self.backbone.kind.feature_channels();
        for (i, head) in self.heads.iter().enumerate() {
            let name = &head.name;
            if !is_valid_head_name(name) {
                return Err(BundleError::HeadName(name.clone()));
            }
            head.head.check().map_err(|why| BundleError::Field {
                field: format!("head {name:?}"),
                why,
            })?;
            if self.heads[..i].iter().any(|other| other.name == *name) {
                return Err(BundleError::DuplicateHead(name.clone()));
            }
            let predicts = head.head.num_classes();
            if predicts != labels {
                return Err(BundleError::ClassCount {
                    head: name.clone(),
                    predicts,
                    labels,
                });
            }
            let reads = head.head.in_channels();
            if reads != channels {
                return Err(BundleError::Channels {
                    head: name.clone(),
                    reads,
                    backbone: channels,
                });
            }
            if let Some(file) = &head.weights {
                if !is_plain_file_name(file) {
                    return Err(BundleError::HeadFile {
                        head: name.clone(),
                        why: format!("{file:?} is not a plain file name beside the manifest"),
                    });
                }
                if self.heads[..i]
                    .iter()
                    .any(|other| other.weights.as_ref() == Some(file))
                {
                    return Err(BundleError::HeadFile {
                        head: name.clone(),
                        why: format!("{file:?} is another head's file too"),
                    });
                }
            } else if let Some(before) = self.heads[..i].iter().find(|h| h.weights.is_some()) {
                return Err(BundleError::HeadFile {
                    head: name.clone(),
                    why: format!(
                        "it is in the main weights file, so it must come before {:?}, whose \
                         weights are a file of their own",
                        before.name
                    ),
                });
            }
            let value = head.decision_threshold.value;
            if !(0.0..=1.0).contains(&value) {
                return Err(BundleError::Threshold {
                    head: name.clone(),
                    value,
                });
            }
        }
        Ok(())
    }

    /// The bundle as first loaded: the backbone and the heads in the main weights file.
    pub fn in_main_file(&self) -> BundleDescription {
        BundleDescription {
            heads: self
                .heads
                .iter()
                .filter(|head| head.weights.is_none())
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The heads whose weights are files of their own, loaded on demand, in order (they follow
    /// the main file's heads).
    pub fn on_demand_heads(&self) -> &[HeadDescription] {
        let first = self.heads.iter().position(|head| head.weights.is_some());
        &self.heads[first.unwrap_or(self.heads.len())..]
    }

    /// Validates, then builds the network with fresh parameters on `device`.
    pub fn init(&self, device: &Device) -> Result<Bundle, BundleError> {
        self.validate()?;
        Ok(Bundle {
            backbone: self.backbone.init(device),
            heads: self.heads.iter().map(|h| h.head.init(device)).collect(),
        })
    }

    /// The head names, in order.
    pub fn head_names(&self) -> Vec<String> {
        self.heads.iter().map(|head| head.name.clone()).collect()
    }

    /// The position of the head called `name`.
    pub fn head_index(&self, name: &str) -> Result<usize, BundleError> {
        self.heads
            .iter()
            .position(|head| head.name == name)
            .ok_or_else(|| BundleError::UnknownHead {
                name: name.into(),
                known: self.head_names(),
            })
    }

    /// Head `index` on the backbone as one model, as training runs describe theirs.
    pub fn model_description(&self, index: usize) -> ModelDescription {
        let head = &self.heads[index];
        ModelDescription {
            classifier: ClassifierConfig::new(self.backbone.clone(), head.head.clone()),
            label_space: self.label_space.clone(),
            preprocessing: self.preprocessing.clone(),
            decision_threshold: head.decision_threshold.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::fixtures::two_heads;
    use crate::head::LinearHeadConfig;

    #[test]
    fn fields_no_network_can_take_are_named() {
        let field_of = |description: BundleDescription| match description.validate() {
            Err(BundleError::Field { field, why }) => format!("{field}: {why}"),
            other => panic!("expected a field error, got {other:?}"),
        };
        let mut zero_size = two_heads();
        zero_size.preprocessing.height = 0;
        assert!(field_of(zero_size).contains("input height 0 px"));
        let mut zero_std = two_heads();
        zero_std.preprocessing.std[1] = 0.0;
        assert!(field_of(zero_std).contains("standard deviation 0"));
        let mut nan_mean = two_heads();
        nan_mean.preprocessing.mean[0] = f32::NAN;
        assert!(field_of(nan_mean).contains("mean NaN"));
        let odd_heads = |hidden: usize, heads: usize| {
            let mut description = two_heads();
            let HeadConfig::Query2Label(config) = &mut description.heads[0].head else {
                unreachable!("the first fixture head is Query2Label")
            };
            config.hidden_dim = hidden;
            config.heads = heads;
            description
        };
        let why = field_of(odd_heads(18, 4));
        assert!(
            why.starts_with("head \"full\"") && why.contains("does not split"),
            "{why}"
        );
        assert!(field_of(odd_heads(16, 0)).contains("heads is 0"));
        assert!(field_of(odd_heads(0, 4)).contains("hidden_dim is 0"));
    }

    #[test]
    fn a_sound_description_validates_and_finds_its_heads() {
        let description = two_heads();
        description.validate().unwrap();
        assert_eq!(description.head_index("wan"), Ok(1));
        assert_eq!(
            description.head_index("an"),
            Err(BundleError::UnknownHead {
                name: "an".into(),
                known: vec!["full".into(), "wan".into()]
            })
        );
        let single = description.model_description(1);
        assert_eq!(single.label_space.n_classes(), 80);
    }

    #[test]
    fn heads_that_do_not_fit_are_refused_with_the_reason() {
        let mut description = two_heads();
        description.heads.clear();
        assert_eq!(description.validate(), Err(BundleError::NoHeads));

        let mut description = two_heads();
        description.heads[1].name = "full".into();
        assert_eq!(
            description.validate(),
            Err(BundleError::DuplicateHead("full".into()))
        );

        for bad in ["", "Full", "1st", "a.b", "with space", &"x".repeat(33)] {
            let mut description = two_heads();
            description.heads[0].name = bad.into();
            assert_eq!(
                description.validate(),
                Err(BundleError::HeadName(bad.into())),
                "{bad:?}"
            );
        }

        let mut description = two_heads();
        description.heads[1].head = HeadConfig::Linear(LinearHeadConfig::new(20, 1280));
        let error = description.validate().unwrap_err();
        assert_eq!(
            error,
            BundleError::ClassCount {
                head: "wan".into(),
                predicts: 20,
                labels: 80
            }
        );
        assert!(error.to_string().contains("\"wan\" predicts 20 classes"));

        let mut description = two_heads();
        description.heads[0].head = HeadConfig::Linear(LinearHeadConfig::new(80, 2048));
        assert!(matches!(
            description.validate(),
            Err(BundleError::Channels {
                reads: 2048,
                backbone: 1280,
                ..
            })
        ));

        let mut description = two_heads();
        description.heads[0].decision_threshold.value = f32::NAN;
        assert!(matches!(
            description.validate(),
            Err(BundleError::Threshold { .. })
        ));
        assert!(description.init(&Device::flex()).is_err());
    }

    #[test]
    fn descriptions_say_what_is_known() {
        assert_eq!(
            default_head_description(Some(TrainingLabels::Full), Some(LossKind::Asl)),
            "Trained with all labels, ASL loss"
        );
        assert_eq!(
            default_head_description(None, Some(LossKind::Wan)),
            "WAN loss"
        );
        assert_eq!(default_head_description(None, None), "");
    }

    #[test]
    fn heads_with_files_of_their_own_come_last_and_name_plain_distinct_files() {
        let mut description = two_heads();
        description.heads[1].weights = Some("head-wan.safetensors".into());
        description.validate().unwrap();
        assert_eq!(description.in_main_file().head_names(), ["full"]);
        let on_demand: Vec<_> = description
            .on_demand_heads()
            .iter()
            .map(|h| &h.name)
            .collect();
        assert_eq!(on_demand, ["wan"]);
        assert!(two_heads().on_demand_heads().is_empty());

        let why = |description: &BundleDescription| match description.validate() {
            Err(BundleError::HeadFile { head, why }) => format!("{head}: {why}"),
            other => panic!("expected a head file error, got {other:?}"),
        };
        let mut first_on_demand = two_heads();
        first_on_demand.heads[0].weights = Some("head-full.safetensors".into());
        assert!(why(&first_on_demand).starts_with("wan: it is in the main weights file"));
        for file in ["../model.safetensors", "/etc/passwd", "a\\b", ".."] {
            let mut outside = two_heads();
            outside.heads[1].weights = Some(file.into());
            assert!(why(&outside).contains("not a plain file name"), "{file}");
        }
        let mut shared = description.clone();
        shared.heads.push(HeadDescription {
            name: "epr".into(),
            ..shared.heads[1].clone()
        });
        assert!(why(&shared).starts_with("epr: \"head-wan.safetensors\" is another head's file"));
    }
}
