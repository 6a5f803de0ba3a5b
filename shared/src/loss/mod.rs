//! Multi-label losses: fully observed BCE, the single-positive-label losses of Cole et al. 2021,
//! "Multi-Label Learning from Single Positive Labels" (AN, AN-LS, WAN, EPR, ROLE), and the
//! asymmetric loss that Query2Label trains with.
//!
//! Every loss takes logits `[batch, classes]` and labels of the same shape and returns a
//! [`LossOutput`] with the per-entry loss matrix as well as the total. In single-positive data a
//! label of 1 is an observed positive and 0 is unobserved; the losses differ exactly in what they
//! make of the unobserved entries.
//!
//! The Cole et al. losses follow the official code (`losses.py` of
//! elijahcole/single-positive-multi-label) to the rounding: probabilities are `sigmoid(logits)`,
//! logarithms are taken as `-log(p + 1e-5)`, and the total is the sum of the loss matrix divided
//! by `batch · classes`, plus the regulariser where there is one.

mod assume_negative;
mod asymmetric;
mod bce;
mod expected_positive;
mod label_estimator;
mod output;
mod role;
mod weak_assume_negative;

use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use burn::tensor::{Bool, Tensor};
use serde::{Deserialize, Serialize};

pub use assume_negative::{AssumeNegativeLoss, AssumeNegativeLossConfig};
pub use asymmetric::{AsymmetricLoss, AsymmetricLossConfig};
pub use bce::{BinaryCrossEntropy, BinaryCrossEntropyConfig};
pub use expected_positive::{
    ExpectedPositiveLoss, ExpectedPositiveLossConfig, expected_positive_regularizer,
};
pub use label_estimator::{LabelEstimator, LabelEstimatorConfig};
pub use output::LossOutput;
pub use role::{RoleLoss, RoleLossConfig};
pub use weak_assume_negative::WeakAssumeNegativeLoss;

/// Added inside every logarithm of the Cole et al. losses (their `LOG_EPSILON`), so that a
/// saturated probability costs a large but finite loss and gradient.
pub const LOG_EPSILON: f64 = 1e-5;

/// `-log(p + LOG_EPSILON)`, the official `neg_log`.
pub(crate) fn neg_log(probabilities: Tensor<2>) -> Tensor<2> {
    probabilities.add_scalar(LOG_EPSILON).log().neg()
}

/// `1 - x`, the probability of the other outcome.
pub(crate) fn complement(x: Tensor<2>) -> Tensor<2> {
    x.neg().add_scalar(1.0)
}

/// Where the labels mark an observed (or, for full labels, a true) positive.
pub(crate) fn positive_mask(labels: Tensor<2>) -> Tensor<2, Bool> {
    labels.equal_elem(1.0)
}

/// The losses by name, as chosen on a command line or in a saved configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinglePositiveLoss {
    /// Binary cross-entropy on fully observed labels (the upper bound, not single-positive).
    Bce,
    /// Label-smoothed binary cross-entropy on fully observed labels.
    #[serde(alias = "bce_ls")]
    BceLs,
    /// Assume negative: unobserved labels are negatives.
    An,
    /// Assume negative with label smoothing: unobserved labels are soft negatives.
    #[serde(alias = "an_ls")]
    AnLs,
    /// Weak assume negative: unobserved labels are negatives weighted `1 / (classes - 1)`.
    Wan,
    /// Expected positive regularisation: unobserved labels are ignored; a regulariser keeps the
    /// expected number of positives.
    Epr,
    /// Regularized online label estimation: unobserved labels are estimated jointly.
    Role,
    /// Asymmetric loss: unobserved labels are focal-weighted, margin-shifted negatives.
    Asl,
}

impl SinglePositiveLoss {
    /// Every loss, in the order of the paper's tables (ASL last).
    pub const ALL: [Self; 8] = [
        Self::Bce,
        Self::BceLs,
        Self::An,
        Self::AnLs,
        Self::Wan,
        Self::Epr,
        Self::Role,
        Self::Asl,
    ];

    /// The canonical name, as parsed and serialised.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bce => "bce",
            Self::BceLs => "bce-ls",
            Self::An => "an",
            Self::AnLs => "an-ls",
            Self::Wan => "wan",
            Self::Epr => "epr",
            Self::Role => "role",
            Self::Asl => "asl",
        }
    }

    /// Whether training with this loss needs a [`LabelEstimator`].
    pub fn needs_label_estimator(self) -> bool {
        self == Self::Role
    }

    /// Whether this loss expects fully observed labels rather than single positives.
    /// Whether the total is a plain sum over images (the official asymmetric loss), rather than
    /// a mean: then a batch's loss is the sum of its parts' losses, not their weighted mean.
    pub fn sums_over_images(self) -> bool {
        self == Self::Asl
    }

    pub fn needs_full_labels(self) -> bool {
        matches!(self, Self::Bce | Self::BceLs)
    }
}

impl fmt::Display for SinglePositiveLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`SinglePositiveLoss::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLoss(pub String);

impl fmt::Display for UnknownLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<_> = SinglePositiveLoss::ALL.iter().map(|l| l.name()).collect();
        write!(
            f,
            "unknown loss {:?}; expected one of {}",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownLoss {}

impl FromStr for SinglePositiveLoss {
    type Err = UnknownLoss;

    /// Case-insensitive; `_` and `-` are interchangeable (`an_ls` is the official spelling).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let normalized = name.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|loss| loss.name() == normalized)
            .ok_or_else(|| UnknownLoss(name.to_string()))
    }
}

/// Any of the losses, chosen by name, with the hyperparameters they may need.
#[derive(Config, Debug)]
pub struct MultiLabelLossConfig {
    /// Which loss.
    pub loss: SinglePositiveLoss,
    /// Label smoothing of `bce-ls` and `an-ls` (the paper's `ls_coef`).
    #[config(default = 0.1)]
    pub label_smoothing: f64,
    /// Expected positives per image for `epr` and `role` (the paper: 1.5 for PASCAL VOC, 2.9
    /// for COCO).
    #[config(default = 1.5)]
    pub expected_num_pos: f64,
    /// Settings of `asl`.
    #[config(default = "AsymmetricLossConfig::new()")]
    pub asymmetric: AsymmetricLossConfig,
}

impl MultiLabelLossConfig {
    /// Computes the chosen loss. `labels`: `[batch, classes]`, full labels for `bce`/`bce-ls`,
    /// observed single positives otherwise. `estimated_labels`: the label estimator's
    /// probabilities for the batch, required by `role` and ignored by the others.
    pub fn forward(
        &self,
        logits: Tensor<2>,
        labels: Tensor<2>,
        estimated_labels: Option<Tensor<2>>,
    ) -> LossOutput {
        let smoothed = |label_smoothing| AssumeNegativeLossConfig { label_smoothing }.init();
        match self.loss {
            SinglePositiveLoss::Bce => BinaryCrossEntropyConfig::new()
                .init()
                .forward(logits, labels),
            SinglePositiveLoss::BceLs => BinaryCrossEntropyConfig::new()
                .with_label_smoothing(self.label_smoothing)
                .init()
                .forward(logits, labels),
            SinglePositiveLoss::An => smoothed(0.0).forward(logits, labels),
            SinglePositiveLoss::AnLs => smoothed(self.label_smoothing).forward(logits, labels),
            SinglePositiveLoss::Wan => WeakAssumeNegativeLoss.forward(logits, labels),
            SinglePositiveLoss::Epr => ExpectedPositiveLossConfig::new(self.expected_num_pos)
                .init()
                .forward(logits, labels),
            SinglePositiveLoss::Role => {
                let estimated_labels =
                    estimated_labels.expect("the role loss needs the label estimator's output");
                RoleLossConfig::new(self.expected_num_pos).init().forward(
                    logits,
                    estimated_labels,
                    labels,
                )
            }
            SinglePositiveLoss::Asl => self.asymmetric.init().forward(logits, labels),
        }
    }
}
