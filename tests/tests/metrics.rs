//! Metrics against scikit-learn: per-class AP (scikit-learn's `average_precision_score` and VOC
//! all-points AP) and mAP on the reference vectors, plus hand-computed CP…OF1.

use querylabel::metrics::{
    AveragePrecisionKind, LabelledScores, PrecisionRecallF1, mean_average_precision,
    per_class_average_precision, threshold_metrics, top_k_metrics,
};
use querylabel_tests::{assert_close, json_matrix, reference_vectors};
use serde_json::Value;

/// AP is accumulated in f64; the references are f64 too, so only the comparison in f32 limits us.
const RELATIVE_TOLERANCE: f32 = 1e-6;

fn json_vector(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("expected an array")
        .iter()
        .map(|x| x.as_f64().expect("expected a number") as f32)
        .collect()
}

fn defined(aps: Vec<Option<f64>>, what: &str) -> Vec<f32> {
    aps.into_iter()
        .enumerate()
        .map(|(class, ap)| {
            ap.unwrap_or_else(|| panic!("{what}: class {class} has no positives")) as f32
        })
        .collect()
}

#[test]
fn average_precision_matches_scikit_learn_and_voc_references() {
    let vectors = reference_vectors();
    let cases = vectors["map"].as_array().expect("`map` cases");
    assert!(!cases.is_empty(), "no mAP reference cases");
    for (index, case) in cases.iter().enumerate() {
        let (scores, [n, classes]) = json_matrix(&case["scores"]);
        let (labels, label_shape) = json_matrix(&case["labels"]);
        assert_eq!(label_shape, [n, classes]);
        assert_eq!(case["n"].as_u64(), Some(n as u64));
        assert_eq!(case["classes"].as_u64(), Some(classes as u64));
        let set = LabelledScores::new(&scores, &labels, classes).unwrap();

        let what = format!("case {index} ({n}×{classes}) AP scikit-learn");
        let sklearn = per_class_average_precision(&set, AveragePrecisionKind::NonInterpolated);
        let sklearn = defined(sklearn, &what);
        assert_close(
            &what,
            &sklearn,
            &json_vector(&case["ap_sklearn"]),
            RELATIVE_TOLERANCE,
            1e-3,
        );

        let what = format!("case {index} ({n}×{classes}) AP VOC");
        let voc = per_class_average_precision(&set, AveragePrecisionKind::VocInterpolated);
        let voc = defined(voc, &what);
        assert_close(
            &what,
            &voc,
            &json_vector(&case["ap_voc"]),
            RELATIVE_TOLERANCE,
            1e-3,
        );

        let map = mean_average_precision(&set, AveragePrecisionKind::NonInterpolated)
            .expect("some class has positives") as f32;
        let expected_map = case["map_sklearn"].as_f64().expect("map_sklearn") as f32;
        assert_close(
            &format!("case {index} mAP scikit-learn"),
            &[map],
            &[expected_map],
            RELATIVE_TOLERANCE,
            1e-3,
        );
    }
}

fn as_array(metrics: PrecisionRecallF1) -> [f32; 6] {
    [
        metrics.per_class_precision,
        metrics.per_class_recall,
        metrics.per_class_f1,
        metrics.overall_precision,
        metrics.overall_recall,
        metrics.overall_f1,
    ]
    .map(|x| x as f32)
}

fn f1(precision: f64, recall: f64) -> f64 {
    2.0 * precision * recall / (precision + recall)
}

/// Four images, three classes:
///
/// ```text
///   probabilities          labels
///   0.9  0.2  0.6          1 0 1
///   0.4  0.8  0.7          0 1 0
///   0.55 0.3  0.1          1 1 0
///   0.2  0.1  0.45         0 0 1
/// ```
const SCORES: [f32; 12] = [0.9, 0.2, 0.6, 0.4, 0.8, 0.7, 0.55, 0.3, 0.1, 0.2, 0.1, 0.45];
const LABELS: [f32; 12] = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0];

#[test]
fn precision_recall_f1_at_threshold_by_hand() {
    let set = LabelledScores::new(&SCORES, &LABELS, 3).unwrap();
    // Predicted at >= 0.5: class 0 {0, 2}, class 1 {1}, class 2 {0, 1}.
    // Class 0: TP 2, predicted 2, actual 2 → P 1,   R 1.
    // Class 1: TP 1, predicted 1, actual 2 → P 1,   R 1/2.
    // Class 2: TP 1, predicted 2, actual 2 → P 1/2, R 1/2.
    let cp = (1.0 + 1.0 + 0.5) / 3.0;
    let cr = (1.0 + 0.5 + 0.5) / 3.0;
    let op = 4.0 / 5.0;
    let or = 4.0 / 6.0;
    let expected = [cp, cr, f1(cp, cr), op, or, f1(op, or)].map(|x| x as f32);
    let actual = as_array(threshold_metrics(&set, 0.5).unwrap());
    assert_close(
        "threshold 0.5 CP CR CF1 OP OR OF1",
        &actual,
        &expected,
        1e-6,
        1e-3,
    );
}

#[test]
fn precision_recall_f1_at_top_k_by_hand() {
    let set = LabelledScores::new(&SCORES, &LABELS, 3).unwrap();
    // Top-2 per image: {0, 2}, {1, 2}, {0, 1}, {2, 0}.
    // Class 0: predicted {0, 2, 3}, actual {0, 2} → TP 2, P 2/3, R 1.
    // Class 1: predicted {1, 2},    actual {1, 2} → TP 2, P 1,   R 1.
    // Class 2: predicted {0, 1, 3}, actual {0, 3} → TP 2, P 2/3, R 1.
    let cp = (2.0 / 3.0 + 1.0 + 2.0 / 3.0) / 3.0;
    let cr = 1.0;
    let op = 6.0 / 8.0;
    let or = 6.0 / 6.0;
    let expected = [cp, cr, f1(cp, cr), op, or, f1(op, or)].map(|x| x as f32);
    let actual = as_array(top_k_metrics(&set, 2).unwrap());
    assert_close("top-2 CP CR CF1 OP OR OF1", &actual, &expected, 1e-6, 1e-3);

    // Top-1: {0}, {1}, {0}, {2}: every prediction right.
    // Class 0: TP 2, P 1, R 1; class 1: TP 1, P 1, R 1/2; class 2: TP 1, P 1, R 1/2.
    let cp = 1.0;
    let cr = (1.0 + 0.5 + 0.5) / 3.0;
    let op = 4.0 / 4.0;
    let or = 4.0 / 6.0;
    let expected = [cp, cr, f1(cp, cr), op, or, f1(op, or)].map(|x| x as f32);
    let actual = as_array(top_k_metrics(&set, 1).unwrap());
    assert_close("top-1 CP CR CF1 OP OR OF1", &actual, &expected, 1e-6, 1e-3);
}
