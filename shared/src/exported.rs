//! The exported model format that the trainer writes and the browser reads: a `model.json`
//! manifest and half-precision safetensors weights. Loading works on bytes already in memory, so
//! the native trainer and the wasm demo share this one loader; reading the files is the
//! caller's business.

use std::fmt;

use burn::store::{HalfPrecisionAdapter, ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::labels::LabelSpace;
use crate::load_problems::LoadProblems;
use crate::model::{Classifier, ClassifierConfig};
use crate::preprocess::Preprocessing;

/// Version of the export layout; readers refuse versions they do not know.
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// Everything about a model but its parameters.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelDescription {
    pub classifier: ClassifierConfig,
    pub label_space: LabelSpace,
    pub preprocessing: Preprocessing,
}

/// `model.json` of an export.
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

/// Parses and checks a `model.json`.
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
    Ok(manifest)
}

/// Serialises a model's weights in the export's layout (half precision where it is safe).
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
    let mut store = SafetensorsStore::from_bytes(Some(weights))
        .skip_enum_variants(true)
        .with_from_adapter(half_precision())
        .validate(false)
        .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| ExportError::Weights(e.to_string()))?;
    let problems = LoadProblems::of(&result, |_| false);
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
}
