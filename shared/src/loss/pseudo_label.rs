//! Asymmetric pseudo-labelling (APL), the second half of EM+APL (Zhou et al., ECCV 2022): once
//! the warm-up epochs are over, after each epoch's training phase, every class turns its most
//! confidently negative unobserved entries into soft pseudo-negatives whose target is the
//! prediction itself. A fixed share of each class's unobserved entries is taken per epoch, so
//! that by the last epoch `neg_proportion` of them are pseudo-labelled. Positives are never
//! pseudo-labelled, and no pseudo-label is revisited.
//!
//! Pseudo-negatives are stored in the label matrix as `-s` for soft target `s`, which
//! [`EntropyMaximizationLoss`](super::EntropyMaximizationLoss) reads.

use burn::config::Config;

/// Configuration of [`PseudoLabeler`]; the defaults are the official ones for every data set.
#[derive(Config, Debug)]
pub struct PseudoLabelerConfig {
    /// Epochs (1-based) before the first update: the first update follows the training phase
    /// of this epoch (`warmup_epoch`; COCO and PASCAL 5).
    #[config(default = 5)]
    pub warmup_epoch: usize,
    /// Share of each class's unobserved entries that ends up pseudo-labelled.
    #[config(default = 0.9)]
    pub neg_proportion: f64,
}

impl PseudoLabelerConfig {
    /// Whether the settings make sense for a run of `epochs` epochs.
    pub fn check(&self, epochs: usize) -> Result<(), String> {
        if !(self.neg_proportion.is_finite() && (0.0..=1.0).contains(&self.neg_proportion)) {
            return Err(format!(
                "APL's negative proportion must lie in [0, 1], got {}",
                self.neg_proportion
            ));
        }
        if epochs <= self.warmup_epoch {
            return Err(format!(
                "APL pseudo-labels after its warm-up of {} epochs, so a run of {epochs} epochs \
                 would never pseudo-label; train for more epochs or shorten the warm-up",
                self.warmup_epoch
            ));
        }
        Ok(())
    }

    /// The labeller for a training set whose observed labels are `labels` (`[images, classes]`,
    /// row-major) and a run of `epochs` epochs: each class's quota per update is
    /// `int(neg_proportion · unobserved / (epochs − warmup_epoch))`, from its unobserved count
    /// before training (the official `unlabel_num` and `neg_pl_num`).
    pub fn init(&self, labels: &[f32], classes: usize, epochs: usize) -> PseudoLabeler {
        if let Err(problem) = self.check(epochs) {
            panic!("{problem}");
        }
        let mut unobserved = vec![0usize; classes];
        for row in labels.chunks_exact(classes) {
            for (count, &label) in unobserved.iter_mut().zip(row) {
                if label == 0.0 {
                    *count += 1;
                }
            }
        }
        let updates = (epochs - self.warmup_epoch) as f64;
        let per_update = unobserved
            .iter()
            .map(|&count| (self.neg_proportion * count as f64 / updates) as usize)
            .collect();
        PseudoLabeler {
            warmup_epoch: self.warmup_epoch,
            unobserved,
            per_update,
        }
    }
}

/// APL's schedule and its per-class quotas.
#[derive(Debug, Clone)]
pub struct PseudoLabeler {
    warmup_epoch: usize,
    unobserved: Vec<usize>,
    per_update: Vec<usize>,
}

impl PseudoLabeler {
    /// Each class's unobserved entries before training (`unlabel_num`).
    pub fn unobserved_counts(&self) -> &[usize] {
        &self.unobserved
    }

    /// How many entries each class pseudo-labels per update (`neg_pl_num`).
    pub fn quotas(&self) -> &[usize] {
        &self.per_update
    }

    /// Whether the labels are updated after the training phase of `epoch` (1-based).
    pub fn updates_after(&self, epoch: usize) -> bool {
        epoch >= self.warmup_epoch
    }

    /// One update: in every class, the quota of entries that are still unobserved (0) with the
    /// smallest `probabilities` become `-p`. `labels` and `probabilities` are `[images,
    /// classes]`, row-major, over the whole training set. Returns the new pseudo-labels' mask.
    pub fn update(&self, labels: &mut [f32], probabilities: &[f32]) -> Vec<bool> {
        assert_eq!(
            labels.len(),
            probabilities.len(),
            "one prediction per label"
        );
        let classes = self.per_update.len();
        let mut new = vec![false; labels.len()];
        let mut candidates = Vec::new();
        for (class, &quota) in self.per_update.iter().enumerate() {
            candidates.clear();
            candidates.extend(
                (class..labels.len())
                    .step_by(classes)
                    .filter(|&entry| labels[entry] == 0.0),
            );
            candidates.sort_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));
            for &entry in candidates.iter().take(quota) {
                labels[entry] = -probabilities[entry];
                new[entry] = true;
            }
        }
        new
    }
}
