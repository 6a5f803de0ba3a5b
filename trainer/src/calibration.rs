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
//! The heads of one bundle that were trained on the same split share that pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use querylabel::bundle::{Bundle, BundleDescription};
use querylabel::exported::DecisionThreshold;
use querylabel::metrics::{LabelledScores, MAX_FALSE_POSITIVES_PER_IMAGE, choose_threshold};
use querylabel::single_positive::train_validation_split;

use crate::checkpoint::read_json;
use crate::dataset::{Dataset, Split, open_dataset};
use crate::error::{Context, Locate, Result, TrainerError};
use crate::evaluate::{probabilities, score_dataset_with};
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

/// The decision threshold of each head of `exported` (the bundle as it ships, loaded back),
/// `heads[i]` saying how head `i`'s is set and where its model came from (a model or run
/// directory). Heads whose runs held out the same validation photos are scored together: the
/// backbone runs once per batch for all of them, rather than once per head (11 heads of one
/// split took 19 minutes one by one on two cores).
pub fn bundle_thresholds(
    heads: &[(ThresholdChoice, &Path)],
    exported: &Bundle,
    description: &BundleDescription,
    device: &Device,
) -> Result<Vec<DecisionThreshold>> {
    let mut thresholds = vec![None; heads.len()];
    let mut splits: Vec<ValidationSplit> = Vec::new();
    for (index, &(choice, model_path)) in heads.iter().enumerate() {
        match choice {
            ThresholdChoice::Fixed(value) => thresholds[index] = Some(fixed(value)),
            ThresholdChoice::Recorded => {
                thresholds[index] = Some(description.heads[index].decision_threshold.clone())
            }
            ThresholdChoice::FromValidation => {
                let options_path = run_options(model_path)?;
                let photos = validation_photos(&options_path)?;
                if photos.label_space.class_names() != description.label_space.class_names() {
                    return Err(TrainerError::new(
                        "the run's data set has other classes than the model predicts",
                    )
                    .in_file(&options_path));
                }
                match splits
                    .iter_mut()
                    .find(|split| same_photos(&split.photos, &photos))
                {
                    Some(split) => split.heads.push(index),
                    None => splits.push(ValidationSplit {
                        options_path,
                        photos,
                        heads: vec![index],
                    }),
                }
            }
        }
    }
    let loader = ImageLoader {
        preprocessing: description.preprocessing.clone(),
        augmentation: None,
    };
    let network = exported.valid();
    for split in splits {
        eprintln!(
            "choosing the decision threshold of {} head(s) on the {} validation photos of {}",
            split.heads.len(),
            split.photos.len(),
            split.options_path.display()
        );
        let mut scores = vec![Vec::new(); split.heads.len()];
        // Each head's probabilities are kept aside; the scoring keeps the labels of the photos
        // that loaded.
        let scored = score_dataset_with(&split.photos, &loader, SCORING_BATCH, device, |images| {
            let outputs = network.forward_heads(images, &split.heads);
            for (head_scores, output) in scores.iter_mut().zip(outputs) {
                head_scores.extend(probabilities(output.logits));
            }
            (Vec::new(), Vec::new())
        });
        for (head_scores, &index) in scores.iter().zip(&split.heads) {
            let set = LabelledScores::new(head_scores, &scored.labels, scored.n_classes)
                .in_file(&split.options_path)?;
            let chosen =
                choose_threshold(&set, MAX_FALSE_POSITIVES_PER_IMAGE).ok_or_else(|| {
                    TrainerError::new(format!(
                        "no validation photo that loaded ({} skipped) has a label, so no \
                         threshold can be chosen",
                        scored.skipped
                    ))
                    .in_file(&split.options_path)
                    .with_hint("pass --threshold VALUE")
                })?;
            thresholds[index] = Some(DecisionThreshold::chosen_on_validation(&chosen));
        }
    }
    Ok(thresholds
        .into_iter()
        .map(|threshold| threshold.expect("every head's threshold is set"))
        .collect())
}

/// The photos one or more heads' thresholds are chosen on.
struct ValidationSplit {
    options_path: PathBuf,
    photos: Dataset,
    heads: Vec<usize>,
}

/// Whether two validation splits hold the same photos, in the same order.
fn same_photos(a: &Dataset, b: &Dataset) -> bool {
    a.len() == b.len()
        && a.examples
            .iter()
            .zip(&b.examples)
            .all(|(x, y)| x.path == y.path)
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
    let header = FeatureCache::read_header(cache_path).or_error(|| {
        TrainerError::new("cannot read the feature cache").at_field(options_path, "features")
    })?;
    let split = train_validation_split(header.images.len(), options.val_fraction, options.seed);
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
