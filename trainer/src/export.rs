//! Exporting a model for the browser: weights in half precision (safetensors) and a small JSON
//! manifest with the classes, input size, normalisation and network configuration.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::store::{HalfPrecisionAdapter, ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use querylabel::model::Classifier;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{read_json, write_atomically, write_json};
use crate::saved_model::{ModelDescription, load_model};
use crate::weights::check_apply_result;

/// Version of the export layout; readers refuse versions they do not know.
pub const EXPORT_FORMAT_VERSION: u32 = 1;
const MANIFEST_FILE: &str = "model.json";
const WEIGHTS_FILE: &str = "model.safetensors";

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

/// The half-precision conversion, for the modules whose weights tolerate it: Burn's defaults
/// plus the Query2Label head's own parameters.
pub fn half_precision() -> HalfPrecisionAdapter {
    HalfPrecisionAdapter::new()
        .with_module("GroupWiseLinear")
        .with_module("Query2Label")
}

/// Exports the model of a model or run directory into `out` (created if needed); returns the
/// manifest's path.
pub fn export_model(model_path: &Path, out: &Path) -> Result<PathBuf> {
    let device = Device::flex();
    let (model, description) = load_model(model_path, &device)?;
    let mut store = SafetensorsStore::from_bytes(None)
        .skip_enum_variants(true)
        .with_to_adapter(half_precision())
        .metadata(
            "querylabel_export_version",
            EXPORT_FORMAT_VERSION.to_string(),
        );
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("cannot serialise the model: {e}"))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the model: {e}"))?;
    write_atomically(&out.join(WEIGHTS_FILE), &bytes)?;
    let manifest = ExportManifest {
        format_version: EXPORT_FORMAT_VERSION,
        weights: WEIGHTS_FILE.into(),
        weights_precision: "f16".into(),
        model: description,
    };
    let path = out.join(MANIFEST_FILE);
    write_json(&path, &manifest)?;
    Ok(path)
}

/// Whether `dir` holds an export (rather than a training checkpoint's model).
pub fn is_export(dir: &Path) -> bool {
    dir.join(WEIGHTS_FILE).is_file()
}

/// Loads an export back (weights widened to f32), strictly.
pub fn load_exported(dir: &Path, device: &Device) -> Result<(Classifier, ModelDescription)> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest: ExportManifest = read_json(&manifest_path)?;
    if manifest.format_version != EXPORT_FORMAT_VERSION {
        bail!(
            "{}: export format {} is not the {} this trainer reads",
            manifest_path.display(),
            manifest.format_version,
            EXPORT_FORMAT_VERSION
        );
    }
    let weights = dir.join(&manifest.weights);
    let bytes =
        std::fs::read(&weights).with_context(|| format!("cannot read {}", weights.display()))?;
    let mut model = manifest.model.classifier.init(device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .skip_enum_variants(true)
        .with_from_adapter(half_precision())
        .validate(false)
        .allow_partial(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("{}: {e}", weights.display()))?;
    check_apply_result(&result, &weights.display().to_string(), |_| false)?;
    Ok((model, manifest.model))
}
