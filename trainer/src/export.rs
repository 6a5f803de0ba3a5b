//! Exporting a model for the browser: weights in half precision (safetensors) and a small JSON
//! manifest with the classes, input size, normalisation, network configuration and decision
//! threshold.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use querylabel::exported::{load_exported_model, parse_manifest};
use querylabel::model::Classifier;

use crate::calibration::{ThresholdChoice, decision_threshold};
use crate::checkpoint::{write_atomically, write_json};
use crate::saved_model::load_model;

pub use querylabel::exported::{
    EXPORT_FORMAT_VERSION, ExportManifest, ModelDescription, export_weights, half_precision,
};

const MANIFEST_FILE: &str = "model.json";
const WEIGHTS_FILE: &str = "model.safetensors";

/// Exports the model of a model or run directory into `out` (created if needed), its decision
/// threshold set as `threshold` says; returns the manifest's path. Nothing is written until
/// the threshold is known, so a failure leaves no half export.
pub fn export_model(model_path: &Path, out: &Path, threshold: ThresholdChoice) -> Result<PathBuf> {
    let device = Device::flex();
    let (model, description) = load_model(model_path, &device)?;
    let bytes =
        export_weights(&model).map_err(|e| anyhow::anyhow!("cannot serialise the model: {e}"))?;
    let mut manifest = ExportManifest {
        format_version: EXPORT_FORMAT_VERSION,
        weights: WEIGHTS_FILE.into(),
        weights_precision: "f16".into(),
        model: description,
    };
    // The threshold is chosen for the half-precision weights the export ships.
    let exported = load_exported_model(&manifest, bytes.clone(), &device).map_err(|e| {
        anyhow::anyhow!("the export of {} does not load: {e}", model_path.display())
    })?;
    manifest.model.decision_threshold =
        decision_threshold(threshold, model_path, &exported, &manifest.model, &device)?;
    write_atomically(&out.join(WEIGHTS_FILE), &bytes)?;
    let path = out.join(MANIFEST_FILE);
    write_json(&path, &manifest)?;
    Ok(path)
}

/// Whether `dir` holds an export (rather than a training checkpoint's model).
pub fn is_export(dir: &Path) -> bool {
    dir.join(WEIGHTS_FILE).is_file()
}

/// Loads an export back (weights widened to f32), strictly, through the loader the browser
/// uses too.
pub fn load_exported(dir: &Path, device: &Device) -> Result<(Classifier, ModelDescription)> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let json = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest =
        parse_manifest(&json).map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    let weights = dir.join(&manifest.weights);
    let bytes =
        std::fs::read(&weights).with_context(|| format!("cannot read {}", weights.display()))?;
    let model = load_exported_model(&manifest, bytes, device)
        .map_err(|e| anyhow::anyhow!("{}: {e}", weights.display()))?;
    Ok((model, manifest.model))
}
