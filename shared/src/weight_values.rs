//! What an export's tensors hold, checked on the safetensors bytes before anything is built from
//! them: a NaN or infinite weight would otherwise give NaN probabilities for every photo, or
//! worse, plausible ones from the tensors that are still finite.

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

/// Tensors spelled out in a problem; the rest are counted.
const SHOWN: usize = 5;

/// Why the bytes of an export's weights are not usable values.
pub fn check_finite_weights(bytes: &[u8]) -> Result<(), String> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| format!("not safetensors: {e}"))?;
    let tensors = file.tensors();
    check_finite_tensors(
        tensors
            .iter()
            .map(|(name, tensor)| (name.as_str(), tensor.dtype(), tensor.data())),
    )
}

/// Why tensors, each given as its name, type and little-endian bytes, are not usable values.
pub fn check_finite_tensors<'a>(
    tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [u8])>,
) -> Result<(), String> {
    let mut bad: Vec<(String, usize)> = Vec::new();
    for (name, dtype, data) in tensors {
        let non_finite = match dtype {
            Dtype::F16 => count(data, 2, |b| !f16::from_le_bytes([b[0], b[1]]).is_finite()),
            Dtype::BF16 => count(data, 2, |b| !bf16::from_le_bytes([b[0], b[1]]).is_finite()),
            Dtype::F32 => count(data, 4, |b| {
                !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()
            }),
            Dtype::F64 => count(data, 8, |b| {
                !f64::from_le_bytes(b.try_into().expect("8 bytes")).is_finite()
            }),
            _ => 0,
        };
        if non_finite > 0 {
            bad.push((name.to_string(), non_finite));
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    bad.sort();
    let shown: Vec<String> = bad
        .iter()
        .take(SHOWN)
        .map(|(name, n)| format!("'{name}' ({n} values)"))
        .collect();
    let more = bad.len().saturating_sub(SHOWN);
    Err(format!(
        "{} tensor(s) hold NaN or infinite values: {}{}; the model that was exported had \
         diverged, or the file is damaged",
        bad.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

fn count(data: &[u8], width: usize, bad: impl Fn(&[u8]) -> bool) -> usize {
    data.chunks_exact(width).filter(|b| bad(b)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn file(tensors: &[(&str, Dtype, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(name, dtype, bytes)| {
                let width = match dtype {
                    Dtype::F16 | Dtype::BF16 => 2,
                    Dtype::F64 => 8,
                    _ => 4,
                };
                let view = TensorView::new(*dtype, vec![bytes.len() / width], bytes).unwrap();
                (name.to_string(), view)
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn finite_weights_of_every_float_type_pass() {
        let halves: Vec<u8> = [1.0f32, -2.5, 65504.0]
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        let singles: Vec<u8> = [0.0f32, f32::MAX]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = file(&[("a", Dtype::F16, halves), ("b", Dtype::F32, singles)]);
        assert_eq!(check_finite_weights(&bytes), Ok(()));
    }

    #[test]
    fn nan_and_infinite_weights_are_named_and_counted() {
        let halves: Vec<u8> = [1.0f32, f32::NAN, f32::INFINITY]
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        let singles: Vec<u8> = [f32::NEG_INFINITY, 1.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let doubles: Vec<u8> = [f64::NAN].iter().flat_map(|v| v.to_le_bytes()).collect();
        let fine: Vec<u8> = 2.0f32.to_le_bytes().to_vec();
        let bytes = file(&[
            ("head.weight", Dtype::F16, halves),
            ("backbone.bias", Dtype::F32, singles),
            ("x", Dtype::F64, doubles),
            ("ok", Dtype::F32, fine),
        ]);
        let why = check_finite_weights(&bytes).unwrap_err();
        assert!(why.starts_with("3 tensor(s)"), "{why}");
        assert!(why.contains("'head.weight' (2 values)"), "{why}");
        assert!(why.contains("'backbone.bias' (1 values)"), "{why}");
        assert!(!why.contains("'ok'"), "{why}");
        assert!(check_finite_weights(b"garbage").is_err());
    }
}
