//! The training labels as a run changes them: LL-Cp's permanent corrections and APL's soft
//! pseudo-negatives. They are part of a checkpoint (`labels.safetensors`, one `[images,
//! classes]` float32 tensor), so that a resumed run goes on from the labels it had.

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use crate::atomic_files::write_atomically;
use crate::error::{Context, Result, TrainerError};

/// The tensor's name inside the file.
const TENSOR: &str = "labels";

/// Writes `labels` (`[images, classes]`, row-major) to `path` atomically.
pub fn save_training_labels(path: &Path, labels: &[f32], classes: usize) -> Result<()> {
    let bytes: Vec<u8> = labels.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![labels.len() / classes, classes], &bytes)
        .context_in(path, "the training labels' shape and data disagree")?;
    let file = safetensors::serialize([(TENSOR, view)], None)
        .context_in(path, "cannot serialise the training labels")?;
    write_atomically(path, &file)
}

/// Reads labels saved by [`save_training_labels`], checking that they are `[images, classes]`
/// and hold only what training writes (1, 0 and soft pseudo-negatives in [-1, 0]).
pub fn load_training_labels(path: &Path, images: usize, classes: usize) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).context_in(path, "cannot read")?;
    let file =
        safetensors::SafeTensors::deserialize(&bytes).context_in(path, "not a safetensors file")?;
    let tensor = file
        .tensor(TENSOR)
        .or_error(|| TrainerError::new("no such tensor").at_field(path, TENSOR))?;
    if tensor.dtype() != Dtype::F32 || tensor.shape() != [images, classes] {
        return Err(TrainerError::new(format!(
            "expected {images}×{classes} float32 labels for this run, found {:?} {:?}",
            tensor.dtype(),
            tensor.shape()
        ))
        .at_field(path, TENSOR));
    }
    let labels: Vec<f32> = tensor
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(bad) = labels
        .iter()
        .find(|&&v| !(v == 1.0 || (-1.0..=0.0).contains(&v)))
    {
        return Err(TrainerError::new(format!(
            "holds the label {bad}, which training never writes"
        ))
        .at_field(path, TENSOR));
    }
    Ok(labels)
}
