//! An export's weights read into a network: the safetensors bytes parsed once, int8 tensors
//! widened, every value checked finite, then applied to the module strictly.
//!
//! Burn's `SafetensorsStore` reads a tensor's bytes lazily, parsing the file's whole header
//! again for each tensor: for a bundle's 700 tensors that was 53% of loading it (120 ms
//! natively, more in the browser, where it delays the first prediction). Here the header is
//! parsed once and each tensor handed to Burn with its bytes in hand.

use burn::store::burn_pack::{Bytes, Tensor as PackTensor};
use burn::store::{ApplyResult, FloatCastAdapter, KeyRemapper, ModuleSnapshot};
use burn::tensor::DType;
use safetensors::Dtype;

use crate::int8_weights::dequantized_tensors;
use crate::load_problems::LoadProblems;
use crate::weight_values::check_finite_tensors;

/// The tensors of an export's safetensors `bytes`: int8 ones widened to f32 with their scales
/// (see [`crate::int8_weights`]), none holding a NaN or an infinity, named as `remapper` renames
/// them.
pub fn read_export_tensors(
    bytes: &[u8],
    remapper: &KeyRemapper,
) -> Result<Vec<PackTensor>, String> {
    let tensors = dequantized_tensors(bytes)?;
    check_finite_tensors(
        tensors
            .iter()
            .map(|t| (t.name.as_str(), t.dtype, t.data.as_slice())),
    )?;
    let tensors = tensors
        .into_iter()
        .map(|t| {
            let dtype = burn_dtype(t.dtype).ok_or_else(|| {
                format!("'{}' is stored as {:?}, not as numbers", t.name, t.dtype)
            })?;
            Ok(PackTensor::new(
                t.name,
                dtype,
                t.shape,
                None,
                Bytes::from_bytes_vec(t.data),
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(remapper.remap(tensors).0)
}

/// Fills `module` from `tensors`, every float widened to f32; what did not fit (a missing,
/// unexpected or misshapen tensor) comes back as problems that name the tensor.
pub fn apply_export_tensors<M: ModuleSnapshot>(
    module: &mut M,
    tensors: Vec<PackTensor>,
) -> LoadProblems {
    // Enum variants are skipped in paths, as the exports are written (`HeadConfig`'s variant
    // is not part of a tensor's name).
    let result: ApplyResult =
        module.apply(tensors, None, Some(Box::new(to_full_precision())), true);
    LoadProblems::of(&result, |_| false)
}

/// The conversion on loading: every float tensor to f32, whatever it was stored in. (The
/// half-precision adapter would turn an f32 tensor into f16 on the way in, which the network's
/// f32 parameters cannot hold.)
fn to_full_precision() -> FloatCastAdapter {
    FloatCastAdapter::to(DType::F32)
}

/// Burn's name for a safetensors element type; `None` for one Burn cannot hold.
fn burn_dtype(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F64 => DType::F64,
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U64 => DType::U64,
        Dtype::U32 => DType::U32,
        Dtype::U8 => DType::U8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::fixtures::two_heads;
    use crate::bundle::{bundle_weights, load_bundle};
    use burn::store::SafetensorsStore;
    use burn::tensor::{Device, Tensor};
    use safetensors::tensor::TensorView;

    #[test]
    fn the_one_pass_reader_loads_exactly_what_burns_store_loads() {
        let device = Device::flex();
        let description = two_heads();
        let bytes = bundle_weights(&description.init(&device).unwrap(), &description).unwrap();
        // Burn's store is the reference: same tensors, widened from f16 the same way.
        let mut reference = description.init(&device).unwrap();
        let numbered = description
            .heads
            .iter()
            .enumerate()
            .map(|(i, head)| (format!(r"^heads\.{}\.", head.name), format!("heads.{i}.")));
        let mut store = SafetensorsStore::from_bytes(Some(bytes.clone()))
            .skip_enum_variants(true)
            .with_from_adapter(to_full_precision())
            .remap(KeyRemapper::from_pattern_iter(numbered).unwrap());
        let result = reference.load_from(&mut store).unwrap();
        assert!(LoadProblems::of(&result, |_| false).is_empty());
        let loaded = load_bundle(&description, bytes, Vec::new(), &device).unwrap();
        let input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let expected = reference.forward(input.clone());
        for (a, b) in expected.into_iter().zip(loaded.forward(input)) {
            assert_eq!(a.logits.into_data(), b.logits.into_data());
        }
    }

    #[test]
    fn a_tensor_of_a_type_no_network_holds_is_named() {
        let flags = [1u8, 0, 1];
        let view = TensorView::new(Dtype::BOOL, vec![3], &flags).unwrap();
        let bytes = safetensors::serialize([("heads.full.mask", view)], None).unwrap();
        let why = read_export_tensors(&bytes, &KeyRemapper::new()).unwrap_err();
        assert!(why.contains("'heads.full.mask'"), "{why}");
        let why = read_export_tensors(b"not a file", &KeyRemapper::new()).unwrap_err();
        assert!(why.starts_with("not safetensors"), "{why}");
    }
}
