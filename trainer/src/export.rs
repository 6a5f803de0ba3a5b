//! Exporting models for the browser as one bundle: the frozen backbone they share once, and each
//! model's head under its own name, in half precision or int8 (safetensors), with a `model.json`
//! manifest (classes, input size, normalisation, the networks, and each head's decision
//! threshold). Reading a bundle back is [`crate::model_source`]'s.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use querylabel::bundle::{
    BundleManifest, BundlePart, assemble, bundle_weights, head_weights, load_bundle,
};
use querylabel::int8_weights::quantize_int8;

use crate::atomic_files::write_atomically;
use crate::calibration::{ThresholdChoice, bundle_thresholds};
use crate::checkpoint::{ModelFiles, write_json};
use crate::error::{Context, Locate, Result, TrainerError};
use crate::model_dir::{ModelKind, ModelSource};
use crate::model_source::{HeadNaming, load_bundle_dir, single_model_part};

/// The weights file of a bundle, beside its `model.json`.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// How an export stores its large weight tensors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightStorage {
    /// Half precision: as trained, to f16's rounding.
    #[default]
    F16,
    /// 8-bit integers with a scale per slice (`querylabel::int8_weights`): half the size of
    /// f16, for the page's download.
    Int8,
}

/// One model to put into a bundle: a training run or model directory, or a single-model export
/// (format 1), with how to name its head and set its threshold.
#[derive(Clone, Debug, Default)]
pub struct ModelToExport {
    pub path: PathBuf,
    pub naming: HeadNaming,
    /// A fixed decision threshold (`--threshold`); otherwise it is chosen on the training run's
    /// validation split, or for an export kept as recorded.
    pub threshold: Option<f32>,
}

impl ModelToExport {
    fn threshold_choice(&self, kind: ModelKind) -> ThresholdChoice {
        match (self.threshold, kind) {
            (Some(value), _) => ThresholdChoice::Fixed(value),
            (None, ModelKind::SingleExport | ModelKind::Bundle) => ThresholdChoice::Recorded,
            (None, _) => ThresholdChoice::FromValidation,
        }
    }
}

/// Every head of the bundle in `dir` as a part of a new bundle, as recorded.
fn bundle_parts(dir: &Path, device: &Device) -> Result<Vec<BundlePart>> {
    let (bundle, description) = load_bundle_dir(dir, device)?;
    Ok(description
        .heads
        .iter()
        .enumerate()
        .map(|(index, head)| BundlePart {
            origin: format!("{} (head {})", dir.display(), head.name),
            model: bundle.classifier(index),
            model_description: description.model_description(index),
            name: head.name.clone(),
            description: head.description.clone(),
            labels: head.labels,
            loss: head.loss,
        })
        .collect())
}

/// The file of a head whose weights are downloaded on demand, beside the manifest.
pub fn on_demand_file(head: &str) -> String {
    format!("head-{head}.safetensors")
}

/// Exports `models`, which must share one backbone bit for bit, as one bundle in `out`
/// (created if needed); returns the manifest's path. The heads named in `on_demand` get weights
/// files of their own ([`on_demand_file`]), which the page downloads only when a visitor asks
/// for them; they must come after the other heads. Nothing is written until every threshold
/// is known, so a failure leaves no half export; each file is replaced atomically, the
/// manifest last.
pub fn export_bundle(
    models: &[ModelToExport],
    on_demand: &[String],
    storage: WeightStorage,
    out: &Path,
) -> Result<PathBuf> {
    let device = Device::flex();
    let mut parts = Vec::with_capacity(models.len());
    // Per head of the new bundle: the model it comes from and that model's kind.
    let mut origins = Vec::with_capacity(models.len());
    for model in models {
        let source = ModelSource::of(&model.path)?;
        if source.kind == ModelKind::Bundle {
            // An earlier bundle contributes every head as it is, threshold included, so that a
            // head can be added to a bundle without its other heads' training runs.
            if model.naming != HeadNaming::default() || model.threshold.is_some() {
                return Err(TrainerError::new(
                    "is a bundle: its heads keep their names, descriptions and thresholds",
                )
                .in_file(&model.path)
                .with_hint(
                    "give no --name, --description, --labels, --loss or --threshold after it",
                ));
            }
            for part in bundle_parts(&source.dir, &device)? {
                parts.push(part);
                origins.push((model, ModelKind::Bundle));
            }
        } else {
            parts.push(single_model_part(
                &model.path,
                &source,
                &model.naming,
                None,
                &device,
            )?);
            origins.push((model, source.kind));
        }
    }
    let (bundle, mut description) = assemble(parts)?;
    for name in on_demand {
        let index = description.head_index(name).at_flag("--on-demand")?;
        description.heads[index].weights = Some(on_demand_file(name));
    }
    description.validate().at_flag("--on-demand")?;
    let store = |bytes: Vec<u8>| match storage {
        WeightStorage::F16 => Ok(bytes),
        WeightStorage::Int8 => quantize_int8(&bytes).map_err(|why| {
            TrainerError::new("cannot store the bundle's weights as int8")
                .in_file(out)
                .caused_by(why)
        }),
    };
    let bytes = store(
        bundle_weights(&bundle, &description).context_in(out, "cannot serialise the bundle")?,
    )?;
    let first_on_demand = description.heads.len() - description.on_demand_heads().len();
    let mut head_files = Vec::new();
    for index in first_on_demand..description.heads.len() {
        let head = head_weights(&bundle, &description, index)
            .context_in(out, "cannot serialise a head")?;
        head_files.push(store(head)?);
    }
    // Thresholds are chosen for the weights the bundle ships, as they load.
    let exported = load_bundle(&description, bytes.clone(), head_files.clone(), &device)
        .context_in(out, "the bundle does not load back")?;
    let choices: Vec<(ThresholdChoice, &Path)> = origins
        .iter()
        .map(|(model, kind)| (model.threshold_choice(*kind), model.path.as_path()))
        .collect();
    let thresholds = bundle_thresholds(&choices, &exported, &description, &device)?;
    for (head, threshold) in description.heads.iter_mut().zip(thresholds) {
        head.decision_threshold = threshold;
    }
    description.validate()?;
    write_atomically(&out.join(WEIGHTS_FILE), &bytes)?;
    for (head, file) in description.on_demand_heads().iter().zip(&head_files) {
        let name = head
            .weights
            .as_deref()
            .expect("an on-demand head names its file");
        write_atomically(&out.join(name), file)?;
    }
    let path = ModelFiles::in_dir(out).config;
    write_json(&path, &BundleManifest::new(description, WEIGHTS_FILE))?;
    Ok(path)
}
