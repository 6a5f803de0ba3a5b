//! Multi-label evaluation metrics on plain score and label matrices.
//!
//! Everything here works on row-major `[n_images, n_classes]` slices wrapped in
//! [`LabelledScores`], so the metrics can run on tensors read back from any backend (or in the
//! browser) without Burn. Sums are accumulated in `f64` so that results match the `float64`
//! references (scikit-learn, NumPy) to about `1e-12`, whatever the set size.
//!
//! Conventions shared by every metric:
//! - a label counts as positive when it is greater than `0.5`; `0`, or `-1` for "unobserved",
//!   counts as negative;
//! - classes without any positive image have no defined average precision or recall; they are
//!   left out of every mean over classes (mAP, CP, CR) instead of counting as 0 or NaN.

pub mod average_precision;
pub mod calibration;
pub mod labelled_scores;
pub mod threshold_metrics;

pub use average_precision::{
    AveragePrecisionKind, average_precision, mean_average_precision, per_class_average_precision,
};
pub use calibration::{
    ChosenThreshold, LabelsPerImage, MAX_FALSE_POSITIVES_PER_IMAGE, choose_threshold,
    labels_per_image,
};
pub use labelled_scores::{LabelledScores, ShapeError};
pub use threshold_metrics::{PrecisionRecallF1, threshold_metrics, top_k_metrics};
