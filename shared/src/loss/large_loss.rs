//! "Large Loss Matters in Weakly Supervised Multi-Label Classification" (Kim et al., CVPR 2022):
//! train as AN, but after the first epoch treat the unobserved entries with the largest loss as
//! probable false negatives. Memorising a missed positive is slow, so its assumed-negative loss
//! stays large; a growing share of the largest ones is rejected (LL-R), or has its label flipped
//! for this batch (LL-Ct) or for good (LL-Cp).
//!
//! The rejection rate follows the official `clean_rate` schedule, including its float
//! arithmetic: it starts at 1 and loses `delta_rel` by repeated subtraction after every epoch,
//! so that `k` rounds as the released code rounds it.

use burn::config::Config;
use burn::tensor::activation::softplus;
use burn::tensor::{Bool, Tensor};

use super::LossOutput;

/// Which of the three treatments the large losses get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LargeLossScheme {
    /// LL-R: the selected entries get no loss.
    Reject,
    /// LL-Ct: the selected entries are trained towards the flipped label in this batch only.
    TemporaryCorrection,
    /// LL-Cp, as the paper describes it: a constant share `delta_rel` of each batch is flipped
    /// in the loss, and the entries above the threshold become observed positives for the rest
    /// of training. (The released code's identity test `is 'LL-Cp'` never passes from the command
    /// line, so what it runs as LL-Cp is LL-Ct.)
    PermanentCorrection,
}

/// Configuration of [`LargeLoss`].
#[derive(Config, Debug)]
pub struct LargeLossConfig {
    /// Growth of the rejection rate per epoch, in percent of a batch's entries: the official
    /// `--delta_rel`, which is required there and which its README suggests between 0.1 and
    /// 0.5. 0.2 is the middle of that range.
    #[config(default = 0.2)]
    pub delta_rel_percent: f64,
}

impl LargeLossConfig {
    /// Whether the settings make sense, with a message naming the bad one.
    pub fn check(&self) -> Result<(), String> {
        if !(self.delta_rel_percent.is_finite() && (0.0..=100.0).contains(&self.delta_rel_percent))
        {
            return Err(format!(
                "the large-loss rate delta_rel must lie in [0, 100] percent, got {}",
                self.delta_rel_percent
            ));
        }
        Ok(())
    }

    /// The loss with this rate and treatment.
    pub fn init(&self, scheme: LargeLossScheme) -> LargeLoss {
        if let Err(problem) = self.check() {
            panic!("{problem}");
        }
        LargeLoss {
            scheme,
            delta_rel: self.delta_rel_percent / 100.0,
        }
    }
}

/// LL-R, LL-Ct or LL-Cp.
#[derive(Debug, Clone, Copy)]
pub struct LargeLoss {
    scheme: LargeLossScheme,
    /// The rate as a fraction (the official `delta_rel` after `set_follow_up_configs`).
    delta_rel: f64,
}

/// Everything one batch of [`LargeLoss`] decided, beside the loss itself.
#[derive(Debug, Clone)]
pub struct LargeLossOutput {
    pub output: LossOutput,
    /// The official `clean_rate` of this epoch.
    pub clean_rate: f64,
    /// How many entries were to be selected; `None` in the first epoch, which is plain AN.
    pub selected: Option<usize>,
    /// The `selected`-th largest assumed-negative loss of the batch.
    pub threshold: Option<f64>,
    /// Entries whose loss was rejected or corrected: every one at or above the threshold.
    pub modified: Option<Tensor<2, Bool>>,
    /// Entries strictly above the threshold: LL-Cp's permanent corrections.
    pub corrections: Option<Tensor<2, Bool>>,
}

impl LargeLoss {
    /// The official `clean_rate` in `epoch` (1-based): 1, less `delta_rel` once per finished
    /// epoch, subtracted one epoch at a time as the released code does.
    pub fn clean_rate(&self, epoch: usize) -> f64 {
        let mut clean_rate = 1.0;
        for _ in 1..epoch {
            clean_rate -= self.delta_rel;
        }
        clean_rate
    }

    /// How many of a batch's `entries` are selected in `epoch`; `None` while nothing is.
    pub fn selected_count(&self, entries: usize, epoch: usize) -> Option<usize> {
        let clean_rate = self.clean_rate(epoch);
        if clean_rate == 1.0 {
            return None;
        }
        let rate = match self.scheme {
            LargeLossScheme::PermanentCorrection => self.delta_rel,
            LargeLossScheme::Reject | LargeLossScheme::TemporaryCorrection => 1.0 - clean_rate,
        };
        Some(((entries as f64 * rate).ceil() as usize).min(entries))
    }

    /// `observed_labels`: 1 for an observed positive (single positives, and for LL-Cp the
    /// corrections so far), 0 for unobserved. The total is the mean over all entries.
    pub fn forward(
        &self,
        logits: Tensor<2>,
        observed_labels: Tensor<2>,
        epoch: usize,
    ) -> LossOutput {
        let details = self.forward_detailed(logits, observed_labels, epoch);
        LossOutput {
            corrections: match self.scheme {
                LargeLossScheme::PermanentCorrection => details.corrections,
                _ => None,
            },
            ..details.output
        }
    }

    /// [`forward`](Self::forward) with the selection it made.
    pub fn forward_detailed(
        &self,
        logits: Tensor<2>,
        observed_labels: Tensor<2>,
        epoch: usize,
    ) -> LargeLossOutput {
        let [batch, classes] = logits.dims();
        let positives = observed_labels.clone().greater_elem(0.0);
        // BCE with logits towards max(label, 0), written per branch so that a confident
        // positive keeps its small loss instead of cancelling to zero.
        let towards_zero = softplus(logits.clone(), 1.0);
        let towards_one = softplus(logits.neg(), 1.0);
        let loss = towards_zero
            .clone()
            .mask_where(positives.clone(), towards_one.clone());
        let clean_rate = self.clean_rate(epoch);
        let Some(selected) = self.selected_count(batch * classes, epoch) else {
            return LargeLossOutput {
                output: LossOutput::mean_over_entries(loss, None),
                clean_rate,
                selected: None,
                threshold: None,
                modified: None,
                corrections: None,
            };
        };

        let unobserved = observed_labels.equal_elem(0.0);
        let unobserved_loss = loss.clone().detach().mask_fill(unobserved.bool_not(), 0.0);
        let threshold = kth_largest(&unobserved_loss, selected);
        let modified = unobserved_loss.clone().greater_equal_elem(threshold);
        let corrections = unobserved_loss.greater_elem(threshold);
        let final_loss = match self.scheme {
            LargeLossScheme::Reject => loss.mask_fill(modified.clone(), 0.0),
            LargeLossScheme::TemporaryCorrection | LargeLossScheme::PermanentCorrection => {
                let flipped = towards_one.mask_where(positives, towards_zero);
                loss.mask_where(modified.clone(), flipped)
            }
        };
        LargeLossOutput {
            output: LossOutput::mean_over_entries(final_loss, None),
            clean_rate,
            selected: Some(selected),
            threshold: Some(threshold),
            modified: Some(modified),
            corrections: Some(corrections),
        }
    }
}

/// The `k`-th largest entry (1-based; `k` ≥ 1) of a matrix, over all its entries, exactly (any
/// float dtype converts to f64 without rounding).
fn kth_largest(values: &Tensor<2>, k: usize) -> f64 {
    let mut entries = values
        .clone()
        .into_data()
        .try_into_vec_as::<f64>()
        .expect("float losses");
    let k = k.clamp(1, entries.len());
    let (_, kth, _) = entries.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    *kth
}

/// LL-Cp's write-back: the `corrections` of a batch (`[rows.len(), classes]`, row-major) become
/// observed positives in the persistent `[images, classes]` label matrix `labels`, at the
/// images `rows`. Returns how many labels it set.
pub fn write_back_corrections(
    labels: &mut [f32],
    classes: usize,
    rows: &[usize],
    corrections: &[bool],
) -> usize {
    assert_eq!(
        corrections.len(),
        rows.len() * classes,
        "one correction flag per batch entry"
    );
    let mut written = 0;
    for (position, &row) in rows.iter().enumerate() {
        let flags = &corrections[position * classes..(position + 1) * classes];
        for (class, _) in flags.iter().enumerate().filter(|(_, flag)| **flag) {
            let label = &mut labels[row * classes + class];
            if *label != 1.0 {
                *label = 1.0;
                written += 1;
            }
        }
    }
    written
}
