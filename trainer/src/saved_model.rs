//! A trained model on disk: `model.json` says how to rebuild the network, which labels it
//! predicts and how to preprocess images; `model.bpk` holds the parameters. A run directory
//! keeps its best model under `best/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use querylabel::model::Classifier;

use crate::checkpoint::{ModelFiles, load_module, read_json, save_module, write_json};

/// Everything about a model but its parameters (shared with the browser's loader).
pub use querylabel::exported::ModelDescription;

/// Where the model of `path` lives: a model directory, a run directory (its `best/`), or the
/// `model.json` / `model.bpk` file itself.
pub fn resolve_model_dir(path: &Path) -> Result<PathBuf> {
    let candidates = [path.to_path_buf(), path.join("best")];
    if path.is_file() {
        return path
            .parent()
            .map(Path::to_path_buf)
            .context("a model file needs its directory");
    }
    candidates
        .into_iter()
        .find(|dir| ModelFiles::in_dir(dir).config.is_file())
        .with_context(|| {
            format!(
                "{}: no model here (expected model.json and model.bpk, or a training run \
                 directory with best/); train one with `trainer train`",
                path.display()
            )
        })
}

/// Saves a model with its description into `dir` (both files atomically).
pub fn save_model(dir: &Path, model: &Classifier, description: &ModelDescription) -> Result<()> {
    let files = ModelFiles::in_dir(dir);
    save_module(model, &files.weights)?;
    write_json(&files.config, description)
}

/// Loads the model of a model or run directory onto `device`.
/// Exports for the browser (`trainer export`) load too, their weights widened to f32.
pub fn load_model(path: &Path, device: &Device) -> Result<(Classifier, ModelDescription)> {
    let dir = resolve_model_dir(path)?;
    if crate::export::is_export(&dir) {
        return crate::export::load_exported(&dir, device);
    }
    let files = ModelFiles::in_dir(&dir);
    let description: ModelDescription = read_json(&files.config)?;
    let expected = description.classifier.head.num_classes();
    if expected != description.label_space.n_classes() {
        bail!(
            "{}: the head predicts {expected} classes but the label space has {}",
            files.config.display(),
            description.label_space.n_classes()
        );
    }
    let model = load_module(description.classifier.init(device), &files.weights)?;
    Ok((model, description))
}
