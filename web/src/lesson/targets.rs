//! What each loss asks the network to predict for every label of one photo, read off the
//! losses' own code rather than restated: the target of an entry is the probability at which
//! the gradient of its term with respect to the logit changes sign from pulling up to pushing
//! down, and its weight is the gradient's slope there, in units of a plain cross-entropy term
//! (for `w · CE(sigmoid(z), t)` the gradient is `w · (sigmoid(z) − t)`: target `t`, weight `w`).
//! An entry with no gradient is ignored by the loss.
//!
//! The gradients are taken along the model's own logits for the photo, all shifted together,
//! because the later losses decide from the prediction which labels to reject, correct or
//! down-weight (LL, SPLC, GR; a common shift keeps LL's ranking), and some are no
//! cross-entropy at all (EM's entropy, Hill's hill): for them the target is where the loss
//! would leave the prediction, and the weight how hard it pulls near there.

use crate::lesson::linear_run::LESSON_EPOCHS;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use querylabel::loss::{
    LabelEstimatorConfig, LossKind, LossProgress, MultiLabelLossConfig, RoleLossConfig,
};
use querylabel::optim::adam;

/// One label's training signal under one loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EntryTarget {
    /// The probability the loss pulls the prediction towards; `None` where the loss ignores
    /// the entry.
    pub target: Option<f32>,
    /// How strongly, relative to a plain cross-entropy term (1).
    pub weight: f32,
}

/// Where in training the targets are read: the middle of the page's live runs, where the
/// scheduled losses (LL, SPLC, GR) are already past their first epoch.
const TARGETS_PROGRESS: LossProgress = LossProgress {
    epoch: LESSON_EPOCHS / 2,
    epochs: LESSON_EPOCHS,
};

/// The shifts of the logits at which the gradients are taken: fine near the model's own
/// logits, coarse far from them, so that a target anywhere in (0, 1) is bracketed.
const PROBE_SHIFTS: [f32; 17] = [
    -8.0, -6.0, -4.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0,
];
/// Gradients below this are no gradient.
const NO_GRADIENT: f32 = 1e-7;

/// Every label's target under `loss`, for one photo whose training labels are `labels` (full
/// labels for BCE, the single kept positive otherwise) and whose logits under the model are
/// `logits`. ROLE's targets are its label estimator's current `estimate` for the photo, which
/// this needs for ROLE only.
pub fn loss_targets(
    loss: LossKind,
    expected_positives: f64,
    labels: &[f32],
    logits: &[f32],
    estimate: Option<&[f32]>,
) -> Vec<EntryTarget> {
    let device = Device::flex().autodiff();
    let classes = labels.len();
    let row = |values: &[f32]| {
        Tensor::<2>::from_data(TensorData::new(values.to_vec(), [1, classes]), &device)
    };
    let loss_function = MultiLabelLossConfig::new(loss)
        .with_expected_num_pos(expected_positives)
        .init();
    let gradient_at = |probe: &[f32]| -> Vec<f32> {
        let logits = row(probe).require_grad();
        let estimated = estimate.map(&row);
        let output =
            loss_function.forward(logits.clone(), row(labels), estimated, TARGETS_PROGRESS);
        // The per-entry terms only: EPR's and ROLE's batch regulariser is no per-label target.
        let grads = output.loss_matrix.sum().backward();
        logits
            .grad(&grads)
            .expect("the loss depends on the logits")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 gradient")
    };
    let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
    // gradients[k][i]: entry i's gradient with every logit shifted by PROBE_SHIFTS[k].
    let gradients: Vec<Vec<f32>> = PROBE_SHIFTS
        .iter()
        .map(|shift| gradient_at(&logits.iter().map(|z| z + shift).collect::<Vec<_>>()))
        .collect();
    let at_model = PROBE_SHIFTS
        .iter()
        .position(|&shift| shift == 0.0)
        .expect("the model's own logits are probed");
    (0..classes)
        .map(|entry| {
            let gradient: Vec<f32> = gradients.iter().map(|g| g[entry]).collect();
            let probability: Vec<f32> = PROBE_SHIFTS
                .iter()
                .map(|shift| sigmoid(logits[entry] + shift))
                .collect();
            entry_target(&probability, &gradient, at_model)
        })
        .collect()
}

/// The target and weight of one entry from its gradient at rising `probability`: where the
/// gradient crosses from negative (pulling up) to positive (pushing down), and its slope
/// there; without a crossing, 0 or 1 and the pull at the model's prediction `at_model`.
fn entry_target(probability: &[f32], gradient: &[f32], at_model: usize) -> EntryTarget {
    if gradient.iter().all(|g| g.abs() < NO_GRADIENT) {
        return EntryTarget {
            target: None,
            weight: 0.0,
        };
    }
    let crossing = (1..gradient.len()).find(|&k| gradient[k - 1] < 0.0 && gradient[k] >= 0.0);
    if let Some(k) = crossing {
        let (p0, p1, g0, g1) = (
            probability[k - 1],
            probability[k],
            gradient[k - 1],
            gradient[k],
        );
        return EntryTarget {
            target: Some(p0 + (p1 - p0) * (-g0) / (g1 - g0)),
            weight: (g1 - g0) / (p1 - p0),
        };
    }
    let (p, g) = (probability[at_model], gradient[at_model]);
    let target = if g > 0.0 { 0.0 } else { 1.0 };
    EntryTarget {
        target: Some(target),
        weight: g.abs() / (p - target).abs().max(1e-6),
    }
}

/// The logits of `probabilities`, each first kept `floor` away from 0 and 1 so that a saturated
/// prediction gives a finite logit.
pub fn logits_of(probabilities: &[f32], floor: f32) -> Vec<f32> {
    probabilities
        .iter()
        .map(|&p| {
            let p = p.clamp(floor, 1.0 - floor);
            (p / (1.0 - p)).ln()
        })
        .collect()
}

/// ROLE's label estimate for one photo with observed labels `observed`, fitted by ROLE's own
/// loss against a classifier whose predictions for the photo are `classifier_probabilities`
/// (the estimator's side of the joint training, the classifier held fixed): starting from the
/// paper's initialisation, `steps` Adam steps.
pub fn role_estimate(
    observed: &[f32],
    classifier_probabilities: &[f32],
    expected_positives: f64,
    steps: usize,
) -> Vec<f32> {
    let device = Device::flex().autodiff();
    let classes = observed.len();
    let row =
        |values: Vec<f32>| Tensor::<2>::from_data(TensorData::new(values, [1, classes]), &device);
    let logits = row(logits_of(classifier_probabilities, 1e-4));
    let observed = row(observed.to_vec());
    let mut estimator = LabelEstimatorConfig::new().init(observed.clone(), 0, &device);
    let mut optimizer = adam().init();
    let loss = RoleLossConfig::new(expected_positives).init();
    let index = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64], [1]), &device);
    for _ in 0..steps {
        let estimated = estimator.forward(index.clone());
        let output = loss.forward(logits.clone(), estimated, observed.clone());
        let grads = GradientsParams::from_grads(output.total.backward(), &estimator);
        estimator = optimizer.step(0.05, estimator, grads);
    }
    estimator
        .valid()
        .estimated_labels()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 estimate")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: [f32; 4] = [1.0, 1.0, 0.0, 0.0];
    const KEPT: [f32; 4] = [1.0, 0.0, 0.0, 0.0];

    fn targets(
        loss: LossKind,
        labels: &[f32],
        estimate: Option<&[f32]>,
    ) -> Vec<(Option<f32>, f32)> {
        loss_targets(loss, 1.5, labels, &[0.0; 4], estimate)
            .into_iter()
            .map(|t| {
                (
                    t.target.map(|v| (v * 100.0).round() / 100.0),
                    (t.weight * 100.0).round() / 100.0,
                )
            })
            .collect()
    }

    #[test]
    fn reads_each_losses_targets_off_its_gradients() {
        use LossKind::*;
        assert_eq!(
            targets(Bce, &LABELS, None),
            vec![
                (Some(1.0), 1.0),
                (Some(1.0), 1.0),
                (Some(0.0), 1.0),
                (Some(0.0), 1.0)
            ]
        );
        // AN: the unobserved positive becomes a negative, as hard as the true negatives.
        assert_eq!(targets(An, &KEPT, None)[1], (Some(0.0), 1.0));
        // AN-LS: smoothed towards 0.1 and 0.9.
        assert_eq!(
            targets(AnLs, &KEPT, None)[..2],
            [(Some(0.9), 1.0), (Some(0.1), 1.0)]
        );
        // WAN: negatives weighted 1 / (classes − 1).
        assert_eq!(targets(Wan, &KEPT, None)[2], (Some(0.0), 0.33));
        // EPR: unobserved labels carry no per-label term.
        assert_eq!(targets(Epr, &KEPT, None)[1..], [(None, 0.0); 3]);
        // ROLE: the estimator's guess, at half weight beside its positive term.
        let estimate = [0.99, 0.7, 0.2, 0.1];
        // EM: unobserved labels are kept uncertain, pulled to 0.5 with weight α = 0.1; Hill
        // pushes an unobserved label down, as AN does, but with 3/8 of its pull at p = 0.5.
        assert_eq!(targets(Em, &KEPT, None)[2], (Some(0.5), 0.1));
        assert_eq!(targets(Hill, &KEPT, None)[2].0, Some(0.0));
        let role = targets(Role, &KEPT, Some(&estimate));
        assert_eq!(role[1], (Some(0.7), 0.5));
        assert_eq!(role[3], (Some(0.1), 0.5));
    }

    #[test]
    fn role_estimate_follows_the_classifier_and_keeps_the_observed_positive() {
        let classifier = [0.9, 0.8, 0.05, 0.02];
        let estimate = role_estimate(&KEPT, &classifier, 1.5, 200);
        assert!(estimate[0] > 0.9, "{estimate:?}");
        assert!(estimate[1] > 0.6, "{estimate:?}");
        assert!(estimate[2] < 0.2 && estimate[3] < 0.2, "{estimate:?}");
    }
}
