//! A model's decision threshold: chosen at export on the validation split of the training run
//! the model came from, or fixed from the command line; and the threshold a command uses.
//!
//! The run directory's `options.json` says which photos were held out: `trainer train` splits
//! the data set's (or feature cache's) rows with `train_validation_split(rows, val_fraction,
//! seed)`, and this module makes the same split. The photos are scored by the model being
//! exported, after its half-precision round trip, so the threshold fits what ships. For a run
//! trained on a feature cache the photos are the cache's rows, found again in the data set the
//! cache was extracted from, and go through the backbone (about 90 s for 1,000 photos on two
//! cores): slower than reusing the cached features, but the same path the exported model runs.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use querylabel::exported::{DecisionThreshold, ModelDescription};
use querylabel::metrics::{LabelledScores, MAX_FALSE_POSITIVES_PER_IMAGE, choose_threshold};
use querylabel::model::Classifier;
use querylabel::single_positive::train_validation_split;

use crate::checkpoint::read_json;
use crate::dataset::{Dataset, Split, open_dataset};
use crate::error::{Context, Locate, Result, TrainerError};
use crate::evaluate::score_dataset;
use crate::feature_cache::FeatureCache;
use crate::images::ImageLoader;
use crate::model_dir::run_options;
use crate::train_options::TrainOptions;

/// Photos per forward pass when scoring the validation split.
const SCORING_BATCH: usize = 32;

/// The [`DecisionThreshold::rule`] of a threshold given on the command line.
pub const FIXED_RULE: &str = "fixed with --threshold";

/// How `trainer export` sets a head's threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdChoice {
    /// Choose it on the training run's validation split (the default for a training run).
    FromValidation,
    /// Use this value (`--threshold`).
    Fixed(f32),
    /// Keep the one the model records (the default for an export, whose threshold was chosen
    /// when it was exported).
    Recorded,
}

/// The threshold a command runs with: `--threshold` when given, otherwise the model's own.
pub fn threshold_in_use(flag: Option<f32>, recorded: &DecisionThreshold) -> DecisionThreshold {
    match flag {
        Some(value) => fixed(value),
        None => recorded.clone(),
    }
}

/// Where the threshold in use came from, for people: the command line, or the model, with the
/// rule it was recorded by (a value fixed at export reads as such, not as this command's flag).
pub fn threshold_origin(flag: Option<f32>, in_use: &DecisionThreshold) -> String {
    match flag {
        Some(_) => "given with --threshold".into(),
        None if in_use.rule == FIXED_RULE => {
            "the model's own, fixed with --threshold when it was exported".into()
        }
        None => format!("the model's own: {}", in_use.rule),
    }
}

fn fixed(value: f32) -> DecisionThreshold {
    DecisionThreshold {
        value,
        rule: FIXED_RULE.into(),
        validation: None,
    }
}

/// Resolves `choice` for the model found at `model_path` (a model or run directory), whose
/// exported form `exported` is scored when the threshold is chosen on validation photos.
pub fn decision_threshold(
    choice: ThresholdChoice,
    model_path: &Path,
    exported: &Classifier,
    description: &ModelDescription,
    device: &Device,
) -> Result<DecisionThreshold> {
    match choice {
        ThresholdChoice::Fixed(value) => Ok(fixed(value)),
        ThresholdChoice::Recorded => Ok(description.decision_threshold.clone()),
        ThresholdChoice::FromValidation => {
            threshold_from_validation(model_path, exported, description, device)
        }
    }
}

fn threshold_from_validation(
    model_path: &Path,
    model: &Classifier,
    description: &ModelDescription,
    device: &Device,
) -> Result<DecisionThreshold> {
    let options_path = run_options(model_path)?;
    let validation = validation_photos(&options_path)?;
    if validation.label_space.class_names() != description.label_space.class_names() {
        return Err(TrainerError::new(
            "the run's data set has other classes than the model predicts",
        )
        .in_file(&options_path));
    }
    let loader = ImageLoader {
        preprocessing: description.preprocessing.clone(),
        augmentation: None,
    };
    eprintln!(
        "choosing the decision threshold on the {} validation photos of {}",
        validation.len(),
        options_path.display()
    );
    let scored = score_dataset(&model.valid(), &validation, &loader, SCORING_BATCH, device);
    let set = LabelledScores::new(&scored.scores, &scored.labels, scored.n_classes)
        .in_file(&options_path)?;
    let chosen = choose_threshold(&set, MAX_FALSE_POSITIVES_PER_IMAGE).ok_or_else(|| {
        TrainerError::new(format!(
            "no validation photo that loaded ({} skipped) has a label, so no threshold can be \
             chosen",
            scored.skipped
        ))
        .in_file(&options_path)
        .with_hint("pass --threshold VALUE")
    })?;
    Ok(DecisionThreshold::chosen_on_validation(&chosen))
}

/// The validation photos of the run recorded in `options_path`, with their clean labels.
fn validation_photos(options_path: &Path) -> Result<Dataset> {
    let options: TrainOptions = read_json(options_path)?;
    if !(0.0..=1.0).contains(&options.val_fraction) {
        return Err(TrainerError::new("is not within [0, 1]").at_field_value(
            options_path,
            "val_fraction",
            options.val_fraction,
        ));
    }
    let Some(cache_path) = &options.features else {
        let dataset = open_dataset(&options.data, options.format, Split::Train).or_error(|| {
            TrainerError::new("cannot open the data set").at_field(options_path, "data")
        })?;
        let split = train_validation_split(dataset.len(), options.val_fraction, options.seed);
        return Ok(dataset.subset(&split.validation));
    };
    let cache = FeatureCache::read(cache_path).or_error(|| {
        TrainerError::new("cannot read the feature cache").at_field(options_path, "features")
    })?;
    let split = train_validation_split(cache.len(), options.val_fraction, options.seed);
    let header = &cache.header;
    let dataset = open_dataset(&header.source, options.format, header.split).or_error(|| {
        TrainerError::new("cannot open the data set the features were extracted from")
            .at_field(cache_path, "source")
    })?;
    let position: HashMap<&Path, usize> = dataset
        .examples
        .iter()
        .enumerate()
        .map(|(index, example)| (example.path.as_path(), index))
        .collect();
    let indices = split
        .validation
        .iter()
        .map(|&row| {
            let photo = &header.images[row];
            position.get(photo.as_path()).copied().ok_or_else(|| {
                TrainerError::new(format!(
                    "validation photo {} is no longer in the data set {}",
                    photo.display(),
                    header.source.display()
                ))
                .in_file(cache_path)
                .with_hint("extract the features again, or pass --threshold VALUE")
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok(dataset.subset(&indices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_overrides_the_recorded_threshold() {
        let recorded = DecisionThreshold::default();
        assert_eq!(threshold_in_use(None, &recorded), recorded);
        let fixed = threshold_in_use(Some(0.3), &recorded);
        assert_eq!((fixed.value, fixed.rule.as_str()), (0.3, FIXED_RULE));
    }

    #[test]
    fn the_origin_tells_this_command_line_from_what_the_model_records() {
        let exported = fixed(0.6);
        assert_eq!(
            threshold_origin(None, &exported),
            "the model's own, fixed with --threshold when it was exported"
        );
        let chosen = DecisionThreshold {
            value: 0.4,
            rule: "highest OF1".into(),
            validation: None,
        };
        assert_eq!(
            threshold_origin(None, &chosen),
            "the model's own: highest OF1"
        );
        let given = threshold_in_use(Some(0.3), &chosen);
        assert_eq!(
            threshold_origin(Some(0.3), &given),
            "given with --threshold"
        );
    }
}
