//! What a `--model` path names: a model directory, a training run (whose `best/` holds its
//! model and whose `options.json` says how it was trained), or a model file; and which kind of
//! model the directory holds. A leaf: it reads manifests, never models.

use std::path::{Path, PathBuf};

use querylabel::exported::EXPORT_FORMAT_VERSION;
use serde_json::Value;

use crate::checkpoint::{ModelFiles, read_json};
use crate::error::{Result, TrainerError};

/// A training run's options, in its run directory.
pub const OPTIONS_FILE: &str = "options.json";

/// The kinds of model directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// `model.json` (a [`ModelDescription`](querylabel::exported::ModelDescription)) and
    /// `model.bpk`, as training saves them.
    Saved,
    /// Format 1: one model's `model.json` manifest and half-precision `model.safetensors`.
    SingleExport,
    /// A bundle: one backbone, named heads.
    Bundle,
}

/// A model directory and what it holds.
#[derive(Clone, Debug)]
pub struct ModelSource {
    pub dir: PathBuf,
    pub kind: ModelKind,
}

impl ModelSource {
    /// Finds the model of `path` (see [`resolve_model_dir`]) and tells its kind from its
    /// manifest's `format_version` (saved models have none).
    pub fn of(path: &Path) -> Result<Self> {
        let dir = resolve_model_dir(path)?;
        let manifest: Value = read_json(&ModelFiles::in_dir(&dir).config)?;
        let kind = match manifest.get("format_version").and_then(Value::as_u64) {
            None => ModelKind::Saved,
            Some(version) if version == u64::from(EXPORT_FORMAT_VERSION) => ModelKind::SingleExport,
            // The bundle reader names the versions it does not know.
            Some(_) => ModelKind::Bundle,
        };
        Ok(Self { dir, kind })
    }
}

/// Where the model of `path` lives: a model directory, a run directory (its `best/`), or the
/// `model.json` / `model.bpk` file itself.
pub fn resolve_model_dir(path: &Path) -> Result<PathBuf> {
    let candidates = [path.to_path_buf(), path.join("best")];
    if path.is_file() {
        return path
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| TrainerError::new("a model file needs its directory").in_file(path));
    }
    candidates
        .into_iter()
        .find(|dir| ModelFiles::in_dir(dir).config.is_file())
        .ok_or_else(|| {
            TrainerError::new(
                "no model here (expected model.json and model.bpk, or a training run directory \
                 with best/)",
            )
            .in_file(path)
            .with_hint("train one with `trainer train`")
        })
}

/// The `options.json` of the run that `model_path` belongs to: beside the model directory (a
/// run's `best/`, also when `model_path` is the run directory) or in it. Relative paths in it
/// (data set, feature cache) are read from the working directory, as `trainer train` wrote them.
pub fn run_options(model_path: &Path) -> Result<PathBuf> {
    let model_dir = resolve_model_dir(model_path)?;
    [Some(model_dir.as_path()), model_dir.parent()]
        .into_iter()
        .flatten()
        .map(|dir| dir.join(OPTIONS_FILE))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            TrainerError::new(format!(
                "no {OPTIONS_FILE} of a training run here or beside it, so its validation split \
                 is unknown"
            ))
            .in_file(&model_dir)
            .with_hint("export the training run's directory, or pass --threshold VALUE")
        })
}
