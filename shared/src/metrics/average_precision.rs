//! Per-class average precision (AP) and its mean over classes (mAP), in the two definitions
//! that multi-label papers report.
//!
//! - [`AveragePrecisionKind::NonInterpolated`] is scikit-learn's `average_precision_score`:
//!   `AP = Σₙ (Rₙ − Rₙ₋₁) Pₙ` over the distinct score thresholds, highest first. Images with
//!   tied scores form ONE threshold, so their order does not matter, exactly like
//!   `precision_recall_curve`.
//! - [`AveragePrecisionKind::VocInterpolated`] is the all-points VOC AP of the Query2Label and
//!   ASL evaluation code (`voc_ap`): the area under the precision envelope (each precision
//!   replaced by the best precision at any higher recall). Every image is its own rank; tied
//!   scores keep image order (a stable descending sort, NumPy's
//!   `argsort(-scores, kind="stable")`), which is what the reference vectors were computed with.
//!   Query2Label's own code uses NumPy's default, unstable sort, so with ties its numbers can
//!   differ from these in the third decimal; without ties both agree.
//!
//! A class without positive images has no AP (`None`) and is left out of the mAP, whereas
//! scikit-learn's macro average would count it (as 0 with a warning).
//!
//! Ranking: NaN scores rank below every number, and `-0.0` equals `0.0`.

use std::cmp::Ordering;

use super::LabelledScores;

/// Which definition of average precision to compute; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AveragePrecisionKind {
    /// scikit-learn's `average_precision_score`: no interpolation, ties grouped.
    NonInterpolated,
    /// VOC all-points AP over the precision envelope, ties in image order.
    VocInterpolated,
}

/// The AP of one class from its scores and ground truth, or `None` without positives.
pub fn average_precision(
    scores: &[f32],
    is_positive: &[bool],
    kind: AveragePrecisionKind,
) -> Option<f64> {
    assert_eq!(scores.len(), is_positive.len(), "one label per score");
    let positive_count = is_positive.iter().filter(|&&p| p).count();
    if positive_count == 0 {
        return None;
    }
    let ranking = rank_descending(scores);
    Some(match kind {
        AveragePrecisionKind::NonInterpolated => {
            non_interpolated(scores, is_positive, &ranking, positive_count)
        }
        AveragePrecisionKind::VocInterpolated => {
            voc_interpolated(is_positive, &ranking, positive_count)
        }
    })
}

/// AP of every class, `None` for classes without positives.
pub fn per_class_average_precision(
    set: &LabelledScores<'_>,
    kind: AveragePrecisionKind,
) -> Vec<Option<f64>> {
    (0..set.n_classes())
        .map(|class| {
            let (scores, is_positive) = set.class_column(class);
            average_precision(&scores, &is_positive, kind)
        })
        .collect()
}

/// Mean AP over the classes that have at least one positive image; `None` if none has.
pub fn mean_average_precision(set: &LabelledScores<'_>, kind: AveragePrecisionKind) -> Option<f64> {
    let defined: Vec<f64> = per_class_average_precision(set, kind)
        .into_iter()
        .flatten()
        .collect();
    if defined.is_empty() {
        None
    } else {
        Some(defined.iter().sum::<f64>() / defined.len() as f64)
    }
}

/// Image indices by descending score; ties keep image order (the sort is stable).
fn rank_descending(scores: &[f32]) -> Vec<usize> {
    let mut ranking: Vec<usize> = (0..scores.len()).collect();
    ranking.sort_by(|&a, &b| compare_scores(scores[b], scores[a]));
    ranking
}

/// A total order on scores in which NaN is the lowest value and `-0.0 == 0.0`.
fn compare_scores(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(&b).expect("neither is NaN"),
    }
}

/// `Σ (Rₙ − Rₙ₋₁) Pₙ`, one term per group of tied scores (a threshold in scikit-learn's sense).
fn non_interpolated(
    scores: &[f32],
    is_positive: &[bool],
    ranking: &[usize],
    positive_count: usize,
) -> f64 {
    let mut true_positives = 0usize;
    let mut previous_recall = 0.0f64;
    let mut ap = 0.0f64;
    for (rank, &image) in ranking.iter().enumerate() {
        if is_positive[image] {
            true_positives += 1;
        }
        let closes_threshold = ranking
            .get(rank + 1)
            .is_none_or(|&next| compare_scores(scores[next], scores[image]) != Ordering::Equal);
        if closes_threshold {
            let recall = true_positives as f64 / positive_count as f64;
            let precision = true_positives as f64 / (rank + 1) as f64;
            ap += (recall - previous_recall) * precision;
            previous_recall = recall;
        }
    }
    ap
}

/// Area under the precision envelope: every positive adds `1/positive_count` of recall at the
/// best precision reached at its rank or any later one.
fn voc_interpolated(is_positive: &[bool], ranking: &[usize], positive_count: usize) -> f64 {
    let mut true_positives = 0usize;
    let precision_at_rank: Vec<f64> = ranking
        .iter()
        .enumerate()
        .map(|(rank, &image)| {
            if is_positive[image] {
                true_positives += 1;
            }
            true_positives as f64 / (rank + 1) as f64
        })
        .collect();
    let mut envelope = 0.0f64;
    let mut ap = 0.0f64;
    for (rank, &image) in ranking.iter().enumerate().rev() {
        envelope = envelope.max(precision_at_rank[rank]);
        if is_positive[image] {
            ap += envelope;
        }
    }
    ap / positive_count as f64
}

#[cfg(test)]
mod tests {
    use super::AveragePrecisionKind::{NonInterpolated, VocInterpolated};
    use super::*;

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("AP defined");
        assert!(
            (actual - expected).abs() < 1e-12,
            "got {actual}, expected {expected}"
        );
    }

    #[test]
    fn perfect_and_worst_rankings() {
        let positives = [true, true, false, false];
        close(
            average_precision(&[0.9, 0.8, 0.2, 0.1], &positives, NonInterpolated),
            1.0,
        );
        close(
            average_precision(&[0.9, 0.8, 0.2, 0.1], &positives, VocInterpolated),
            1.0,
        );
        // Positives ranked 3rd and 4th: precisions 1/3 and 2/4.
        let worst = [0.1, 0.2, 0.8, 0.9];
        close(
            average_precision(&worst, &positives, NonInterpolated),
            (1.0 / 3.0 + 0.5) / 2.0,
        );
        close(average_precision(&worst, &positives, VocInterpolated), 0.5);
    }

    #[test]
    fn ties_form_one_threshold_for_sklearn_and_keep_image_order_for_voc() {
        // Ranking: image 0 (0.9, negative), then images 1 and 2 tied at 0.5 (positive, negative),
        // then image 3 (0.1, positive).
        let scores = [0.9, 0.5, 0.5, 0.1];
        let positives = [false, true, false, true];
        // scikit-learn: thresholds 0.9 (R 0, P 0), 0.5 (R 1/2, P 1/3), 0.1 (R 1, P 2/4).
        close(
            average_precision(&scores, &positives, NonInterpolated),
            0.5 / 3.0 + 0.5 * 0.5,
        );
        // VOC, image order within the tie: precisions 0, 1/2, 1/3, 2/4; envelope at the
        // positives (ranks 2 and 4) is 1/2 and 1/2.
        close(average_precision(&scores, &positives, VocInterpolated), 0.5);
        // Reordering the labels inside the tie leaves scikit-learn's AP unchanged.
        close(
            average_precision(&scores, &[false, false, true, true], NonInterpolated),
            0.5 / 3.0 + 0.5 * 0.5,
        );
    }

    #[test]
    fn voc_tie_order_matters() {
        // Tied pair (negative, positive) vs (positive, negative) at the top.
        let scores = [0.5, 0.5];
        close(
            average_precision(&scores, &[false, true], VocInterpolated),
            0.5,
        );
        close(
            average_precision(&scores, &[true, false], VocInterpolated),
            1.0,
        );
        close(
            average_precision(&scores, &[false, true], NonInterpolated),
            0.5,
        );
        close(
            average_precision(&scores, &[true, false], NonInterpolated),
            0.5,
        );
    }

    #[test]
    fn classes_without_positives_are_skipped() {
        assert_eq!(
            average_precision(&[0.3, 0.7], &[false, false], NonInterpolated),
            None
        );
        // Class 0 and 2: ranked perfectly; class 1: no positives.
        let scores = [0.9, 0.1, 0.2, 0.1, 0.5, 0.8];
        let labels = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        let set = LabelledScores::new(&scores, &labels, 3).unwrap();
        let per_class = per_class_average_precision(&set, NonInterpolated);
        assert_eq!(per_class, vec![Some(1.0), None, Some(1.0)]);
        close(mean_average_precision(&set, VocInterpolated), 1.0);
        let no_positives = LabelledScores::new(&scores, &[0.0; 6], 3).unwrap();
        assert_eq!(mean_average_precision(&no_positives, NonInterpolated), None);
    }

    #[test]
    fn nan_scores_rank_last() {
        let scores = [f32::NAN, 0.1, 0.2];
        let positives = [false, true, true];
        close(average_precision(&scores, &positives, NonInterpolated), 1.0);
        close(average_precision(&scores, &positives, VocInterpolated), 1.0);
    }
}
