//! An export's large weight tensors stored as 8-bit integers, a quarter of f32 and half of f16,
//! which is most of what a visitor downloads.
//!
//! Each tensor of at least [`MIN_QUANTIZED_VALUES`] values and two or more dimensions is split
//! into slices along its first dimension longer than one (a convolution's output channels, a
//! linear layer's input rows, a Query2Label head's label queries), and each slice gets its own
//! scale: its largest magnitude over 127. A value is stored as `round(value / scale)`, so it
//! comes back within half a scale step, 0.4% of its slice's largest magnitude. The scales sit
//! beside the tensor as `<name>` + [`SCALE_SUFFIX`], in f32. Biases, norms and small tensors
//! keep their float type.
//!
//! Everything here works on the safetensors bytes: [`dequantized_tensors`] turns them back into
//! float tensors before a network is built from them (see [`crate::export_tensors`]).

use std::collections::HashMap;

use half::{bf16, f16};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use crate::sorted_header::with_sorted_header;

/// A safetensors file's free-form metadata.
type Metadata = HashMap<String, String>;

/// Suffix of the tensor that holds a quantized tensor's per-slice scales.
pub const SCALE_SUFFIX: &str = ".int8_scale";
/// Tensors with fewer values keep their float type: their scales would cost more than they
/// save.
pub const MIN_QUANTIZED_VALUES: usize = 1024;
/// The largest stored magnitude; -128 is not used, so the range is symmetric.
const LEVELS: f32 = 127.0;

/// One tensor of a safetensors file: its name, type, shape and little-endian bytes.
pub struct StoredTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl StoredTensor {
    fn view(&self) -> Result<(String, TensorView<'_>), String> {
        let view = TensorView::new(self.dtype, self.shape.clone(), &self.data)
            .map_err(|e| format!("'{}': {e}", self.name))?;
        Ok((self.name.clone(), view))
    }
}

/// The float values of a tensor stored in f16, bf16, f32 or f64; `None` for other types.
fn float_values(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let values = match dtype {
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        _ => return None,
    };
    Some(values)
}

/// How many slices a tensor of `shape` is scaled in: the length of its first dimension longer
/// than one (1 for a tensor of ones).
fn slice_count(shape: &[usize]) -> usize {
    shape.iter().copied().find(|&d| d > 1).unwrap_or(1)
}

/// Whether a tensor is stored as int8: a float tensor of two or more dimensions and at least
/// [`MIN_QUANTIZED_VALUES`] values.
fn worth_quantizing(dtype: Dtype, shape: &[usize]) -> bool {
    let values: usize = shape.iter().product();
    float_values(dtype, &[]).is_some() && shape.len() >= 2 && values >= MIN_QUANTIZED_VALUES
}

/// The tensors of safetensors `bytes`, and the file's metadata.
fn read(bytes: &[u8]) -> Result<(SafeTensors<'_>, Option<Metadata>), String> {
    let file = parse(bytes)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(not_safetensors)?;
    Ok((file, header.metadata().clone()))
}

/// The tensors of safetensors `bytes`, the header parsed once.
fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, String> {
    SafeTensors::deserialize(bytes).map_err(not_safetensors)
}

fn not_safetensors(error: SafeTensorError) -> String {
    format!("not safetensors: {error}")
}

fn write(tensors: &[StoredTensor], metadata: Option<Metadata>) -> Result<Vec<u8>, String> {
    let views = tensors
        .iter()
        .map(StoredTensor::view)
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = safetensors::serialize(views, metadata).map_err(|e| e.to_string())?;
    with_sorted_header(&bytes)
}

/// The safetensors `bytes` with every large float tensor stored as int8 with per-slice scales
/// (see the module docs); the file's metadata is kept.
pub fn quantize_int8(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (file, metadata) = read(bytes)?;
    let mut stored = Vec::new();
    for (name, tensor) in file.tensors() {
        if name.ends_with(SCALE_SUFFIX) || tensor.dtype() == Dtype::I8 {
            return Err(format!("'{name}' is already quantized"));
        }
        let shape = tensor.shape().to_vec();
        if !worth_quantizing(tensor.dtype(), &shape) {
            stored.push(StoredTensor {
                name,
                dtype: tensor.dtype(),
                shape,
                data: tensor.data().to_vec(),
            });
            continue;
        }
        let values = float_values(tensor.dtype(), tensor.data()).expect("a float tensor");
        let slices = slice_count(&shape);
        let slice_len = values.len() / slices;
        let mut scales = Vec::with_capacity(slices);
        let mut data = Vec::with_capacity(values.len());
        for slice in values.chunks_exact(slice_len) {
            // f32::max passes over NaN, so a NaN slice would pass for zeros: look first.
            if !slice.iter().all(|v| v.is_finite()) {
                return Err(format!("'{name}' holds NaN or infinite values"));
            }
            let largest = slice.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = largest / LEVELS;
            scales.push(scale);
            data.extend(slice.iter().map(|&v| {
                let level = if scale > 0.0 {
                    (v / scale).round()
                } else {
                    0.0
                };
                level.clamp(-LEVELS, LEVELS) as i8 as u8
            }));
        }
        stored.push(StoredTensor {
            name: format!("{name}{SCALE_SUFFIX}"),
            dtype: Dtype::F32,
            shape: vec![slices],
            data: scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
        });
        stored.push(StoredTensor {
            name,
            dtype: Dtype::I8,
            shape,
            data,
        });
    }
    write(&stored, metadata)
}

/// The safetensors `bytes` with every int8 tensor turned back into f32 (see
/// [`dequantized_tensors`]); bytes without int8 tensors come back as they are. Nothing loads a
/// file this way since exports are read in one pass; the tests use it to check that the levels
/// and the metadata survive a whole round trip.
#[cfg(test)]
fn dequantize_int8(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let (file, metadata) = read(&bytes)?;
    let has_int8 = file.tensors().iter().any(|(_, t)| t.dtype() == Dtype::I8);
    let has_scales = file.names().iter().any(|n| n.ends_with(SCALE_SUFFIX));
    if !has_int8 && !has_scales {
        return Ok(bytes);
    }
    write(&widened(&file)?, metadata)
}

/// The tensors of safetensors `bytes`, in one pass, with every int8 tensor turned back into
/// f32 (its values times its slices' scales) and the scale tensors gone; other tensors as they
/// are. An int8 tensor without its scales, scales without their tensor or of the wrong length,
/// and scales that are negative or not finite are errors that name the tensor.
pub fn dequantized_tensors(bytes: &[u8]) -> Result<Vec<StoredTensor>, String> {
    widened(&parse(bytes)?)
}

fn widened(file: &SafeTensors<'_>) -> Result<Vec<StoredTensor>, String> {
    let mut stored = Vec::new();
    for (name, tensor) in file.tensors() {
        if let Some(quantized) = name.strip_suffix(SCALE_SUFFIX) {
            match file.tensor(quantized) {
                Ok(partner) if partner.dtype() == Dtype::I8 => continue,
                _ => return Err(format!("'{name}' scales no int8 tensor '{quantized}'")),
            }
        }
        if tensor.dtype() != Dtype::I8 {
            stored.push(StoredTensor {
                name,
                dtype: tensor.dtype(),
                shape: tensor.shape().to_vec(),
                data: tensor.data().to_vec(),
            });
            continue;
        }
        let shape = tensor.shape().to_vec();
        let scale_name = format!("{name}{SCALE_SUFFIX}");
        let scales = file
            .tensor(&scale_name)
            .ok()
            .and_then(|t| float_values(t.dtype(), t.data()))
            .ok_or_else(|| format!("'{name}' is stored as int8 but '{scale_name}' is missing"))?;
        let slices = slice_count(&shape);
        if scales.len() != slices {
            return Err(format!(
                "'{scale_name}' holds {} scales for the {slices} slices of '{name}' {shape:?}",
                scales.len()
            ));
        }
        if let Some(bad) = scales.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
            return Err(format!("'{scale_name}' holds the scale {bad}"));
        }
        let slice_len = tensor.data().len() / slices.max(1);
        let data = tensor
            .data()
            .iter()
            .enumerate()
            .flat_map(|(i, &level)| (level as i8 as f32 * scales[i / slice_len]).to_le_bytes())
            .collect();
        stored.push(StoredTensor {
            name,
            dtype: Dtype::F32,
            shape,
            data,
        });
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, dtype: Dtype, shape: &[usize], values: &[f32]) -> StoredTensor {
        let data = match dtype {
            Dtype::F16 => values
                .iter()
                .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                .collect(),
            Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Dtype::I8 => values.iter().map(|v| *v as i8 as u8).collect(),
            _ => unreachable!(),
        };
        StoredTensor {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            data,
        }
    }

    /// Values of every size and sign, one slice ten times larger than another.
    fn spread(count: usize, seed: u32) -> Vec<f32> {
        (0..count)
            .map(|i| {
                let wave = ((i as f32 * 0.37 + seed as f32).sin() * 3.1).tanh();
                wave * if i % 7 == 0 { 10.0 } else { 0.5 }
            })
            .collect()
    }

    fn file(tensors: &[StoredTensor]) -> Vec<u8> {
        let metadata = HashMap::from([("querylabel_export_version".into(), "2".into())]);
        write(tensors, Some(metadata)).unwrap()
    }

    fn values_of(bytes: &[u8], name: &str) -> (Dtype, Vec<usize>, Vec<f32>) {
        let file = SafeTensors::deserialize(bytes).unwrap();
        let tensor = file.tensor(name).unwrap();
        let values = float_values(tensor.dtype(), tensor.data()).unwrap();
        (tensor.dtype(), tensor.shape().to_vec(), values)
    }

    #[test]
    fn large_tensors_come_back_within_half_a_step_of_their_slice() {
        let conv = spread(16 * 8 * 3 * 3, 1);
        let linear = spread(64 * 32, 2);
        // A head's queries: the first dimension is 1, so the labels are the slices.
        let queries = spread(80 * 16, 3);
        let bias = spread(16, 4);
        let original = file(&[
            tensor("conv.weight", Dtype::F16, &[16, 8, 3, 3], &conv),
            tensor("fc.weight", Dtype::F32, &[64, 32], &linear),
            tensor("heads.full.query", Dtype::F32, &[1, 80, 16], &queries),
            tensor("conv.bias", Dtype::F16, &[16], &bias),
        ]);
        let quantized = quantize_int8(&original).unwrap();
        assert!(
            quantized.len() < original.len() * 6 / 10,
            "{}",
            quantized.len()
        );
        let stored = SafeTensors::deserialize(&quantized).unwrap();
        assert_eq!(stored.tensor("conv.weight").unwrap().dtype(), Dtype::I8);
        assert_eq!(stored.tensor("fc.weight").unwrap().dtype(), Dtype::I8);
        assert_eq!(
            stored
                .tensor("heads.full.query.int8_scale")
                .unwrap()
                .shape(),
            [80]
        );
        // Too small to be worth it: stays as it was.
        assert_eq!(stored.tensor("conv.bias").unwrap().dtype(), Dtype::F16);

        let restored = dequantize_int8(quantized).unwrap();
        let header = SafeTensors::read_metadata(&restored).unwrap().1;
        assert_eq!(
            header.metadata().as_ref().unwrap()["querylabel_export_version"],
            "2"
        );
        assert_eq!(SafeTensors::deserialize(&restored).unwrap().len(), 4);
        for (name, shape, slices) in [
            ("conv.weight", vec![16, 8, 3, 3], 16),
            ("fc.weight", vec![64, 32], 64),
            ("heads.full.query", vec![1, 80, 16], 80),
        ] {
            let (_, _, before) = values_of(&original, name);
            let (dtype, got_shape, after) = values_of(&restored, name);
            assert_eq!((dtype, got_shape), (Dtype::F32, shape));
            let slice_len = before.len() / slices;
            for (before, after) in before.chunks(slice_len).zip(after.chunks(slice_len)) {
                let largest = before.iter().fold(0f32, |m, v| m.max(v.abs()));
                let step = largest / 127.0;
                for (b, a) in before.iter().zip(after) {
                    assert!(
                        (b - a).abs() <= step * 0.5001,
                        "{name}: {b} came back as {a}"
                    );
                }
            }
        }
        let (dtype, _, bias_after) = values_of(&restored, "conv.bias");
        assert_eq!(dtype, Dtype::F16);
        assert_eq!(bias_after, values_of(&original, "conv.bias").2);
    }

    #[test]
    fn float_files_pass_unchanged_and_quantizing_twice_is_refused() {
        let original = file(&[tensor("w", Dtype::F32, &[64, 32], &spread(2048, 5))]);
        assert_eq!(dequantize_int8(original.clone()).unwrap(), original);
        let quantized = quantize_int8(&original).unwrap();
        let again = quantize_int8(&quantized).unwrap_err();
        assert!(again.contains("already quantized"), "{again}");
        // Quantizing what was dequantized gives the same levels: a bundle re-exported as int8
        // does not drift.
        let requantized = quantize_int8(&dequantize_int8(quantized.clone()).unwrap()).unwrap();
        assert_eq!(requantized, quantized);
    }

    #[test]
    fn broken_int8_files_are_errors_that_name_the_tensor() {
        let levels = vec![3.0; 2048];
        let cases = [
            (
                vec![tensor("w", Dtype::I8, &[64, 32], &levels)],
                "'w.int8_scale' is missing",
            ),
            (
                vec![
                    tensor("w", Dtype::I8, &[64, 32], &levels),
                    tensor("w.int8_scale", Dtype::F32, &[32], &[0.1; 32]),
                ],
                "holds 32 scales for the 64 slices of 'w'",
            ),
            (
                vec![
                    tensor("w", Dtype::I8, &[64, 32], &levels),
                    tensor("w.int8_scale", Dtype::F32, &[64], &[-0.1; 64]),
                ],
                "holds the scale -0.1",
            ),
            (
                vec![
                    tensor("w", Dtype::F32, &[64, 32], &levels),
                    tensor("w.int8_scale", Dtype::F32, &[64], &[0.1; 64]),
                ],
                "scales no int8 tensor 'w'",
            ),
        ];
        for (tensors, expected) in cases {
            let error = dequantize_int8(file(&tensors)).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        let not_finite = file(&[tensor("w", Dtype::F32, &[64, 32], &[f32::NAN; 2048])]);
        assert!(quantize_int8(&not_finite).unwrap_err().contains("NaN"));
        assert!(dequantize_int8(b"not safetensors".to_vec()).is_err());
    }
}
