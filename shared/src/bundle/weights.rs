//! A bundle's parameters as the safetensors bytes of its export: half precision where it is
//! safe ([`half_precision`]), the backbone's tensors under `backbone.` and each head's under
//! `heads.<name>.` (Burn would number them; the names keep a head's tensors its own whatever
//! the order of the heads).

use burn::store::{KeyRemapper, ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;

use super::description::BundleDescription;
use super::error::BundleError;
use super::format_version::BUNDLE_FORMAT_VERSION;
use super::model::Bundle;
use crate::exported::{half_precision, to_full_precision};
use crate::int8_weights::dequantize_int8;
use crate::load_problems::LoadProblems;
use crate::weight_values::check_finite_weights;

/// Renames the tensors of head `i` from Burn's `heads.<i>.` to `heads.<name>.`, or back.
/// Names start with a letter (validated), so a renamed path never matches a numbered pattern.
fn head_prefixes(
    description: &BundleDescription,
    to_names: bool,
) -> Result<KeyRemapper, BundleError> {
    let patterns = description.heads.iter().enumerate().map(|(i, head)| {
        let (numbered, named) = (format!("heads.{i}."), format!("heads.{}.", head.name));
        let (from, to) = if to_names {
            (numbered, named)
        } else {
            (named, numbered)
        };
        (format!("^{}", from.replace('.', r"\.")), to)
    });
    KeyRemapper::from_pattern_iter(patterns).map_err(|e| BundleError::Weights(e.to_string()))
}

/// Serialises `bundle`'s parameters, described by `description`, in the export's layout.
pub fn bundle_weights(
    bundle: &Bundle,
    description: &BundleDescription,
) -> Result<Vec<u8>, BundleError> {
    description.validate()?;
    if bundle.heads.len() != description.heads.len() {
        return Err(BundleError::Weights(format!(
            "the network has {} heads but the description {}",
            bundle.heads.len(),
            description.heads.len()
        )));
    }
    let mut store = SafetensorsStore::from_bytes(None)
        .skip_enum_variants(true)
        .with_to_adapter(half_precision())
        .remap(head_prefixes(description, true)?)
        .metadata(
            "querylabel_export_version",
            BUNDLE_FORMAT_VERSION.to_string(),
        );
    bundle
        .save_into(&mut store)
        .map_err(|e| BundleError::Weights(e.to_string()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| BundleError::Weights(e.to_string()))?;
    // A weight beyond f16's range (65,504) becomes infinite in half precision: refuse to write
    // an export that could not be loaded.
    check_finite_weights(&bytes)
        .map_err(|why| BundleError::Weights(format!("in half precision, {why}")))?;
    Ok(bytes)
}

/// Builds the network `description` describes on `device` and fills it with `weights` (the
/// export's safetensors bytes, widened to f32 whatever float type each is stored in, int8
/// tensors with their scales included: see [`crate::int8_weights`]). Strict: a
/// missing, unexpected or misshapen tensor, or one that is not finite, is an error that names it.
pub fn load_bundle(
    description: &BundleDescription,
    weights: Vec<u8>,
    device: &Device,
) -> Result<Bundle, BundleError> {
    let mut bundle = description.init(device)?;
    let weights = dequantize_int8(weights).map_err(BundleError::Weights)?;
    check_finite_weights(&weights).map_err(BundleError::Weights)?;
    let mut store = SafetensorsStore::from_bytes(Some(weights))
        .skip_enum_variants(true)
        .with_from_adapter(to_full_precision())
        .remap(head_prefixes(description, false)?)
        .validate(false)
        .allow_partial(true);
    let result = bundle
        .load_from(&mut store)
        .map_err(|e| BundleError::Weights(e.to_string()))?;
    let problems = LoadProblems::of(&result, |_| false);
    if problems.is_empty() {
        Ok(bundle)
    } else {
        Err(BundleError::Weights(format!(
            "{} problem(s) (head tensors named by position):\n{problems}",
            problems.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::fixtures::{linear_head, q2l_head, two_heads, with_heads};
    use burn::store::ModuleStore;
    use burn::tensor::activation::sigmoid;
    use burn::tensor::{Tensor, Tolerance};

    #[test]
    fn an_int8_bundle_loads_close_to_its_half_precision_one() {
        let device = Device::flex();
        let description = two_heads();
        let bundle = description.init(&device).unwrap();
        let half = bundle_weights(&bundle, &description).unwrap();
        let int8 = crate::int8_weights::quantize_int8(&half).unwrap();
        assert!(
            int8.len() < half.len() * 6 / 10,
            "{} of {}",
            int8.len(),
            half.len()
        );
        let input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let from_half = load_bundle(&description, half, &device).unwrap();
        let from_int8 = load_bundle(&description, int8, &device).unwrap();
        let outputs = from_half.forward(input.clone()).into_iter();
        for (a, b) in outputs.zip(from_int8.forward(input)) {
            let (a, b) = (sigmoid(a.logits), sigmoid(b.logits));
            a.into_data()
                .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(2e-2));
        }
    }

    #[test]
    fn a_bundle_round_trips_through_its_export_bytes() {
        let device = Device::flex();
        let description = two_heads();
        let bundle = description.init(&device).unwrap();
        let bytes = bundle_weights(&bundle, &description).unwrap();

        let keys = SafetensorsStore::from_bytes(Some(bytes.clone()))
            .keys()
            .unwrap();
        assert!(keys.iter().any(|k| k.starts_with("backbone.")));
        assert!(keys.iter().any(|k| k.starts_with("heads.full.")));
        assert!(keys.iter().any(|k| k.starts_with("heads.wan.")));
        assert!(keys.iter().all(|k| !k.starts_with("heads.0")), "{keys:?}");

        let loaded = load_bundle(&description, bytes, &device).unwrap();
        let input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let before = bundle.forward(input.clone());
        let after = loaded.forward(input);
        assert_eq!(after.len(), 2);
        for (a, b) in before.into_iter().zip(after) {
            // Half precision of the weights: close, not equal.
            a.logits
                .into_data()
                .assert_approx_eq::<f32>(&b.logits.into_data(), Tolerance::absolute(2e-2));
        }
    }

    #[test]
    fn the_heads_are_found_by_name_not_position() {
        let device = Device::flex();
        let description = with_heads(vec![linear_head("a"), q2l_head("b")]);
        let bundle = description.init(&device).unwrap();
        let bytes = bundle_weights(&bundle, &description).unwrap();
        // The same heads listed the other way round load into the right networks.
        let swapped = with_heads(vec![q2l_head("b"), linear_head("a")]);
        let loaded = load_bundle(&swapped, bytes.clone(), &device).unwrap();
        let input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let before = bundle.forward(input.clone());
        let after = loaded.forward(input);
        before[0]
            .logits
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(
                &after[1].logits.clone().into_data(),
                Tolerance::absolute(2e-2),
            );
        // A head the file does not have is named.
        let renamed = with_heads(vec![linear_head("a"), q2l_head("c")]);
        let error = load_bundle(&renamed, bytes, &device).unwrap_err();
        assert!(
            matches!(&error, BundleError::Weights(why) if why.contains("missing tensor")),
            "{error}"
        );
    }

    /// `bundle`'s weights in the export's layout but all in f32, as another tool might write.
    fn full_precision_weights(bundle: &Bundle, description: &BundleDescription) -> Vec<u8> {
        let mut store = SafetensorsStore::from_bytes(None)
            .skip_enum_variants(true)
            .remap(head_prefixes(description, true).unwrap());
        bundle.save_into(&mut store).unwrap();
        store.get_bytes().unwrap()
    }

    #[test]
    fn weights_stored_in_f32_load_as_they_are_and_non_finite_ones_are_refused() {
        let device = Device::flex();
        let description = with_heads(vec![linear_head("full")]);
        let bundle = description.init(&device).unwrap();
        let loaded = load_bundle(
            &description,
            full_precision_weights(&bundle, &description),
            &device,
        )
        .unwrap();
        let input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        bundle.forward(input.clone())[0]
            .logits
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(
                &loaded.forward(input)[0].logits.clone().into_data(),
                Tolerance::absolute(1e-6),
            );

        // A head whose weights are NaN: refused on loading with the tensor named, and not
        // written by the export.
        let mut broken = bundle;
        let crate::model::Head::Linear(head) = &mut broken.heads[0] else {
            unreachable!("a linear fixture head")
        };
        let weight = head.classifier.weight.val();
        head.classifier.weight = burn::module::Param::from_tensor(weight.mul_scalar(f32::NAN));
        let error = load_bundle(
            &description,
            full_precision_weights(&broken, &description),
            &device,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("NaN or infinite") && error.contains("heads.full."),
            "{error}"
        );
        let error = bundle_weights(&broken, &description)
            .unwrap_err()
            .to_string();
        assert!(error.contains("in half precision"), "{error}");
    }

    #[test]
    fn garbage_and_mismatched_weights_are_errors() {
        let device = Device::flex();
        let description = two_heads();
        let error = load_bundle(&description, b"not safetensors".to_vec(), &device).unwrap_err();
        assert!(matches!(error, BundleError::Weights(_)), "{error}");
        let bundle = description.init(&device).unwrap();
        let one = with_heads(vec![linear_head("full")]);
        assert!(matches!(
            bundle_weights(&bundle, &one),
            Err(BundleError::Weights(_))
        ));
    }
}
