//! What the export formats share, and the single-model format 1.
//!
//! A model's description ([`ModelDescription`], also what a training run saves beside its
//! weights), its decision threshold record ([`DecisionThreshold`]) and the half-precision
//! conversion ([`half_precision`]) serve the bundles of [`crate::bundle`], which the trainer
//! writes and the browser reads. Format 1, one model per export (`model.json` +
//! `model.safetensors` with the whole classifier), is what `trainer export` wrote before
//! bundles; it is still read ([`parse_manifest`], [`load_exported_model`]) so that such exports
//! can be evaluated and converted into a bundle, but no longer written.

use std::fmt;

use burn::store::{HalfPrecisionAdapter, KeyRemapper};
#[cfg(test)]
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::export_tensors::{apply_export_tensors, read_export_tensors};
use crate::labels::LabelSpace;
use crate::metrics::ChosenThreshold;
use crate::model::{Classifier, ClassifierConfig};
use crate::preprocess::Preprocessing;

/// Version of the single-model export layout (bundles are
/// [`BUNDLE_FORMAT_VERSION`](crate::bundle::BUNDLE_FORMAT_VERSION)).
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// The threshold of a model that records none (made before calibration, or fresh from
/// training): the probability midpoint, which the multi-label papers report CF1 and OF1 at.
pub const DEFAULT_DECISION_THRESHOLD: f32 = 0.5;

/// The [`DecisionThreshold::rule`] of [`DEFAULT_DECISION_THRESHOLD`].
pub const DEFAULT_THRESHOLD_RULE: &str = "default";

/// Everything about a model but its parameters.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelDescription {
    pub classifier: ClassifierConfig,
    pub label_space: LabelSpace,
    pub preprocessing: Preprocessing,
    /// Which probabilities count as predicted labels. Absent from descriptions written before
    /// it existed, which read as the default 0.5 (so format 1 stays format 1).
    #[serde(default)]
    pub decision_threshold: DecisionThreshold,
}

impl ModelDescription {
    /// Why no network can be built or fed from this description, if none can: the head's
    /// sizes, its class count against the label space, the input size and normalisation, and
    /// the threshold, each named.
    pub fn check(&self) -> Result<(), String> {
        let head = &self.classifier.head;
        head.check()
            .map_err(|why| format!("classifier.head: {why}"))?;
        let (predicts, labels) = (head.num_classes(), self.label_space.n_classes());
        if predicts != labels {
            return Err(format!(
                "classifier.head predicts {predicts} classes but label_space has {labels}"
            ));
        }
        self.preprocessing
            .check()
            .map_err(|why| format!("preprocessing: {why}"))?;
        let threshold = self.decision_threshold.value;
        if !(0.0..=1.0).contains(&threshold) {
            return Err(format!(
                "decision_threshold {threshold} is not a probability in [0, 1]"
            ));
        }
        Ok(())
    }
}

/// A model's decision threshold: a label is predicted when its probability is `>= value`.
/// Recorded with the model because it belongs to it: a single-positive model's probabilities
/// run far higher than a fully supervised one's, so one fixed value suits neither.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionThreshold {
    pub value: f32,
    /// How `value` was chosen, for people (`"default"`, `"max overall F1 on the validation
    /// split with at most 1 wrong label per photo"`, …).
    pub rule: String,
    /// What `value` achieved on the photos it was chosen on, when it was chosen on some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ThresholdValidation>,
}

/// A decision threshold's results on the validation split it was chosen on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdValidation {
    /// Photos of the split that were scored.
    pub images: usize,
    /// Overall F1 at the threshold, in `[0, 1]`.
    pub overall_f1: f64,
    /// Mean labels at or above the threshold that a photo does not have.
    pub false_positives_per_image: f64,
    /// Mean labels at or above the threshold that a photo has.
    pub true_positives_per_image: f64,
}

impl Default for DecisionThreshold {
    fn default() -> Self {
        Self {
            value: DEFAULT_DECISION_THRESHOLD,
            rule: DEFAULT_THRESHOLD_RULE.into(),
            validation: None,
        }
    }
}

impl DecisionThreshold {
    /// The threshold [`choose_threshold`](crate::metrics::choose_threshold) picked, with its
    /// rule spelled out and its validation results.
    pub fn chosen_on_validation(chosen: &ChosenThreshold) -> Self {
        Self {
            value: chosen.threshold,
            rule: format!(
                "max overall F1 on the validation split with at most {} wrong label(s) per photo",
                chosen.max_false_positives_per_image
            ),
            validation: Some(ThresholdValidation {
                images: chosen.images,
                overall_f1: chosen.overall_f1,
                false_positives_per_image: chosen.per_image.false_positives,
                true_positives_per_image: chosen.per_image.true_positives,
            }),
        }
    }
}

/// `model.json` of a single-model export (format 1).
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportManifest {
    pub format_version: u32,
    /// The weights file beside the manifest.
    pub weights: String,
    /// `f16` for every weight but batch-norm statistics, which underflow in half precision.
    pub weights_precision: String,
    pub model: ModelDescription,
}

/// Why an export cannot be loaded.
#[derive(Debug)]
pub enum ExportError {
    /// The manifest is not valid JSON of the expected shape.
    Manifest(String),
    /// The manifest is of a format version this code does not read.
    Version(u32),
    /// The head and the label space disagree on the number of classes.
    ClassCount { head: usize, labels: usize },
    /// The decision threshold is not a number.
    Threshold(f32),
    /// The weights are not safetensors, or do not fit the network the manifest describes.
    Weights(String),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Manifest(why) => write!(f, "not a model manifest: {why}"),
            ExportError::Version(found) => write!(
                f,
                "export format {found} is not the {EXPORT_FORMAT_VERSION} this code reads"
            ),
            ExportError::ClassCount { head, labels } => write!(
                f,
                "the head predicts {head} classes but the label space has {labels}"
            ),
            ExportError::Threshold(value) => write!(
                f,
                "decision_threshold {value} is not a number; export the model again"
            ),
            ExportError::Weights(why) => write!(f, "weights do not match the model: {why}"),
        }
    }
}

impl std::error::Error for ExportError {}

/// The half-precision conversion, for the modules whose weights tolerate it: Burn's defaults
/// plus the Query2Label head's own parameters.
pub fn half_precision() -> HalfPrecisionAdapter {
    HalfPrecisionAdapter::new()
        .with_module("GroupWiseLinear")
        .with_module("Query2Label")
}

/// Parses and checks the `model.json` of a single-model export.
pub fn parse_manifest(json: &str) -> Result<ExportManifest, ExportError> {
    let manifest: ExportManifest =
        serde_json::from_str(json).map_err(|e| ExportError::Manifest(e.to_string()))?;
    if manifest.format_version != EXPORT_FORMAT_VERSION {
        return Err(ExportError::Version(manifest.format_version));
    }
    let head = manifest.model.classifier.head.num_classes();
    let labels = manifest.model.label_space.n_classes();
    if head != labels {
        return Err(ExportError::ClassCount { head, labels });
    }
    let threshold = manifest.model.decision_threshold.value;
    if !threshold.is_finite() {
        return Err(ExportError::Threshold(threshold));
    }
    manifest.model.check().map_err(ExportError::Manifest)?;
    Ok(manifest)
}

/// Serialises a model's weights in format 1's layout (half precision where it is safe): only
/// the tests still write it, to check that it reads.
#[cfg(test)]
pub fn export_weights(model: &Classifier) -> Result<Vec<u8>, ExportError> {
    let mut store = SafetensorsStore::from_bytes(None)
        .skip_enum_variants(true)
        .with_to_adapter(half_precision())
        .metadata(
            "querylabel_export_version",
            EXPORT_FORMAT_VERSION.to_string(),
        );
    model
        .save_into(&mut store)
        .map_err(|e| ExportError::Weights(e.to_string()))?;
    store
        .get_bytes()
        .map_err(|e| ExportError::Weights(e.to_string()))
}

/// Builds the network the manifest describes on `device` and fills it with `weights` (the
/// export's safetensors bytes, widened to f32). Strict: a missing, unexpected or misshapen
/// tensor is an error that names it.
pub fn load_exported_model(
    manifest: &ExportManifest,
    weights: Vec<u8>,
    device: &Device,
) -> Result<Classifier, ExportError> {
    let mut model = manifest.model.classifier.init(device);
    let tensors =
        read_export_tensors(&weights, &KeyRemapper::new()).map_err(ExportError::Weights)?;
    let problems = apply_export_tensors(&mut model, tensors);
    if problems.is_empty() {
        Ok(model)
    } else {
        Err(ExportError::Weights(format!(
            "{} problem(s):\n{problems}",
            problems.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::{BackboneConfig, BackboneKind};
    use crate::head::LinearHeadConfig;
    use crate::model::HeadConfig;
    use burn::tensor::{Tensor, Tolerance};

    fn tiny_description() -> ModelDescription {
        ModelDescription {
            classifier: ClassifierConfig::new(
                BackboneConfig::new(BackboneKind::EfficientNetLite0),
                HeadConfig::Linear(LinearHeadConfig::new(80, 1280)),
            ),
            label_space: LabelSpace::coco80(),
            preprocessing: Preprocessing::imagenet(32),
            decision_threshold: DecisionThreshold::default(),
        }
    }

    fn manifest_json(description: ModelDescription, version: u32) -> String {
        serde_json::to_string(&ExportManifest {
            format_version: version,
            weights: "model.safetensors".into(),
            weights_precision: "f16".into(),
            model: description,
        })
        .unwrap()
    }

    #[test]
    fn weights_round_trip_through_the_export_bytes() {
        let device = Device::flex();
        let manifest = parse_manifest(&manifest_json(tiny_description(), 1)).unwrap();
        let model = manifest.model.classifier.init(&device);
        let bytes = export_weights(&model).unwrap();
        let loaded = load_exported_model(&manifest, bytes, &device).unwrap();
        let input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let a = model.forward(input.clone()).logits.into_data();
        let b = loaded.forward(input).logits.into_data();
        // Half precision of the head's weights: close, not equal.
        a.assert_approx_eq::<f32>(&b, Tolerance::absolute(2e-2));
    }

    #[test]
    fn bad_manifests_and_weights_are_errors_that_say_why() {
        let device = Device::flex();
        assert!(matches!(
            parse_manifest("{\"format_version\": 1"),
            Err(ExportError::Manifest(_))
        ));
        assert!(matches!(
            parse_manifest(&manifest_json(tiny_description(), 7)),
            Err(ExportError::Version(7))
        ));
        let mut wrong_head = tiny_description();
        wrong_head.classifier.head = HeadConfig::Linear(LinearHeadConfig::new(20, 1280));
        assert!(matches!(
            parse_manifest(&manifest_json(wrong_head, 1)),
            Err(ExportError::ClassCount {
                head: 20,
                labels: 80
            })
        ));
        let manifest = parse_manifest(&manifest_json(tiny_description(), 1)).unwrap();
        let Err(error) = load_exported_model(&manifest, b"not safetensors".to_vec(), &device)
        else {
            panic!("garbage weights must be refused");
        };
        assert!(matches!(error, ExportError::Weights(_)), "{error}");
    }

    #[test]
    fn manifests_without_a_threshold_read_as_the_default() {
        // A format-1 manifest as written before thresholds were recorded.
        let mut json: serde_json::Value =
            serde_json::from_str(&manifest_json(tiny_description(), 1)).unwrap();
        json["model"]
            .as_object_mut()
            .unwrap()
            .remove("decision_threshold")
            .expect("the manifest had a threshold to remove");
        let manifest = parse_manifest(&json.to_string()).unwrap();
        assert_eq!(manifest.model.decision_threshold.value, 0.5);
        assert_eq!(manifest.model.decision_threshold.rule, "default");
        assert_eq!(manifest.model.decision_threshold.validation, None);
    }

    #[test]
    fn a_chosen_threshold_is_recorded_and_read_back() {
        let chosen = ChosenThreshold {
            threshold: 0.63,
            overall_f1: 0.6,
            per_image: crate::metrics::LabelsPerImage {
                false_positives: 0.8,
                true_positives: 1.9,
            },
            images: 1006,
            max_false_positives_per_image: 1.0,
        };
        let mut description = tiny_description();
        description.decision_threshold = DecisionThreshold::chosen_on_validation(&chosen);
        let json = manifest_json(description, 1);
        let raw: serde_json::Value = serde_json::from_str(&json).unwrap();
        let recorded = &raw["model"]["decision_threshold"];
        assert_eq!(recorded["value"].as_f64().unwrap() as f32, 0.63);
        assert_eq!(recorded["validation"]["images"], 1006);
        assert!(recorded["rule"].as_str().unwrap().contains("overall F1"));

        let threshold = parse_manifest(&json).unwrap().model.decision_threshold;
        assert_eq!(threshold.value, 0.63);
        assert_eq!(
            threshold.validation,
            Some(ThresholdValidation {
                images: 1006,
                overall_f1: 0.6,
                false_positives_per_image: 0.8,
                true_positives_per_image: 1.9,
            })
        );

        // A value too large for an f32 reads as infinity: refused, not used.
        let mut raw = raw;
        raw["model"]["decision_threshold"]["value"] = serde_json::json!(1e300);
        assert!(matches!(
            parse_manifest(&raw.to_string()),
            Err(ExportError::Threshold(value)) if value.is_infinite()
        ));
    }
}
