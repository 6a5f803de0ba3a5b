//! Choosing a model's decision threshold on a validation split, and what predicting every label
//! at or above a threshold means for one photo: how many wrong labels it shows and how many of
//! its true labels it finds.
//!
//! # One global threshold, not one per class
//!
//! The threshold is one number for every class, chosen to maximise the overall F1 (OF1, counts
//! pooled over all classes) among the thresholds that show at most
//! [`MAX_FALSE_POSITIVES_PER_IMAGE`] wrong labels per photo on average.
//!
//! - *Why global.* A validation split of about 1,000 photos holds a handful of positives of the
//!   rare classes (COCO's hair drier or toaster: 2–10). A threshold fitted per class to those few
//!   photos follows their noise and does not carry over to new photos, while a global one is
//!   fitted on the few thousand positive labels of all classes together. The miscalibration it
//!   corrects is mostly global too: a loss that treats unobserved labels as negatives (single
//!   positives) or weighs them down (ASL) shifts every class's probabilities the same way.
//!   A visitor of the demo also understands one slider per model; eighty do not fit.
//! - *Why OF1.* OF1 weighs every predicted label alike, so it rewards what a user sees: the
//!   labels shown for a photo that are right, against those that are wrong or missing. The
//!   per-class F1 (CF1) gives a class with 3 positives the weight of one with 300, which again
//!   chases the rare classes' noise.
//! - *Why the cap on wrong labels.* Maximising OF1 alone happily shows more than one wrong
//!   label per photo when a model finds several true labels at that price; a photo's list
//!   with two wrong labels in it reads as broken. The cap is the demo's promise: on average at
//!   most one wrong label above the threshold per photo.

use super::LabelledScores;
use super::labelled_scores::label_is_positive;

/// The largest mean number of wrong labels per photo that a chosen threshold may show on the
/// validation split.
pub const MAX_FALSE_POSITIVES_PER_IMAGE: f64 = 1.0;

/// What predicting every label scored `>= threshold` gives, per photo, averaged over the set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelsPerImage {
    /// Labels at or above the threshold that the photo does not have (false positives).
    pub false_positives: f64,
    /// Labels at or above the threshold that the photo has (true positives).
    pub true_positives: f64,
}

/// A threshold chosen on a validation split, with what it achieves there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChosenThreshold {
    /// Predict a label when its score is `>= threshold`. It lies halfway between the lowest
    /// score predicted on the split and the next lower one, so it does not sit on a validation
    /// score that rounding (half-precision weights, another backend) could move to either side.
    pub threshold: f32,
    /// OF1 on the split at `threshold`, in `[0, 1]`.
    pub overall_f1: f64,
    pub per_image: LabelsPerImage,
    /// Photos it was chosen on.
    pub images: usize,
    /// The cap on [`LabelsPerImage::false_positives`] it was chosen under.
    pub max_false_positives_per_image: f64,
}

/// Mean wrong and true labels per photo at or above `threshold` (zeros for an empty set).
pub fn labels_per_image(set: &LabelledScores<'_>, threshold: f32) -> LabelsPerImage {
    let mut false_positives = 0usize;
    let mut true_positives = 0usize;
    for (&score, &label) in set.scores().iter().zip(set.labels()) {
        if score >= threshold {
            if label_is_positive(label) {
                true_positives += 1;
            } else {
                false_positives += 1;
            }
        }
    }
    let images = set.n_images().max(1) as f64;
    LabelsPerImage {
        false_positives: false_positives as f64 / images,
        true_positives: true_positives as f64 / images,
    }
}

/// The global threshold with the highest OF1 on `set` among those showing at most
/// `max_false_positives_per_image` wrong labels per photo (see the module's documentation for
/// why); [`MAX_FALSE_POSITIVES_PER_IMAGE`] is the project's cap.
///
/// Every distinct score is a candidate. Between thresholds of equal OF1 the higher one wins:
/// it shows fewer wrong labels. When no threshold that predicts anything keeps under the cap,
/// the result predicts nothing (just above the highest score, OF1 0). NaN scores are never
/// predicted; their positives still count as missed. `None` when no label of the set is
/// positive (F1 is undefined) or no score is a number.
pub fn choose_threshold(
    set: &LabelledScores<'_>,
    max_false_positives_per_image: f64,
) -> Option<ChosenThreshold> {
    let actual = set
        .labels()
        .iter()
        .filter(|&&l| label_is_positive(l))
        .count();
    let mut ranked: Vec<(f32, bool)> = set
        .scores()
        .iter()
        .zip(set.labels())
        .filter(|(score, _)| !score.is_nan())
        .map(|(&score, &label)| (score, label_is_positive(label)))
        .collect();
    if actual == 0 || ranked.is_empty() {
        return None;
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let images = set.n_images();
    let allowed_false_positives = max_false_positives_per_image * images as f64;

    // Predicting nothing is always allowed; anything better must beat its OF1 of 0.
    let mut best = Candidate {
        threshold: ranked[0].0.next_up(),
        true_positives: 0,
        predicted: 0,
        overall_f1: 0.0,
    };
    let (mut true_positives, mut predicted) = (0usize, 0usize);
    let mut start = 0;
    while start < ranked.len() {
        let score = ranked[start].0;
        // Equal scores are predicted together: they form one candidate.
        let end = start + ranked[start..].partition_point(|&(s, _)| s == score);
        true_positives += ranked[start..end].iter().filter(|(_, p)| *p).count();
        predicted += end - start;
        // Wrong labels only grow as the threshold falls: past the cap, nothing lower qualifies.
        if (predicted - true_positives) as f64 > allowed_false_positives {
            break;
        }
        // OF1 = 2·TP / (predicted + actual), the harmonic mean of OP and OR.
        let overall_f1 = 2.0 * true_positives as f64 / (predicted + actual) as f64;
        if overall_f1 > best.overall_f1 {
            best = Candidate {
                threshold: between(score, ranked.get(end).map(|&(s, _)| s)),
                true_positives,
                predicted,
                overall_f1,
            };
        }
        start = end;
    }
    let per_image = images.max(1) as f64;
    Some(ChosenThreshold {
        threshold: best.threshold,
        overall_f1: best.overall_f1,
        per_image: LabelsPerImage {
            false_positives: (best.predicted - best.true_positives) as f64 / per_image,
            true_positives: best.true_positives as f64 / per_image,
        },
        images,
        max_false_positives_per_image,
    })
}

/// One threshold of the sweep and its counts.
struct Candidate {
    threshold: f32,
    true_positives: usize,
    predicted: usize,
    overall_f1: f64,
}

/// A threshold that keeps `lowest_predicted` and drops `next_lower`: their midpoint, or
/// `lowest_predicted` itself when there is no lower score or no float strictly between.
fn between(lowest_predicted: f32, next_lower: Option<f32>) -> f32 {
    let Some(next_lower) = next_lower else {
        return lowest_predicted;
    };
    let midpoint = ((f64::from(lowest_predicted) + f64::from(next_lower)) / 2.0) as f32;
    if midpoint > next_lower && midpoint <= lowest_predicted {
        midpoint
    } else {
        lowest_predicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::threshold_metrics;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    // Two photos, two classes.
    //   scores      labels
    //   0.9 0.4     1 0
    //   0.6 0.2     0 1
    // Ranked: 0.9 (+), 0.6 (−), 0.4 (−), 0.2 (+); 2 positive labels.
    // OF1 = 2·TP / (predicted + 2) at each candidate: 0.9 → 2/3, 0.6 → 2/4, 0.4 → 2/5,
    // 0.2 → 4/6 = 2/3 (ties 0.9, but shows 2 wrong labels: the higher threshold wins).
    const SCORES: [f32; 4] = [0.9, 0.4, 0.6, 0.2];
    const LABELS: [f32; 4] = [1.0, 0.0, 0.0, 1.0];

    #[test]
    fn picks_the_best_overall_f1_and_the_higher_threshold_on_a_tie() {
        let set = LabelledScores::new(&SCORES, &LABELS, 2).unwrap();
        let chosen = choose_threshold(&set, f64::INFINITY).unwrap();
        // Halfway between 0.9 (predicted) and 0.6 (not).
        assert!((chosen.threshold - 0.75).abs() < 1e-6, "{chosen:?}");
        assert!(close(chosen.overall_f1, 2.0 / 3.0));
        assert!(close(chosen.per_image.false_positives, 0.0));
        assert!(close(chosen.per_image.true_positives, 0.5));
        assert_eq!(chosen.images, 2);
        // The same numbers as the metrics at that threshold.
        let at = threshold_metrics(&set, chosen.threshold).unwrap();
        assert!(close(at.overall_f1, chosen.overall_f1));
        assert_eq!(labels_per_image(&set, chosen.threshold), chosen.per_image);
    }

    #[test]
    fn the_cap_on_wrong_labels_moves_the_threshold_up() {
        // One photo: 0.9 (−), 0.8 (−), 0.7 (+), 0.6 (+); 2 positive labels.
        // Candidates: 0.9 → OF1 0 (1 wrong), 0.8 → 0 (2 wrong), 0.7 → 2/5 (2 wrong),
        // 0.6 → 4/6 (2 wrong).
        let scores = [0.9, 0.8, 0.7, 0.6];
        let labels = [0.0, 0.0, 1.0, 1.0];
        let set = LabelledScores::new(&scores, &labels, 4).unwrap();

        let uncapped = choose_threshold(&set, 2.0).unwrap();
        assert_eq!(uncapped.threshold, 0.6, "no lower score: the score itself");
        assert!(close(uncapped.overall_f1, 2.0 / 3.0));
        assert!(close(uncapped.per_image.false_positives, 2.0));
        assert!(close(uncapped.per_image.true_positives, 2.0));

        // At most one wrong label: only 0.9 qualifies, and it finds nothing, so nothing is
        // predicted.
        let capped = choose_threshold(&set, MAX_FALSE_POSITIVES_PER_IMAGE).unwrap();
        assert!(capped.threshold > 0.9, "{capped:?}");
        assert_eq!(capped.overall_f1, 0.0);
        assert_eq!(
            capped.per_image,
            LabelsPerImage {
                false_positives: 0.0,
                true_positives: 0.0
            }
        );
        assert_eq!(labels_per_image(&set, capped.threshold), capped.per_image);
    }

    #[test]
    fn tied_scores_are_one_candidate() {
        // 0.5 (+) and 0.5 (−) come together: OF1 2/(2+1), one wrong label, within the cap.
        let set = LabelledScores::new(&[0.5, 0.5], &[1.0, 0.0], 2).unwrap();
        let chosen = choose_threshold(&set, MAX_FALSE_POSITIVES_PER_IMAGE).unwrap();
        assert_eq!(chosen.threshold, 0.5);
        assert!(close(chosen.overall_f1, 2.0 / 3.0));
        assert!(close(chosen.per_image.false_positives, 1.0));
    }

    #[test]
    fn nan_scores_are_never_predicted_and_undefined_sets_give_none() {
        // The NaN-scored positive stays missed: the best is 0.8 alone, OF1 2·1/(1+2).
        let set = LabelledScores::new(&[0.8, f32::NAN, 0.3], &[1.0, 1.0, 0.0], 3).unwrap();
        let chosen = choose_threshold(&set, MAX_FALSE_POSITIVES_PER_IMAGE).unwrap();
        assert!(close(chosen.overall_f1, 2.0 / 3.0));
        assert!((chosen.threshold - 0.55).abs() < 1e-6);

        let no_positive = LabelledScores::new(&[0.8, 0.3], &[0.0, -1.0], 2).unwrap();
        assert_eq!(choose_threshold(&no_positive, 1.0), None);
        let all_nan = LabelledScores::new(&[f32::NAN], &[1.0], 1).unwrap();
        assert_eq!(choose_threshold(&all_nan, 1.0), None);
        let empty = LabelledScores::new(&[], &[], 3).unwrap();
        assert_eq!(
            labels_per_image(&empty, 0.5),
            LabelsPerImage {
                false_positives: 0.0,
                true_positives: 0.0
            }
        );
    }
}
