//! What each loss asks the network to predict for every label of one photo, read off the
//! losses' own code rather than restated: for a cross-entropy term `w · CE(sigmoid(z), t)` the
//! gradient with respect to the logit is `w · (sigmoid(z) − t)`, so the gradients at two logits
//! give the weight `w` and the target `t`. An entry with no gradient is ignored by the loss.
//!
//! The two logits are the model's own for the photo and a step beside it, because the later
//! losses decide from the prediction which labels to reject, correct or down-weight (LL, SPLC,
//! GR), and some are no cross-entropy at all (EM's entropy, Hill's hill): for them `t` is where
//! the loss, linearised at the model's prediction, pulls it.

use crate::lesson::linear_run::{ADAM_EPSILON, LESSON_EPOCHS};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use querylabel::loss::{
    LabelEstimatorConfig, LossProgress, MultiLabelLossConfig, RoleLossConfig, SinglePositiveLoss,
};

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

/// The second logit is this far from the model's.
const PROBE_STEP: f32 = 0.25;
/// Logits are probed within ±this, where the sigmoid still has a slope to measure.
const PROBE_RANGE: f32 = 6.0;

/// Every label's target under `loss`, for one photo whose training labels are `labels` (full
/// labels for BCE, the single kept positive otherwise) and whose logits under the model are
/// `logits`. ROLE's targets are its label estimator's current `estimate` for the photo, which
/// this needs for ROLE only.
pub fn loss_targets(
    loss: SinglePositiveLoss,
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
    let low: Vec<f32> = logits
        .iter()
        .map(|z| z.clamp(-PROBE_RANGE, PROBE_RANGE))
        .collect();
    let high: Vec<f32> = low.iter().map(|z| z + PROBE_STEP).collect();
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
    let (g_lows, g_highs) = (gradient_at(&low), gradient_at(&high));
    g_lows
        .iter()
        .zip(&g_highs)
        .zip(low.iter().zip(&high))
        .map(|((&g_low, &g_high), (&z_low, &z_high))| {
            let (p_low, p_high) = (sigmoid(z_low), sigmoid(z_high));
            let weight = (g_low - g_high) / (p_low - p_high);
            if weight.abs() < 1e-6 {
                EntryTarget {
                    target: None,
                    weight: 0.0,
                }
            } else {
                EntryTarget {
                    target: Some((p_low - g_low / weight).clamp(0.0, 1.0)),
                    weight,
                }
            }
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
    let logits = row(classifier_probabilities
        .iter()
        .map(|&p| {
            let p = p.clamp(1e-4, 1.0 - 1e-4);
            (p / (1.0 - p)).ln()
        })
        .collect());
    let observed = row(observed.to_vec());
    let mut estimator = LabelEstimatorConfig::new().init(observed.clone(), 0, &device);
    let mut optimizer = AdamConfig::new().with_epsilon(ADAM_EPSILON).init();
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
        loss: SinglePositiveLoss,
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
        use SinglePositiveLoss::*;
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
