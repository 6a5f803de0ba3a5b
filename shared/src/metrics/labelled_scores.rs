//! The input of every metric: scores and ground-truth labels of an evaluation set.

use std::fmt;

/// Scores and ground-truth labels of `n_images` images over `n_classes` classes, both row-major
/// `[n_images, n_classes]`.
///
/// Scores may be probabilities or logits for the ranking metrics (average precision only
/// compares them); the threshold metrics compare them against a threshold on the same scale.
/// A label is positive when it is greater than `0.5`, so `{0, 1}` multi-hot vectors and
/// `{-1, 0, 1}` partial labels both work (unobserved counts as negative).
#[derive(Clone, Copy, Debug)]
pub struct LabelledScores<'a> {
    scores: &'a [f32],
    labels: &'a [f32],
    n_classes: usize,
}

/// Why a score and label matrix pair cannot be evaluated together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeError {
    /// `n_classes` was zero.
    NoClasses,
    /// The score slice does not hold a whole number of rows.
    RaggedScores { len: usize, n_classes: usize },
    /// Scores and labels have different lengths.
    LabelLengthMismatch { scores: usize, labels: usize },
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::NoClasses => write!(f, "a label matrix needs at least one class"),
            ShapeError::RaggedScores { len, n_classes } => write!(
                f,
                "{len} scores are not a whole number of rows of {n_classes} classes"
            ),
            ShapeError::LabelLengthMismatch { scores, labels } => {
                write!(f, "{scores} scores but {labels} labels")
            }
        }
    }
}

impl std::error::Error for ShapeError {}

impl<'a> LabelledScores<'a> {
    /// Pairs scores with labels, checking that both are `[n_images, n_classes]` matrices.
    pub fn new(scores: &'a [f32], labels: &'a [f32], n_classes: usize) -> Result<Self, ShapeError> {
        if n_classes == 0 {
            return Err(ShapeError::NoClasses);
        }
        if !scores.len().is_multiple_of(n_classes) {
            return Err(ShapeError::RaggedScores {
                len: scores.len(),
                n_classes,
            });
        }
        if scores.len() != labels.len() {
            return Err(ShapeError::LabelLengthMismatch {
                scores: scores.len(),
                labels: labels.len(),
            });
        }
        Ok(Self {
            scores,
            labels,
            n_classes,
        })
    }

    pub fn n_images(&self) -> usize {
        self.scores.len() / self.n_classes
    }

    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    pub fn scores(&self) -> &'a [f32] {
        self.scores
    }

    pub fn labels(&self) -> &'a [f32] {
        self.labels
    }

    /// The score of `image` for `class`.
    pub fn score(&self, image: usize, class: usize) -> f32 {
        self.scores[image * self.n_classes + class]
    }

    /// Whether `image` truly has `class`.
    pub fn is_positive(&self, image: usize, class: usize) -> bool {
        label_is_positive(self.labels[image * self.n_classes + class])
    }

    /// One class's column: scores and ground truth of every image, in image order.
    pub fn class_column(&self, class: usize) -> (Vec<f32>, Vec<bool>) {
        assert!(
            class < self.n_classes,
            "class {class} out of {}",
            self.n_classes
        );
        (0..self.n_images())
            .map(|image| (self.score(image, class), self.is_positive(image, class)))
            .unzip()
    }

    /// Number of images that have `class`.
    pub fn positive_count(&self, class: usize) -> usize {
        (0..self.n_images())
            .filter(|&image| self.is_positive(image, class))
            .count()
    }
}

/// The one rule for reading a label value as ground truth.
pub(crate) fn label_is_positive(label: f32) -> bool {
    label > 0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_mismatched_shapes() {
        assert_eq!(
            LabelledScores::new(&[0.0; 4], &[0.0; 4], 0).unwrap_err(),
            ShapeError::NoClasses
        );
        assert_eq!(
            LabelledScores::new(&[0.0; 5], &[0.0; 5], 2).unwrap_err(),
            ShapeError::RaggedScores {
                len: 5,
                n_classes: 2
            }
        );
        assert_eq!(
            LabelledScores::new(&[0.0; 4], &[0.0; 6], 2).unwrap_err(),
            ShapeError::LabelLengthMismatch {
                scores: 4,
                labels: 6
            }
        );
    }

    #[test]
    fn reads_columns_and_label_convention() {
        let scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let labels = [1.0, 0.0, -1.0, 1.0, 0.0, 1.0];
        let set = LabelledScores::new(&scores, &labels, 2).unwrap();
        assert_eq!(set.n_images(), 3);
        assert_eq!(
            set.class_column(1),
            (vec![0.2, 0.4, 0.6], vec![false, true, true])
        );
        assert_eq!(set.positive_count(0), 1);
    }
}
