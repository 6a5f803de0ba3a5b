//! A trained model on disk: `model.json` says how to rebuild the network, which labels it
//! predicts and how to preprocess images; `model.bpk` holds the parameters. A run directory
//! keeps its best model under `best/`.

use std::path::Path;

use burn::tensor::Device;
use querylabel::exported::{load_exported_model, parse_manifest};
use querylabel::model::Classifier;

use crate::atomic_files::replace_directory;
use crate::checkpoint::{ModelFiles, load_module, read_json, save_module, write_json};
use crate::error::{Context, Locate, Result, TrainerError};
use crate::model_dir::{ModelKind, ModelSource};

/// Everything about a model but its parameters (shared with the browser's loader).
pub use querylabel::exported::ModelDescription;

/// Saves a model with its description into `dir`, which is replaced as a whole: a kill leaves
/// the old model or the new one, never the parameters of one with the description of another.
pub fn save_model(dir: &Path, model: &Classifier, description: &ModelDescription) -> Result<()> {
    replace_directory(dir, |staging| {
        let files = ModelFiles::in_dir(staging);
        save_module(model, &files.weights)?;
        write_json(&files.config, description)
    })
}

/// Loads the one model of a model or run directory onto `device`. Single-model exports of
/// format 1 load too, their weights widened to f32; a bundle of heads is refused (see
/// [`load_heads`](crate::model_source::load_heads)).
pub fn load_model(path: &Path, device: &Device) -> Result<(Classifier, ModelDescription)> {
    let source = ModelSource::of(path)?;
    let dir = source.dir;
    match source.kind {
        ModelKind::Saved => {}
        ModelKind::SingleExport => return load_single_export(&dir, device),
        ModelKind::Bundle => {
            return Err(TrainerError::new(
                "a bundle of heads, not one model; load it with model_source::load_heads",
            )
            .in_file(&dir));
        }
    }
    let files = ModelFiles::in_dir(&dir);
    let description: ModelDescription = read_json(&files.config)?;
    description.check().in_file(&files.config)?;
    let model = load_module(description.classifier.init(device), &files.weights)?;
    Ok((model, description))
}

/// Loads a single-model export of format 1 from `dir` (weights widened to f32), strictly.
fn load_single_export(dir: &Path, device: &Device) -> Result<(Classifier, ModelDescription)> {
    let manifest_path = ModelFiles::in_dir(dir).config;
    let json = std::fs::read_to_string(&manifest_path).context_in(&manifest_path, "cannot read")?;
    let manifest = parse_manifest(&json).in_file(&manifest_path)?;
    let weights = dir.join(&manifest.weights);
    let bytes = std::fs::read(&weights).context_in(&weights, "cannot read")?;
    let model = load_exported_model(&manifest, bytes, device).in_file(&weights)?;
    Ok((model, manifest.model))
}
