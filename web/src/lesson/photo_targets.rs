//! The lesson's targets table for one photo: every loss's target and weight for each label,
//! when the photo keeps one of its true labels. Each loss is read at the single-positive head's
//! prediction for the photo (see [`super::targets`]).

use querylabel::loss::{DEFAULT_EXPECTED_POSITIVES, LossKind};

use super::targets::{EntryTarget, logits_of, loss_targets, role_estimate};

/// The losses the table shows, in its column order.
pub const TARGET_LOSSES: [LossKind; 12] = [
    LossKind::Bce,
    LossKind::An,
    LossKind::AnLs,
    LossKind::Wan,
    LossKind::Epr,
    LossKind::Role,
    LossKind::Hill,
    LossKind::Splc,
    LossKind::LlR,
    LossKind::LlCt,
    LossKind::Em,
    LossKind::Gr,
];

/// Adam steps of ROLE's label estimate for the one photo: enough for it to settle against the
/// prediction (the estimate moves by under 1e-3 per step by then).
pub const ROLE_ESTIMATE_STEPS: usize = 200;

/// Probabilities are kept this far from 0 and 1 when turned back into logits.
const PROBABILITY_FLOOR: f32 = 1e-6;

/// Every loss's target and weight for each label of one photo.
#[derive(Clone, Debug)]
pub struct PhotoTargets {
    classes: usize,
    /// `[loss][label]`, losses in [`TARGET_LOSSES`] order.
    entries: Vec<EntryTarget>,
}

impl PhotoTargets {
    /// What `loss` (an index into [`TARGET_LOSSES`]) asks of label `label`.
    pub fn entry(&self, loss: usize, label: usize) -> Option<EntryTarget> {
        (label < self.classes)
            .then(|| self.entries.get(loss * self.classes + label).copied())
            .flatten()
    }
}

/// The targets for a photo with full labels `labels` (0/1 per class) of which only `kept`
/// stays observed, read at `probabilities`, the single-positive head's prediction for it. EPR
/// and ROLE expect the trainer's default number of positives per photo.
pub fn photo_targets(
    labels: &[f32],
    kept: usize,
    probabilities: &[f32],
) -> Result<PhotoTargets, String> {
    let classes = labels.len();
    if kept >= classes || probabilities.len() != classes {
        return Err(format!(
            "{classes} labels, kept label {kept} and {} probabilities disagree",
            probabilities.len()
        ));
    }
    let mut observed = vec![0.0; classes];
    observed[kept] = 1.0;
    let expected_positives = DEFAULT_EXPECTED_POSITIVES;
    let estimate = role_estimate(
        &observed,
        probabilities,
        expected_positives,
        ROLE_ESTIMATE_STEPS,
    );
    let logits = logits_of(probabilities, PROBABILITY_FLOOR);
    let entries = TARGET_LOSSES
        .iter()
        .flat_map(|&loss| {
            let training_labels = if loss.needs_full_labels() {
                labels
            } else {
                &observed
            };
            // Only ROLE reads its estimate; the other losses ignore it.
            loss_targets(
                loss,
                expected_positives,
                training_labels,
                &logits,
                Some(&estimate),
            )
        })
        .collect();
    Ok(PhotoTargets { classes, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(loss: LossKind) -> usize {
        TARGET_LOSSES.iter().position(|&l| l == loss).unwrap()
    }

    #[test]
    fn a_true_label_left_unobserved_is_one_for_full_labels_zero_for_an_and_ignored_by_epr() {
        // Labels 0 and 1 are present; the photo keeps label 0.
        let labels = [1.0, 1.0, 0.0, 0.0];
        let probabilities = [0.8, 0.6, 0.2, 0.1];
        let targets = photo_targets(&labels, 0, &probabilities).unwrap();
        let target = |loss, label| targets.entry(column(loss), label).unwrap().target;
        assert_eq!(target(LossKind::Bce, 1), Some(1.0));
        assert_eq!(target(LossKind::An, 1), Some(0.0));
        assert_eq!(target(LossKind::Epr, 1), None);
        // The kept positive is pulled to 1 by every loss that trains on it.
        for loss in [LossKind::An, LossKind::Wan, LossKind::Hill] {
            assert_eq!(target(loss, 0), Some(1.0), "{loss}");
        }
        assert!(targets.entry(TARGET_LOSSES.len(), 0).is_none());
        assert!(targets.entry(0, labels.len()).is_none());
    }

    #[test]
    fn disagreeing_inputs_are_an_error() {
        assert!(photo_targets(&[1.0, 0.0], 2, &[0.5, 0.5]).is_err());
        assert!(photo_targets(&[1.0, 0.0], 0, &[0.5]).is_err());
    }
}
