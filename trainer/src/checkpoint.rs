//! Saving and loading models, JSON and training state, every file written whole (see
//! [`crate::atomic_files`]).

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::Serialize;

use crate::atomic_files::write_atomically;
use crate::error::{Context, Result, TrainerError};
use crate::weights::check_apply_result;
use serde::de::DeserializeOwned;

/// Writes a value as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value).context_in(path, "cannot write as JSON")?;
    text.push(b'\n');
    write_atomically(path, &text)
}

/// Reads a JSON file, naming the file and the line of a syntax or schema error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).context_in(path, "cannot read")?;
    serde_json::from_str(&text).map_err(|error| TrainerError::json(path, &error))
}

/// Saves a module's parameters (with their ids, so optimiser state still matches on resume) in
/// Burn's burnpack format, atomically.
pub fn save_module<M: Module + ModuleSnapshot>(module: &M, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_bytes(None);
    module
        .save_into(&mut store)
        .context_in(path, "cannot serialise the model")?;
    let bytes = store
        .get_bytes()
        .context_in(path, "cannot serialise the model")?;
    write_atomically(path, &bytes)
}

/// Loads parameters saved by [`save_module`] into `module`, which must have the same structure;
/// a missing, unexpected or wrongly shaped tensor is named in the error.
pub fn load_module<M: Module + ModuleSnapshot>(mut module: M, path: &Path) -> Result<M> {
    if !path.is_file() {
        return Err(TrainerError::new("no such model file").in_file(path));
    }
    let mut store = BurnpackStore::from_file(path);
    let result = module
        .load_from(&mut store)
        .context_in(path, "cannot read")?;
    check_apply_result(&result, path, |_| false)?;
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
