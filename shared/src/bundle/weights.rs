//! A bundle's parameters as the safetensors bytes of its export: half precision where it is
//! safe ([`half_precision`]), the backbone's tensors under `backbone.` and each head's under
//! `heads.<name>.` (Burn would number them; the names keep a head's tensors its own whatever
//! the order of the heads).

use burn::store::{KeyRemapper, ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;

use super::description::{BundleDescription, HeadDescription};
use super::error::BundleError;
use super::format_version::BUNDLE_FORMAT_VERSION;
use super::model::Bundle;
use crate::export_tensors::{apply_export_tensors, read_export_tensors};
use crate::exported::half_precision;
use crate::model::Head;
use crate::sorted_header::with_sorted_header;
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

/// Serialises the parameters of `bundle`, described by `description`, that go into the main
/// weights file: the backbone and every head without a file of its own
/// ([`head_weights`] writes those).
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
    let main = description.in_main_file();
    let in_main = Bundle {
        backbone: bundle.backbone.clone(),
        heads: bundle.heads[..main.heads.len()].to_vec(),
    };
    let store = export_store().remap(head_prefixes(&main, true)?);
    save(&in_main, store)
}

/// Serialises head `index` of `bundle` alone, its tensors named as in a main file
/// (`heads.<name>.`), for a head whose weights are a file of their own.
pub fn head_weights(
    bundle: &Bundle,
    description: &BundleDescription,
    index: usize,
) -> Result<Vec<u8>, BundleError> {
    let (head, name) = head_at(bundle, description, index)?;
    let store = export_store().remap(single_head_prefix(name, true)?);
    save(head, store)
}

fn head_at<'a>(
    bundle: &'a Bundle,
    description: &'a BundleDescription,
    index: usize,
) -> Result<(&'a Head, &'a str), BundleError> {
    match (bundle.heads.get(index), description.heads.get(index)) {
        (Some(head), Some(described)) => Ok((head, &described.name)),
        _ => Err(BundleError::Weights(format!("no head {index} to write"))),
    }
}

/// The export's store: half precision where it is safe, enum variants left out of the names.
fn export_store() -> SafetensorsStore {
    SafetensorsStore::from_bytes(None)
        .skip_enum_variants(true)
        .with_to_adapter(half_precision())
        .metadata(
            "querylabel_export_version",
            BUNDLE_FORMAT_VERSION.to_string(),
        )
}

fn save<M: ModuleSnapshot>(
    module: &M,
    mut store: SafetensorsStore,
) -> Result<Vec<u8>, BundleError> {
    module
        .save_into(&mut store)
        .map_err(|e| BundleError::Weights(e.to_string()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| BundleError::Weights(e.to_string()))?;
    // A weight beyond f16's range (65,504) becomes infinite in half precision: refuse to write
    // an export that could not be loaded.
    check_finite_weights(&bytes)
        .map_err(|why| BundleError::Weights(format!("in half precision, {why}")))?;
    with_sorted_header(&bytes).map_err(BundleError::Weights)
}

/// Renames a lone head's tensors to `heads.<name>.`, or back to the head's own names.
fn single_head_prefix(name: &str, to_name: bool) -> Result<KeyRemapper, BundleError> {
    let named = format!("heads.{name}.");
    let (from, to) = if to_name {
        ("^".to_string(), named)
    } else {
        (format!("^{}", named.replace('.', r"\.")), String::new())
    };
    KeyRemapper::from_pattern_iter([(from, to)]).map_err(|e| BundleError::Weights(e.to_string()))
}

/// Fills `module` from export bytes `weights`, its tensors renamed by `remapper`, strictly: a
/// missing, unexpected or misshapen tensor, or one that is not finite, is an error that names
/// it.
fn load_strictly<M: ModuleSnapshot>(
    module: &mut M,
    weights: &[u8],
    remapper: KeyRemapper,
    naming: &str,
) -> Result<(), BundleError> {
    let tensors = read_export_tensors(weights, &remapper).map_err(BundleError::Weights)?;
    let problems = apply_export_tensors(module, tensors);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BundleError::Weights(format!(
            "{} problem(s) ({naming}):\n{problems}",
            problems.len()
        )))
    }
}

/// Builds the network `description` describes on `device` and fills it: the backbone and the
/// main file's heads from `weights` (that file's safetensors bytes), and each head with a file
/// of its own from `on_demand`, one file's bytes per such head, in order. To load the main
/// file alone, pass [`BundleDescription::in_main_file`] and no files. Strict: a missing,
/// unexpected or misshapen tensor, or one that is not finite, is an error that names it.
pub fn load_bundle(
    description: &BundleDescription,
    weights: Vec<u8>,
    on_demand: Vec<Vec<u8>>,
    device: &Device,
) -> Result<Bundle, BundleError> {
    description.validate()?;
    let extra = description.on_demand_heads();
    if extra.len() != on_demand.len() {
        return Err(BundleError::Weights(format!(
            "{} head(s) have files of their own, but {} such file(s) were given",
            extra.len(),
            on_demand.len()
        )));
    }
    let main = description.in_main_file();
    let mut bundle = main.init(device)?;
    load_strictly(
        &mut bundle,
        &weights,
        head_prefixes(&main, false)?,
        "head tensors named by position",
    )?;
    for (head, bytes) in extra.iter().zip(on_demand) {
        bundle.heads.push(load_head(head, bytes, device)?);
    }
    Ok(bundle)
}

/// Builds head `description` on `device` and fills it from `weights`, the bytes of the file
/// [`head_weights`] wrote for it, strictly.
pub fn load_head(
    description: &HeadDescription,
    weights: Vec<u8>,
    device: &Device,
) -> Result<Head, BundleError> {
    let mut head = description.head.init(device);
    let remapper = single_head_prefix(&description.name, false)?;
    let naming = format!(
        "head {:?}'s tensors named without heads.{}.",
        description.name, description.name
    );
    load_strictly(&mut head, &weights, remapper, &naming)?;
    Ok(head)
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
        let from_half = load_bundle(&description, half, Vec::new(), &device).unwrap();
        let from_int8 = load_bundle(&description, int8, Vec::new(), &device).unwrap();
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
        let again = bundle_weights(&bundle, &description).unwrap();
        assert!(bytes == again, "the same bundle exports to the same bytes");
        let int8 = |bytes: &[u8]| crate::int8_weights::quantize_int8(bytes).unwrap();
        assert!(int8(&bytes) == int8(&again), "and so does its int8 form");

        let keys = SafetensorsStore::from_bytes(Some(bytes.clone()))
            .keys()
            .unwrap();
        assert!(keys.iter().any(|k| k.starts_with("backbone.")));
        assert!(keys.iter().any(|k| k.starts_with("heads.full.")));
        assert!(keys.iter().any(|k| k.starts_with("heads.wan.")));
        assert!(keys.iter().all(|k| !k.starts_with("heads.0")), "{keys:?}");

        let loaded = load_bundle(&description, bytes, Vec::new(), &device).unwrap();
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
        let loaded = load_bundle(&swapped, bytes.clone(), Vec::new(), &device).unwrap();
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
        let error = load_bundle(&renamed, bytes, Vec::new(), &device).unwrap_err();
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
            Vec::new(),
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
            Vec::new(),
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
        let error = load_bundle(
            &description,
            b"not safetensors".to_vec(),
            Vec::new(),
            &device,
        )
        .unwrap_err();
        assert!(matches!(error, BundleError::Weights(_)), "{error}");
        let bundle = description.init(&device).unwrap();
        let one = with_heads(vec![linear_head("full")]);
        assert!(matches!(
            bundle_weights(&bundle, &one),
            Err(BundleError::Weights(_))
        ));
    }

    #[test]
    fn a_head_in_a_file_of_its_own_loads_with_the_main_file_or_later() {
        let device = Device::flex();
        let mut description = with_heads(vec![linear_head("full"), q2l_head("role")]);
        description.heads[1].weights = Some("head-role.safetensors".into());
        let bundle = description.init(&device).unwrap();
        let main = bundle_weights(&bundle, &description).unwrap();
        let role = head_weights(&bundle, &description, 1).unwrap();
        let names = |bytes: &[u8]| {
            SafetensorsStore::from_bytes(Some(bytes.to_vec()))
                .keys()
                .unwrap()
        };
        assert!(names(&main).iter().all(|k| !k.starts_with("heads.role.")));
        assert!(names(&role).iter().all(|k| k.starts_with("heads.role.")));

        let input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let before = bundle.forward(input.clone());
        let whole = load_bundle(&description, main.clone(), vec![role.clone()], &device).unwrap();
        // As the page does: the main file first, the head when asked for.
        let mut later = load_bundle(
            &description.in_main_file(),
            main.clone(),
            Vec::new(),
            &device,
        )
        .unwrap();
        assert_eq!(later.heads.len(), 1);
        later
            .heads
            .push(load_head(&description.heads[1], role.clone(), &device).unwrap());
        for loaded in [whole, later] {
            for (a, b) in before.iter().zip(loaded.forward(input.clone())) {
                a.logits
                    .clone()
                    .into_data()
                    .assert_approx_eq::<f32>(&b.logits.into_data(), Tolerance::absolute(2e-2));
            }
        }

        // The file missing, or another head's file given.
        let error = load_bundle(&description, main.clone(), Vec::new(), &device).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("1 head(s) have files of their own"),
            "{error}"
        );
        let error = load_head(&description.heads[1], main, &device).unwrap_err();
        assert!(error.to_string().contains("missing tensor"), "{error}");
        let mut renamed = description.heads[1].clone();
        renamed.name = "epr".into();
        let error = load_head(&renamed, role, &device).unwrap_err();
        assert!(error.to_string().contains("head \"epr\""), "{error}");
    }
}
