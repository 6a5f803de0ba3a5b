//! Saving and loading models and training state so that nothing is lost: every file is written
//! to a temporary name in its final directory and renamed into place, so a killed run leaves
//! either the old file or the new one, never half of one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::Serialize;

use crate::weights::check_apply_result;
use serde::de::DeserializeOwned;

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let temporary = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = fs::File::create(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .with_context(|| format!("cannot write {}", temporary.display()))
        .and_then(|()| {
            fs::rename(&temporary, path)
                .with_context(|| format!("cannot move {} into place", path.display()))
        });
    if written.is_err() {
        // Leave no half-written scratch file behind.
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Writes a value as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    write_atomically(path, &text)
}

/// Reads a JSON file, naming the file and the line of a syntax or schema error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} line {} column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// Saves a module's parameters (with their ids, so optimiser state still matches on resume) in
/// Burn's burnpack format, atomically.
pub fn save_module<M: Module + ModuleSnapshot>(module: &M, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_bytes(None);
    module
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("cannot serialise the model for {}: {e}", path.display()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the model for {}: {e}", path.display()))?;
    write_atomically(path, &bytes)
}

/// Loads parameters saved by [`save_module`] into `module`, which must have the same structure;
/// a missing, unexpected or wrongly shaped tensor is named in the error.
pub fn load_module<M: Module + ModuleSnapshot>(mut module: M, path: &Path) -> Result<M> {
    if !path.is_file() {
        bail!("{}: no such model file", path.display());
    }
    let mut store = BurnpackStore::from_file(path);
    let result = module
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    check_apply_result(&result, &path.display().to_string(), |_| false)?;
    Ok(module)
}

/// The files of one saved model: its configuration and parameters.
pub struct ModelFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
}

impl ModelFiles {
    /// The model stored in `dir` (`model.json` and `model.bpk`).
    pub fn in_dir(dir: &Path) -> Self {
        ModelFiles {
            config: dir.join("model.json"),
            weights: dir.join("model.bpk"),
        }
    }
}
