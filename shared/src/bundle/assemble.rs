//! A bundle from models trained separately on one frozen backbone: their heads side by side
//! over the backbone, stored once. The models must agree on everything the backbone decides:
//! its configuration, its weights bit for bit (as exported, in half precision), the input size
//! and normalisation, and the label space. Frozen ImageNet weights agree; a fine-tuned backbone
//! does not, and is refused with the two models named.

use burn::store::ModuleSnapshot;

use super::description::{BundleDescription, HeadDescription, TrainingLabels};
use super::error::BundleError;
use super::model::Bundle;
use crate::exported::{ModelDescription, half_precision};
use crate::loss::LossKind;
use crate::model::Classifier;

/// One model to bundle, and what its head is to be called.
pub struct BundlePart {
    /// Where the model comes from (its directory), to name it in errors.
    pub origin: String,
    pub model: Classifier,
    /// Its network, labels, input and decision threshold.
    pub model_description: ModelDescription,
    /// The head's name, description and training record.
    pub name: String,
    pub description: String,
    pub labels: Option<TrainingLabels>,
    pub loss: Option<LossKind>,
}

/// The exported form of a backbone's tensors: name, dtype and shape text, and bytes.
fn exported_tensors(model: &Classifier) -> Result<Vec<(String, String, Vec<u8>)>, BundleError> {
    model
        .backbone
        .collect(None, Some(Box::new(half_precision())), true)
        .into_iter()
        .map(|tensor| {
            let bytes = tensor
                .to_bytes()
                .map_err(|e| BundleError::Weights(format!("{}: {e:?}", tensor.name)))?;
            Ok((
                tensor.name.clone(),
                format!("{:?} {:?}", tensor.dtype, tensor.shape),
                bytes.to_vec(),
            ))
        })
        .collect()
}

/// What differs between two backbones' exported tensors, if anything.
fn weights_difference(
    first: &[(String, String, Vec<u8>)],
    other: &[(String, String, Vec<u8>)],
) -> Option<String> {
    if first.len() != other.len() {
        return Some(format!(
            "their backbones have {} and {} tensors",
            first.len(),
            other.len()
        ));
    }
    first.iter().zip(other).find_map(|(a, b)| {
        if a.0 != b.0 || a.1 != b.1 {
            Some(format!(
                "backbone tensor {} ({}) against {} ({})",
                a.0, a.1, b.0, b.1
            ))
        } else if a.2 != b.2 {
            Some(format!(
                "their backbone weights differ (first in backbone.{}): one backbone was trained \
                 (fine-tuned) or loaded from other weights; only heads trained on the same \
                 frozen backbone can share it",
                a.0
            ))
        } else {
            None
        }
    })
}

/// What differs between two models in what their backbone decides, apart from its weights.
fn description_difference(first: &ModelDescription, other: &ModelDescription) -> Option<String> {
    let backbone = |d: &ModelDescription| serde_json::to_string(&d.classifier.backbone).ok();
    if backbone(first) != backbone(other) {
        return Some(format!(
            "backbone {} against {}",
            backbone(first).unwrap_or_default(),
            backbone(other).unwrap_or_default()
        ));
    }
    let (a, b) = (&first.preprocessing, &other.preprocessing);
    if a != b {
        return Some(format!(
            "input {}x{} px (mean {:?}, std {:?}) against {}x{} px (mean {:?}, std {:?})",
            a.width, a.height, a.mean, a.std, b.width, b.height, b.mean, b.std
        ));
    }
    let (a, b) = (&first.label_space, &other.label_space);
    if a != b {
        return Some(format!(
            "label space {:?} ({} classes) against {:?} ({} classes)",
            a.name(),
            a.n_classes(),
            b.name(),
            b.n_classes()
        ));
    }
    None
}

/// Puts the heads of `parts` over the first part's backbone, in order, each with the decision
/// threshold its model records.
pub fn assemble(parts: Vec<BundlePart>) -> Result<(Bundle, BundleDescription), BundleError> {
    let Some(first) = parts.first() else {
        return Err(BundleError::NoHeads);
    };
    let reference = exported_tensors(&first.model)?;
    for other in &parts[1..] {
        let difference =
            match description_difference(&first.model_description, &other.model_description) {
                Some(difference) => Some(difference),
                None => weights_difference(&reference, &exported_tensors(&other.model)?),
            };
        if let Some(what) = difference {
            return Err(BundleError::Mismatch {
                first: first.origin.clone(),
                other: other.origin.clone(),
                what,
            });
        }
    }
    let shared = &first.model_description;
    let description = BundleDescription {
        backbone: shared.classifier.backbone.clone(),
        preprocessing: shared.preprocessing.clone(),
        label_space: shared.label_space.clone(),
        heads: parts
            .iter()
            .map(|part| HeadDescription {
                name: part.name.clone(),
                description: part.description.clone(),
                labels: part.labels,
                loss: part.loss,
                head: part.model_description.classifier.head.clone(),
                decision_threshold: part.model_description.decision_threshold.clone(),
                weights: None,
            })
            .collect(),
    };
    description.validate()?;
    let mut parts = parts.into_iter();
    let first = parts.next().expect("checked above");
    let bundle = Bundle {
        backbone: first.model.backbone,
        heads: std::iter::once(first.model.head)
            .chain(parts.map(|part| part.model.head))
            .collect(),
    };
    Ok((bundle, description))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::fixtures::two_heads;
    use crate::bundle::weights::{bundle_weights, load_bundle};
    use burn::tensor::{Device, Tensor, Tolerance};

    /// Head `index` of a tiny random bundle as a separately trained model.
    fn part(
        bundle: &Bundle,
        description: &BundleDescription,
        index: usize,
        name: &str,
    ) -> BundlePart {
        BundlePart {
            origin: format!("runs/{name}"),
            model: bundle.classifier(index),
            model_description: description.model_description(index),
            name: name.into(),
            description: String::new(),
            labels: None,
            loss: None,
        }
    }

    #[test]
    fn heads_on_one_backbone_bundle_and_predict_as_their_models_did() {
        let device = Device::flex();
        let description = two_heads();
        let source = description.init(&device).unwrap();
        let mut threshold_of_b = description.model_description(1);
        threshold_of_b.decision_threshold.value = 0.7;
        let parts = vec![
            part(&source, &description, 0, "a"),
            BundlePart {
                model_description: threshold_of_b,
                ..part(&source, &description, 1, "b")
            },
        ];
        let (bundle, bundled) = assemble(parts).unwrap();
        assert_eq!(bundled.head_names(), ["a", "b"]);
        assert_eq!(bundled.heads[1].decision_threshold.value, 0.7);
        let bytes = bundle_weights(&bundle, &bundled).unwrap();
        let loaded = load_bundle(&bundled, bytes, Vec::new(), &device).unwrap();
        let input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let alone = source.classifier(1).forward(input.clone()).logits;
        let together = loaded.forward(input).remove(1).logits;
        alone
            .into_data()
            .assert_approx_eq::<f32>(&together.into_data(), Tolerance::absolute(2e-2));
    }

    #[test]
    fn different_backbones_are_refused_naming_both_models() {
        let device = Device::flex();
        let description = two_heads();
        let one = description.init(&device).unwrap();
        // Another random initialisation stands for a fine-tuned backbone.
        let other = description.init(&device).unwrap();
        let error = assemble(vec![
            part(&one, &description, 0, "full"),
            part(&other, &description, 1, "wan"),
        ])
        .unwrap_err();
        let BundleError::Mismatch {
            first,
            other: second,
            what,
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!((first.as_str(), second.as_str()), ("runs/full", "runs/wan"));
        assert!(what.contains("backbone weights differ"), "{error}");

        let mut bigger = description.model_description(1);
        bigger.preprocessing = crate::preprocess::Preprocessing::imagenet(64);
        let error = assemble(vec![
            part(&one, &description, 0, "full"),
            BundlePart {
                model_description: bigger,
                ..part(&one, &description, 1, "wan")
            },
        ])
        .unwrap_err();
        assert!(error.to_string().contains("input 32x32 px"), "{error}");

        let mut voc = description.model_description(1);
        voc.label_space = crate::labels::LabelSpace::voc20();
        let error = assemble(vec![
            part(&one, &description, 0, "full"),
            BundlePart {
                model_description: voc,
                ..part(&one, &description, 1, "wan")
            },
        ])
        .unwrap_err();
        assert!(error.to_string().contains("label space"), "{error}");
        assert!(matches!(assemble(Vec::new()), Err(BundleError::NoHeads)));
    }
}
