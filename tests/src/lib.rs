//! Shared helpers for the workspace-level tests: where the independent reference vectors live,
//! how to read them, and tolerant comparisons.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The directory of the reference vectors: `QUERYLABEL_REFERENCE_DIR`, or `../shared/reference`
/// beside the checkout, so the same tests can be pointed at other vector files of the same format.
pub fn reference_dir() -> PathBuf {
    match std::env::var_os("QUERYLABEL_REFERENCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference"),
    }
}

/// `vectors.json` from the reference directory, parsed.
pub fn reference_vectors() -> serde_json::Value {
    reference_json("vectors.json")
}

/// A JSON file of the reference directory, parsed.
pub fn reference_json(name: &str) -> serde_json::Value {
    let path = reference_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON matrix (array of arrays of numbers) flattened row-major, with its shape.
pub fn json_matrix(value: &serde_json::Value) -> (Vec<f32>, [usize; 2]) {
    let rows = value.as_array().expect("matrix: expected an array of rows");
    let cols = rows.first().and_then(|r| r.as_array()).map_or(0, Vec::len);
    let mut flat = Vec::with_capacity(rows.len() * cols);
    for row in rows {
        let row = row.as_array().expect("matrix: expected a row array");
        assert_eq!(row.len(), cols, "matrix: ragged rows");
        flat.extend(
            row.iter()
                .map(|x| x.as_f64().expect("matrix: number") as f32),
        );
    }
    (flat, [rows.len(), cols])
}

/// A little-endian `float32` C-order `.npy` array: its values and shape.
pub struct Npy {
    pub values: Vec<f32>,
    pub shape: Vec<usize>,
}

/// Reads a `.npy` file of dtype `<f4`, C order (the format of the reference arrays).
pub fn read_npy(path: &std::path::Path) -> Result<Npy> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("{}: not a .npy file", path.display());
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => bail!("{}: unsupported .npy version {v}", path.display()),
    };
    let header = std::str::from_utf8(&bytes[header_start..header_start + header_len])?;
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        bail!(
            "{}: expected little-endian float32 in C order, header {header}",
            path.display()
        );
    }
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .with_context(|| format!("{}: no shape in header", path.display()))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: bad shape {shape_text}", path.display()))?;
    let data = &bytes[header_start + header_len..];
    let count: usize = shape.iter().product();
    if data.len() != count * 4 {
        bail!(
            "{}: {} data bytes for shape {shape:?}",
            path.display(),
            data.len()
        );
    }
    let values = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Npy { values, shape })
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f32::max)
}

/// Asserts `|actual - expected| <= rel * max(|expected|, floor)` element-wise, naming the
/// first offending index. `floor` keeps near-zero references from demanding exact zeros.
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32], rel: f32, floor: f32) {
    assert_eq!(actual.len(), expected.len(), "{what}: length mismatch");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let tolerance = rel * e.abs().max(floor);
        assert!(
            (a - e).abs() <= tolerance,
            "{what}[{i}]: got {a}, expected {e} (tolerance {tolerance})"
        );
    }
}
