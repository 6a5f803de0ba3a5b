//! What a `--model` path holds, and loading any of them as a bundle of heads.
//!
//! A path names a saved model (a model directory, or a training run directory whose `best/`
//! holds its best model), a single-model export of format 1 (written before bundles, still read
//! so that it can be evaluated and converted), or a bundle (`trainer export`). A single model
//! counts as a bundle of one head, named as `trainer export` would name it.

use std::path::Path;

use burn::tensor::Device;
use querylabel::bundle::description::default_head_description;
use querylabel::bundle::{
    Bundle, BundleDescription, BundlePart, TrainingLabels, assemble, load_bundle, load_head,
    parse_bundle_manifest,
};
use querylabel::loss::LossKind;

use crate::checkpoint::{ModelFiles, read_json};
use crate::error::{Context, Locate, Result, TrainerError};
use crate::model_dir::{ModelKind, ModelSource, run_options};
use crate::saved_model::load_model;
use crate::train_options::{LabelMode, TrainOptions};

/// The name of a single model's head when nothing says what it was trained with.
pub const UNNAMED_HEAD: &str = "model";

/// What a training run recorded about how its model was trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainingRecord {
    pub labels: TrainingLabels,
    pub loss: LossKind,
}

impl TrainingRecord {
    /// The run's record, from its `options.json` beside `path`'s model; `None` for a model
    /// without its run (an export, a copied model directory).
    pub fn of(path: &Path) -> Result<Option<Self>> {
        let Ok(options) = run_options(path) else {
            return Ok(None);
        };
        let options: TrainOptions = read_json(&options)?;
        Ok(Some(Self {
            labels: match options.labels {
                LabelMode::Full => TrainingLabels::Full,
                LabelMode::SinglePositive => TrainingLabels::SinglePositive,
            },
            loss: options.loss(),
        }))
    }

    /// The head's default name: `full` for every label (whatever the loss), otherwise the
    /// single-positive loss (`wan`, `an-ls`, …).
    pub fn head_name(self) -> String {
        match self.labels {
            TrainingLabels::Full => "full".into(),
            TrainingLabels::SinglePositive => self.loss.name().into(),
        }
    }
}

/// How one model's head is to be named and described in a bundle; `None` takes what the
/// training run recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadNaming {
    pub name: Option<String>,
    pub description: Option<String>,
    pub labels: Option<TrainingLabels>,
    pub loss: Option<LossKind>,
}

/// A given value, the recorded one, or either when they agree; an error naming both when not.
fn agreeing<T: PartialEq + Copy + std::fmt::Display>(
    flag: &str,
    given: Option<T>,
    recorded: Option<T>,
    path: &Path,
) -> Result<Option<T>> {
    match (given, recorded) {
        (Some(given), Some(recorded)) if given != recorded => Err(TrainerError::new(format!(
            "but the training run of {} recorded {recorded}",
            path.display()
        ))
        .at_flag_value(format!("--{flag}"), given)
        .with_hint(format!(
            "drop --{flag} after this --model: its training run's record is used"
        ))),
        (given, recorded) => Ok(given.or(recorded)),
    }
}

/// The single model at `path` (saved or format-1 export; `source` is what it holds) as one part
/// of a bundle, named as `naming` says or as its training run implies; `fallback_name` names it
/// when neither does (`None`: that is an error).
pub fn single_model_part(
    path: &Path,
    source: &ModelSource,
    naming: &HeadNaming,
    fallback_name: Option<&str>,
    device: &Device,
) -> Result<BundlePart> {
    if source.kind == ModelKind::Bundle {
        return Err(TrainerError::new("a bundle of heads, not one model")
            .in_file(&source.dir)
            .with_hint("export its heads' training runs instead"));
    }
    let record = TrainingRecord::of(path)?;
    let labels = agreeing("labels", naming.labels, record.map(|r| r.labels), path)?;
    let loss = agreeing("loss", naming.loss, record.map(|r| r.loss), path)?;
    let name = match (&naming.name, record, fallback_name) {
        (Some(name), _, _) => name.clone(),
        (None, Some(record), _) => record.head_name(),
        (None, None, Some(fallback)) => fallback.into(),
        (None, None, None) => {
            return Err(TrainerError::new(
                "no training run records how this model was trained, so its head has no default \
                 name",
            )
            .in_file(path)
            .with_hint("give one with --name after its --model"));
        }
    };
    let (model, model_description) = load_model(path, device)?;
    Ok(BundlePart {
        origin: path.display().to_string(),
        model,
        model_description,
        name,
        description: naming
            .description
            .clone()
            .unwrap_or_else(|| default_head_description(labels, loss)),
        labels,
        loss,
    })
}

/// Loads the model of `path` as a bundle: a bundle as it is, a single model as a bundle of one
/// head.
pub fn load_heads(path: &Path, device: &Device) -> Result<(Bundle, BundleDescription)> {
    let source = ModelSource::of(path)?;
    if source.kind == ModelKind::Bundle {
        return load_bundle_dir(&source.dir, device);
    }
    let part = single_model_part(
        path,
        &source,
        &HeadNaming::default(),
        Some(UNNAMED_HEAD),
        device,
    )?;
    assemble(vec![part]).in_file(path)
}

/// The heads `name` selects: that one, or every head when `None`.
pub fn selected_heads(description: &BundleDescription, name: Option<&str>) -> Result<Vec<usize>> {
    match name {
        Some(name) => {
            let index = description.head_index(name).at_flag("--head")?;
            Ok(vec![index])
        }
        None => Ok((0..description.heads.len()).collect()),
    }
}

/// Loads the bundle in `dir` (weights widened to f32), strictly, through the loader the browser
/// uses too: the main weights file and every head's file of its own.
pub fn load_bundle_dir(dir: &Path, device: &Device) -> Result<(Bundle, BundleDescription)> {
    let manifest_path = ModelFiles::in_dir(dir).config;
    let json = std::fs::read_to_string(&manifest_path).context_in(&manifest_path, "cannot read")?;
    let manifest = parse_bundle_manifest(&json).in_file(&manifest_path)?;
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read(&path).context_in(&path, "cannot read")
    };
    let main = read(&manifest.weights)?;
    let description = manifest.model.in_main_file();
    let mut bundle =
        load_bundle(&description, main, Vec::new(), device).in_file(dir.join(&manifest.weights))?;
    for head in manifest.model.on_demand_heads() {
        let file = head
            .weights
            .as_deref()
            .expect("an on-demand head names its file");
        bundle
            .heads
            .push(load_head(head, read(file)?, device).in_file(dir.join(file))?);
    }
    Ok((bundle, manifest.model))
}
