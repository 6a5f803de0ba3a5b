//! Precision, recall and F1 of hard multi-label predictions: the CP, CR, CF1, OP, OR and OF1
//! reported by ML-GCN, Query2Label and most multi-label papers.
//!
//! Predictions come from a score threshold ([`threshold_metrics`]: a class is predicted when its
//! score is `>= threshold`, as in ML-GCN) or from the `k` best classes of each image
//! ([`top_k_metrics`]). For every class c, with `TP_c` correctly predicted images, `Np_c` predicted
//! images and `Ng_c` ground-truth images:
//!
//! - CP = mean over classes of `TP_c / Np_c`, CR = mean over classes of `TP_c / Ng_c`,
//!   CF1 = `2·CP·CR / (CP + CR)`;
//! - OP = `ΣTP / ΣNp`, OR = `ΣTP / ΣNg`, OF1 = `2·OP·OR / (OP + OR)`, with counts pooled over
//!   all classes.
//!
//! Conventions where a ratio is undefined: a class with no predictions has precision 0 (ML-GCN
//! divides by `max(Np, 1)`); an F1 with precision and recall both 0 is 0. The class means (CP and
//! CR) run over the classes with at least one positive image, the same classes as the mAP,
//! because recall is undefined for the others; on a set where every class occurs this is exactly
//! ML-GCN's mean over all classes. Pooled counts (OP, OR) include every class.

use super::LabelledScores;
use super::labelled_scores::label_is_positive;

/// Per-class averaged (C*) and overall (O*) precision, recall and F1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrecisionRecallF1 {
    /// CP: precision per class, averaged over classes.
    pub per_class_precision: f64,
    /// CR: recall per class, averaged over classes.
    pub per_class_recall: f64,
    /// CF1: harmonic mean of CP and CR (not the mean of per-class F1s).
    pub per_class_f1: f64,
    /// OP: precision of all predictions pooled.
    pub overall_precision: f64,
    /// OR: recall of all ground-truth labels pooled.
    pub overall_recall: f64,
    /// OF1: harmonic mean of OP and OR.
    pub overall_f1: f64,
}

/// CP…OF1 when every class whose score is `>= threshold` is predicted.
///
/// The threshold is on the scale of the scores: 0.5 for probabilities, 0 for logits.
/// `None` when no image has any positive label.
pub fn threshold_metrics(set: &LabelledScores<'_>, threshold: f32) -> Option<PrecisionRecallF1> {
    let predicted: Vec<bool> = set.scores().iter().map(|&s| s >= threshold).collect();
    from_predictions(set, &predicted)
}

/// CP…OF1 when the `k` highest-scoring classes of every image are predicted.
///
/// Ties go to the lower class index; NaN scores rank last. `k` larger than the number of classes
/// predicts every class. `None` when no image has any positive label.
pub fn top_k_metrics(set: &LabelledScores<'_>, k: usize) -> Option<PrecisionRecallF1> {
    let n_classes = set.n_classes();
    let mut predicted = vec![false; set.scores().len()];
    for (row_scores, row_predicted) in set
        .scores()
        .chunks_exact(n_classes)
        .zip(predicted.chunks_exact_mut(n_classes))
    {
        let mut classes: Vec<usize> = (0..n_classes).collect();
        classes.sort_by(|&a, &b| descending_score_order(row_scores[a], row_scores[b]));
        for &class in classes.iter().take(k) {
            row_predicted[class] = true;
        }
    }
    from_predictions(set, &predicted)
}

/// Higher scores first, NaN after every number; equal scores compare equal (a stable sort then
/// keeps class order).
fn descending_score_order(a: f32, b: f32) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => b.partial_cmp(&a).expect("neither is NaN"),
    }
}

/// Counts of one class's predictions against its ground truth.
#[derive(Clone, Copy, Debug, Default)]
struct ClassCounts {
    true_positives: usize,
    predicted: usize,
    actual: usize,
}

/// CP…OF1 from a row-major `[n_images, n_classes]` matrix of hard predictions.
fn from_predictions(set: &LabelledScores<'_>, predicted: &[bool]) -> Option<PrecisionRecallF1> {
    let n_classes = set.n_classes();
    let mut counts = vec![ClassCounts::default(); n_classes];
    for (index, (&is_predicted, &label)) in predicted.iter().zip(set.labels()).enumerate() {
        let class_counts = &mut counts[index % n_classes];
        let is_actual = label_is_positive(label);
        class_counts.predicted += usize::from(is_predicted);
        class_counts.actual += usize::from(is_actual);
        class_counts.true_positives += usize::from(is_predicted && is_actual);
    }

    let occurring: Vec<&ClassCounts> = counts.iter().filter(|c| c.actual > 0).collect();
    if occurring.is_empty() {
        return None;
    }
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len() as f64;
    let per_class_precision = mean(
        occurring
            .iter()
            .map(|c| ratio_or_zero(c.true_positives, c.predicted))
            .collect(),
    );
    let per_class_recall = mean(
        occurring
            .iter()
            .map(|c| ratio_or_zero(c.true_positives, c.actual))
            .collect(),
    );

    let total_true_positives = counts.iter().map(|c| c.true_positives).sum();
    let overall_precision = ratio_or_zero(
        total_true_positives,
        counts.iter().map(|c| c.predicted).sum(),
    );
    let overall_recall = ratio_or_zero(total_true_positives, counts.iter().map(|c| c.actual).sum());

    Some(PrecisionRecallF1 {
        per_class_precision,
        per_class_recall,
        per_class_f1: harmonic_mean(per_class_precision, per_class_recall),
        overall_precision,
        overall_recall,
        overall_f1: harmonic_mean(overall_precision, overall_recall),
    })
}

/// `numerator / denominator`, or 0 when nothing was counted.
fn ratio_or_zero(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// F1 of a precision and a recall, 0 when both are 0.
fn harmonic_mean(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_metrics(actual: PrecisionRecallF1, expected: [f64; 6]) {
        let actual_values = [
            actual.per_class_precision,
            actual.per_class_recall,
            actual.per_class_f1,
            actual.overall_precision,
            actual.overall_recall,
            actual.overall_f1,
        ];
        for (name, (a, e)) in ["CP", "CR", "CF1", "OP", "OR", "OF1"]
            .iter()
            .zip(actual_values.iter().zip(expected))
        {
            assert!((a - e).abs() < 1e-12, "{name}: got {a}, expected {e}");
        }
    }

    /// The six expected metrics, F1s written out from the per-class and overall precision and
    /// recall (all non-zero here).
    fn with_f1s(cp: f64, cr: f64, op: f64, or: f64) -> [f64; 6] {
        [
            cp,
            cr,
            2.0 * cp * cr / (cp + cr),
            op,
            or,
            2.0 * op * or / (op + or),
        ]
    }

    // Three images, three classes.
    //   scores               labels
    //   0.9 0.6 0.1          1 0 0
    //   0.2 0.7 0.4          0 1 1
    //   0.8 0.3 0.5          1 0 1
    const SCORES: [f32; 9] = [0.9, 0.6, 0.1, 0.2, 0.7, 0.4, 0.8, 0.3, 0.5];
    const LABELS: [f32; 9] = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0];

    #[test]
    fn threshold_half() {
        // Predicted (>= 0.5): class 0 {0, 2}, class 1 {0, 1}, class 2 {2}.
        // Class 0: TP 2/Np 2/Ng 2; class 1: TP 1/Np 2/Ng 1; class 2: TP 1/Np 1/Ng 2.
        let set = LabelledScores::new(&SCORES, &LABELS, 3).unwrap();
        let cp = (1.0 + 0.5 + 1.0) / 3.0;
        let cr = (1.0 + 1.0 + 0.5) / 3.0;
        let (op, or) = (4.0 / 5.0, 4.0 / 5.0);
        assert_metrics(
            threshold_metrics(&set, 0.5).unwrap(),
            with_f1s(cp, cr, op, or),
        );
    }

    #[test]
    fn top_one() {
        // Top-1: image 0 → class 0, image 1 → class 1, image 2 → class 0: all correct.
        // Class 0: TP 2/Np 2/Ng 2; class 1: TP 1/Np 1/Ng 1; class 2: TP 0/Np 0/Ng 2.
        let set = LabelledScores::new(&SCORES, &LABELS, 3).unwrap();
        let cp = (1.0 + 1.0 + 0.0) / 3.0;
        let cr = (1.0 + 1.0 + 0.0) / 3.0;
        let (op, or) = (3.0 / 3.0, 3.0 / 5.0);
        assert_metrics(top_k_metrics(&set, 1).unwrap(), with_f1s(cp, cr, op, or));
    }

    #[test]
    fn top_k_ties_go_to_the_lower_class_and_k_saturates() {
        let scores = [0.5, 0.5, 0.5];
        let labels = [0.0, 1.0, 0.0];
        let set = LabelledScores::new(&scores, &labels, 3).unwrap();
        // Top-1 picks class 0 (tie → lower index): nothing right.
        let top_one = top_k_metrics(&set, 1).unwrap();
        assert_eq!(top_one.overall_precision, 0.0);
        assert_eq!(top_one.overall_f1, 0.0);
        // k beyond the class count predicts everything.
        let all = top_k_metrics(&set, 10).unwrap();
        assert!((all.overall_precision - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(all.overall_recall, 1.0);
    }

    #[test]
    fn classes_without_positives_leave_the_class_means_but_not_the_pooled_counts() {
        // Class 1 never occurs but is predicted once: it lowers OP, not CP.
        let scores = [0.9, 0.9, 0.1, 0.1];
        let labels = [1.0, 0.0, 1.0, 0.0];
        let set = LabelledScores::new(&scores, &labels, 2).unwrap();
        let metrics = threshold_metrics(&set, 0.5).unwrap();
        assert_eq!(metrics.per_class_precision, 1.0);
        assert_eq!(metrics.per_class_recall, 0.5);
        assert_eq!(metrics.overall_precision, 0.5);
        assert_eq!(
            threshold_metrics(&LabelledScores::new(&scores, &[0.0; 4], 2).unwrap(), 0.5),
            None
        );
    }
}
