//! Multi-label losses: fully observed BCE, the single-positive-label losses of Cole et al. 2021,
//! "Multi-Label Learning from Single Positive Labels" (AN, AN-LS, WAN, EPR, ROLE), the methods
//! that came after it (LL-R, LL-Ct and LL-Cp; EM and EM+APL; GR; Hill and SPLC), and the
//! asymmetric loss that Query2Label trains with.
//!
//! Every loss takes logits `[batch, classes]` and labels of the same shape and returns a
//! [`LossOutput`] with the per-entry loss matrix as well as the total. In single-positive data a
//! label of 1 is an observed positive and 0 is unobserved; the losses differ exactly in what they
//! make of the unobserved entries. Some depend on the epoch ([`LossProgress`]), and two change
//! the training labels as they go: LL-Cp turns entries into positives, and APL into soft
//! pseudo-negatives stored as `-s`.
//!
//! The Cole et al. losses follow the official code (`losses.py` of
//! elijahcole/single-positive-multi-label) to the rounding: probabilities are `sigmoid(logits)`,
//! logarithms are taken as `-log(p + 1e-5)`, and the total is the sum of the loss matrix divided
//! by `batch · classes`, plus the regulariser where there is one. The later losses follow their
//! own official code, each file saying where it differs.

mod assume_negative;
mod asymmetric;
mod bce;
mod entropy_maximization;
mod expected_positive;
mod generalized_robust;
mod hill;
mod label_estimator;
mod large_loss;
mod output;
pub mod pseudo_label;
mod role;
mod self_paced_correction;
mod weak_assume_negative;

use std::fmt;
use std::str::FromStr;

use burn::config::Config;
use burn::tensor::{Bool, Tensor};
use serde::{Deserialize, Serialize};

pub use assume_negative::{AssumeNegativeLoss, AssumeNegativeLossConfig};
pub use asymmetric::{AsymmetricLoss, AsymmetricLossConfig};
pub use bce::{BinaryCrossEntropy, BinaryCrossEntropyConfig};
pub use entropy_maximization::{EntropyMaximizationLoss, EntropyMaximizationLossConfig};
pub use expected_positive::{
    ExpectedPositiveLoss, ExpectedPositiveLossConfig, expected_positive_regularizer,
};
pub use generalized_robust::{
    GeneralizedRobustLoss, GeneralizedRobustLossConfig, GeneralizedRobustOutput,
    GeneralizedRobustWeights,
};
pub use hill::{HillLoss, HillLossConfig};
pub use label_estimator::{LabelEstimator, LabelEstimatorConfig};
pub use large_loss::{
    LargeLoss, LargeLossConfig, LargeLossOutput, LargeLossScheme, write_back_corrections,
};
pub use output::LossOutput;
pub use pseudo_label::{PseudoLabeler, PseudoLabelerConfig};
pub use role::{RoleLoss, RoleLossConfig};
pub use self_paced_correction::{
    SelfPacedCorrectionLoss, SelfPacedCorrectionLossConfig, SelfPacedCorrectionOutput,
};
pub use weak_assume_negative::WeakAssumeNegativeLoss;

/// Added inside every logarithm of the Cole et al. losses (their `LOG_EPSILON`), so that a
/// saturated probability costs a large but finite loss and gradient.
pub const LOG_EPSILON: f64 = 1e-5;

/// The first of a loss's named `settings` that is not `allowed`, as "`loss`'s NAME must be
/// `rule`, got VALUE": the one range check of the later losses' Configs.
pub(crate) fn check_settings(
    loss: &str,
    rule: &str,
    settings: &[(&str, f64)],
    allowed: impl Fn(f64) -> bool,
) -> Result<(), String> {
    match settings.iter().find(|(_, value)| !allowed(*value)) {
        Some((name, value)) => Err(format!("{loss}'s {name} must be {rule}, got {value}")),
        None => Ok(()),
    }
}

/// A finite value of at least zero.
pub(crate) fn finite_non_negative(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

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

/// Which loss, by name, as chosen on a command line or in a saved configuration: the
/// single-positive losses and the full-label ones (BCE, BCE-LS, ASL) alike.
/// [`MultiLabelLossConfig`] turns one into the loss itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
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
    /// Large Loss Matters, rejection: the largest assumed-negative losses are dropped.
    #[serde(alias = "ll_r")]
    LlR,
    /// Large Loss Matters, temporary correction: they are flipped to positive in the batch.
    #[serde(alias = "ll_ct")]
    LlCt,
    /// Large Loss Matters, permanent correction, as the paper describes it: the largest become
    /// observed positives for good.
    #[serde(alias = "ll_cp")]
    LlCp,
    /// Entropy maximisation: unobserved labels are kept uncertain.
    Em,
    /// Entropy maximisation with asymmetric pseudo-labelling of confident negatives.
    #[serde(alias = "em_apl")]
    EmApl,
    /// Generalized robust loss: unobserved labels get a scheduled blend of robust losses.
    Gr,
    /// Hill loss: a hill-shaped negative loss that spares likely missed positives.
    Hill,
    /// Self-paced loss correction: confident unobserved labels count as positives.
    Splc,
}

impl LossKind {
    /// Every loss: the MLSPL paper's in the order of its tables, ASL, then the later methods
    /// in order of publication.
    pub const ALL: [Self; 16] = [
        Self::Bce,
        Self::BceLs,
        Self::An,
        Self::AnLs,
        Self::Wan,
        Self::Epr,
        Self::Role,
        Self::Asl,
        Self::Hill,
        Self::Splc,
        Self::LlR,
        Self::LlCt,
        Self::LlCp,
        Self::Em,
        Self::EmApl,
        Self::Gr,
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
            Self::LlR => "ll-r",
            Self::LlCt => "ll-ct",
            Self::LlCp => "ll-cp",
            Self::Em => "em",
            Self::EmApl => "em-apl",
            Self::Gr => "gr",
            Self::Hill => "hill",
            Self::Splc => "splc",
        }
    }

    /// Whether what the loss asks changes from epoch to epoch (a schedule, or labels that
    /// training changes), so that a rising training loss says nothing about divergence.
    pub fn changes_over_epochs(self) -> bool {
        matches!(
            self,
            Self::LlR | Self::LlCt | Self::LlCp | Self::EmApl | Self::Gr | Self::Splc
        )
    }

    /// Whether training changes the training labels as it goes (LL-Cp's corrections, APL's
    /// pseudo-negatives), so that they are part of a checkpoint.
    pub fn updates_labels(self) -> bool {
        matches!(self, Self::LlCp | Self::EmApl)
    }

    /// Whether this loss expects fully observed labels rather than single positives.
    pub fn needs_full_labels(self) -> bool {
        matches!(self, Self::Bce | Self::BceLs)
    }
}

impl fmt::Display for LossKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`LossKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLoss(pub String);

impl fmt::Display for UnknownLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<_> = LossKind::ALL.iter().map(|l| l.name()).collect();
        write!(
            f,
            "unknown loss {:?}; expected one of {}",
            self.0,
            known.join(", ")
        )
    }
}

impl std::error::Error for UnknownLoss {}

impl FromStr for LossKind {
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

/// Where training stands, for the losses whose behaviour follows a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossProgress {
    /// The current epoch, 1-based.
    pub epoch: usize,
    /// Epochs in the whole run.
    pub epochs: usize,
}

/// Expected positives per image of EPR and ROLE unless told otherwise: the paper's value for
/// COCO, which this project trains on (its value for PASCAL VOC is 1.5).
pub const DEFAULT_EXPECTED_POSITIVES: f64 = 2.9;

/// Any of the losses, chosen by name, with the hyperparameters they may need. Each family's
/// defaults live in its own Config.
#[derive(Config, Debug)]
pub struct MultiLabelLossConfig {
    /// Which loss.
    pub loss: LossKind,
    /// Label smoothing of `bce-ls` and `an-ls` (the paper's `ls_coef`).
    #[config(default = 0.1)]
    pub label_smoothing: f64,
    /// Expected positives per image for `epr` and `role`.
    #[config(default = "DEFAULT_EXPECTED_POSITIVES")]
    pub expected_num_pos: f64,
    /// Settings of `asl`.
    #[config(default = "AsymmetricLossConfig::new()")]
    pub asymmetric: AsymmetricLossConfig,
    /// Settings of `ll-r`, `ll-ct` and `ll-cp`.
    #[config(default = "LargeLossConfig::new()")]
    pub large_loss: LargeLossConfig,
    /// Settings of `em` and `em-apl`.
    #[config(default = "EntropyMaximizationLossConfig::new()")]
    pub entropy_maximization: EntropyMaximizationLossConfig,
    /// Settings of `gr`.
    #[config(default = "GeneralizedRobustLossConfig::new()")]
    pub generalized_robust: GeneralizedRobustLossConfig,
    /// Settings of `hill`.
    #[config(default = "HillLossConfig::new()")]
    pub hill: HillLossConfig,
    /// Settings of `splc`.
    #[config(default = "SelfPacedCorrectionLossConfig::new()")]
    pub self_paced_correction: SelfPacedCorrectionLossConfig,
}

impl MultiLabelLossConfig {
    /// Whether the chosen loss's settings make sense, with a message naming the bad one.
    pub fn check(&self) -> Result<(), String> {
        use LossKind::*;
        match self.loss {
            BceLs | AnLs if !(0.0..=1.0).contains(&self.label_smoothing) => Err(format!(
                "label smoothing must lie in [0, 1], got {}",
                self.label_smoothing
            )),
            Epr | Role if !(self.expected_num_pos.is_finite() && self.expected_num_pos > 0.0) => {
                Err(format!(
                    "the expected number of positives per image must be positive, got {}",
                    self.expected_num_pos
                ))
            }
            LlR | LlCt | LlCp => self.large_loss.check(),
            Em | EmApl => self.entropy_maximization.check(),
            Gr => self.generalized_robust.check(),
            Hill => self.hill.check(),
            Splc => self.self_paced_correction.check(),
            _ => Ok(()),
        }
    }

    /// The chosen loss, its settings checked once here.
    pub fn init(&self) -> MultiLabelLoss {
        if let Err(problem) = self.check() {
            panic!("{problem}");
        }
        use LossKind as L;
        let assume_negative = |label_smoothing| AssumeNegativeLossConfig { label_smoothing }.init();
        let large_loss = |scheme| MultiLabelLoss::LargeLoss(self.large_loss.init(scheme));
        match self.loss {
            L::Bce => MultiLabelLoss::Bce(BinaryCrossEntropyConfig::new().init()),
            L::BceLs => MultiLabelLoss::Bce(
                BinaryCrossEntropyConfig::new()
                    .with_label_smoothing(self.label_smoothing)
                    .init(),
            ),
            L::An => MultiLabelLoss::AssumeNegative(assume_negative(0.0)),
            L::AnLs => MultiLabelLoss::AssumeNegative(assume_negative(self.label_smoothing)),
            L::Wan => MultiLabelLoss::Wan(WeakAssumeNegativeLoss),
            L::Epr => {
                MultiLabelLoss::Epr(ExpectedPositiveLossConfig::new(self.expected_num_pos).init())
            }
            L::Role => MultiLabelLoss::Role(RoleLossConfig::new(self.expected_num_pos).init()),
            L::Asl => MultiLabelLoss::Asl(self.asymmetric.init()),
            L::LlR => large_loss(LargeLossScheme::Reject),
            L::LlCt => large_loss(LargeLossScheme::TemporaryCorrection),
            L::LlCp => large_loss(LargeLossScheme::PermanentCorrection),
            L::Em | L::EmApl => {
                MultiLabelLoss::EntropyMaximization(self.entropy_maximization.init())
            }
            L::Gr => MultiLabelLoss::GeneralizedRobust(self.generalized_robust.init()),
            L::Hill => MultiLabelLoss::Hill(self.hill.init()),
            L::Splc => MultiLabelLoss::SelfPacedCorrection(self.self_paced_correction.init()),
        }
    }
}

/// A loss built by [`MultiLabelLossConfig::init`].
#[derive(Debug, Clone)]
pub enum MultiLabelLoss {
    Bce(BinaryCrossEntropy),
    AssumeNegative(AssumeNegativeLoss),
    Wan(WeakAssumeNegativeLoss),
    Epr(ExpectedPositiveLoss),
    Role(RoleLoss),
    Asl(AsymmetricLoss),
    LargeLoss(LargeLoss),
    EntropyMaximization(EntropyMaximizationLoss),
    GeneralizedRobust(GeneralizedRobustLoss),
    Hill(HillLoss),
    SelfPacedCorrection(SelfPacedCorrectionLoss),
}

impl MultiLabelLoss {
    /// Whether training with this loss needs a [`LabelEstimator`] (ROLE's), whose output
    /// [`forward`](Self::forward) then takes.
    pub fn needs_label_estimator(&self) -> bool {
        matches!(self, Self::Role(_))
    }

    /// Whether the total is a plain sum over images (the official asymmetric, Hill and SPLC
    /// losses), rather than a mean: then a batch's loss is the sum of its parts' losses, not
    /// their weighted mean.
    pub fn sums_over_images(&self) -> bool {
        matches!(
            self,
            Self::Asl(_) | Self::Hill(_) | Self::SelfPacedCorrection(_)
        )
    }

    /// Computes the loss. `labels`: `[batch, classes]`, full labels for `bce`/`bce-ls`, the
    /// training labels otherwise (observed positives, and what LL-Cp and APL made of them).
    /// `estimated_labels`: the label estimator's probabilities for the batch, required by
    /// `role` and ignored by the others. `progress`: the epoch, for the scheduled losses.
    pub fn forward(
        &self,
        logits: Tensor<2>,
        labels: Tensor<2>,
        estimated_labels: Option<Tensor<2>>,
        progress: LossProgress,
    ) -> LossOutput {
        assert_eq!(
            logits.dims(),
            labels.dims(),
            "logits and labels disagree on [batch, classes]"
        );
        match self {
            Self::Bce(loss) => loss.forward(logits, labels),
            Self::AssumeNegative(loss) => loss.forward(logits, labels),
            Self::Wan(loss) => loss.forward(logits, labels),
            Self::Epr(loss) => loss.forward(logits, labels),
            Self::Role(loss) => {
                let estimated_labels =
                    estimated_labels.expect("the role loss needs the label estimator's output");
                loss.forward(logits, estimated_labels, labels)
            }
            Self::Asl(loss) => loss.forward(logits, labels),
            Self::LargeLoss(loss) => loss.forward(logits, labels, progress.epoch),
            Self::EntropyMaximization(loss) => loss.forward(logits, labels),
            Self::GeneralizedRobust(loss) => {
                loss.forward(logits, labels, progress.epoch, progress.epochs)
            }
            Self::Hill(loss) => loss.forward(logits, labels),
            Self::SelfPacedCorrection(loss) => loss.forward(logits, labels, progress.epoch),
        }
    }
}
