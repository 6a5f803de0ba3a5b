//! The losses against independent PyTorch references (`vectors.json`): for every case the loss
//! matrix, the total, the regulariser and the gradients, on the CPU backend.

use burn::tensor::{Device, Int, Tensor, TensorData};
use querylabel::loss::{
    AsymmetricLossConfig, LabelEstimator, LabelEstimatorConfig, LossKind, LossOutput, LossProgress,
    MultiLabelLossConfig,
};
use querylabel_tests::{assert_close, json_matrix, reference_vectors};
use serde_json::Value;

/// Relative tolerance for everything.
const REL: f32 = 1e-5;
/// Reference magnitude below which the tolerance of matrix entries (loss matrices and gradients)
/// stops shrinking. The reference stores every matrix rounded to seven decimals (each entry is a
/// multiple of 1e-7 up to float32 spacing; the logits it was computed from are not rounded), so
/// an entry cannot be checked finer than half that step: `REL · MATRIX_FLOOR` = 6e-8 is the half
/// step plus 1e-8 for float32 arithmetic. Above 6e-3 the 1e-5 relative bound applies as is.
const MATRIX_FLOOR: f32 = 6e-3;
/// The same for the totals and regularisers, which the reference stores unrounded.
const SCALAR_FLOOR: f32 = 1e-6;

fn matrix(case: &Value, key: &str, device: &Device) -> Tensor<2> {
    let (values, shape) = json_matrix(&case[key]);
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn expected(case: &Value, key: &str) -> Vec<f32> {
    json_matrix(&case[key]).0
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_into_vec_as::<f32>().unwrap()
}

fn number(case: &Value, key: &str) -> f64 {
    case[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}: expected a number"))
}

fn describe(case: &Value, name: &str) -> String {
    format!(
        "{name} (batch {}, classes {})",
        case["batch"].as_u64().unwrap_or(0),
        case["classes"].as_u64().unwrap_or(0)
    )
}

fn check_values(what: &str, output: LossOutput, case: &Value, total_key: &str) {
    assert_close(
        &format!("{what}: loss matrix"),
        &values(output.loss_matrix),
        &expected(case, "loss_matrix"),
        REL,
        MATRIX_FLOOR,
    );
    assert_close(
        &format!("{what}: {total_key}"),
        &values(output.total),
        &[number(case, total_key) as f32],
        REL,
        SCALAR_FLOOR,
    );
    match (output.regularizer, case.get("reg").and_then(Value::as_f64)) {
        (Some(regularizer), Some(reg)) => assert_close(
            &format!("{what}: regulariser"),
            &values(regularizer),
            &[reg as f32],
            REL,
            SCALAR_FLOOR,
        ),
        (None, None) => {}
        (actual, reference) => panic!(
            "{what}: regulariser present here: {}, in the reference: {}",
            actual.is_some(),
            reference.is_some()
        ),
    }
}

/// The Cole et al. losses do not depend on the epoch.
const FIRST_EPOCH: LossProgress = LossProgress {
    epoch: 1,
    epochs: 1,
};

fn loss_config(case: &Value) -> MultiLabelLossConfig {
    let name = case["loss"].as_str().expect("loss name");
    let loss: LossKind = name.parse().unwrap();
    MultiLabelLossConfig::new(loss)
        .with_label_smoothing(number(case, "ls_coef"))
        .with_expected_num_pos(number(case, "expected_num_pos"))
}

/// The estimator for a ROLE case, holding the reference logits, and its output for the batch.
fn reference_estimator(case: &Value, device: &Device) -> (LabelEstimator, Tensor<2>) {
    let estimator = LabelEstimator::from_logits(matrix(case, "estimator_logits", device));
    let batch = case["batch"].as_u64().unwrap() as i64;
    let estimated = estimator.forward(Tensor::<1, Int>::arange(0..batch, device));
    (estimator, estimated)
}

#[test]
fn single_positive_losses_match_reference() {
    let vectors = reference_vectors();
    let cases = vectors["mlspl_losses"].as_array().expect("mlspl_losses");
    assert_eq!(cases.len(), 21);
    for case in cases {
        let config = loss_config(case);
        let what = describe(case, &config.loss.to_string());

        // Values without autodiff.
        let device = Device::flex();
        let estimated = config
            .init()
            .needs_label_estimator()
            .then(|| reference_estimator(case, &device).1);
        let output = config.init().forward(
            matrix(case, "logits", &device),
            matrix(case, "labels", &device),
            estimated,
            FIRST_EPOCH,
        );
        check_values(&what, output, case, "total");

        // Values and gradients of the total with autodiff.
        let device = Device::flex().autodiff();
        let logits = matrix(case, "logits", &device).require_grad();
        let estimator = config
            .init()
            .needs_label_estimator()
            .then(|| reference_estimator(case, &device));
        let output = config.init().forward(
            logits.clone(),
            matrix(case, "labels", &device),
            estimator.as_ref().map(|(_, estimated)| estimated.clone()),
            FIRST_EPOCH,
        );
        let grads = output.total.backward();
        check_values(&format!("{what} (autodiff)"), output, case, "total");
        assert_close(
            &format!("{what}: d total / d logits"),
            &values(logits.grad(&grads).expect("gradient of the logits")),
            &expected(case, "grad_logits"),
            REL,
            MATRIX_FLOOR,
        );
        if let Some((estimator, _)) = estimator {
            let grad = estimator.logits.val().grad(&grads);
            assert_close(
                &format!("{what}: d total / d estimator logits"),
                &values(grad.expect("gradient of the estimator logits")),
                &expected(case, "grad_estimator_logits"),
                REL,
                MATRIX_FLOOR,
            );
        }
    }
}

#[test]
fn asymmetric_loss_matches_reference() {
    let vectors = reference_vectors();
    let cases = vectors["asl"].as_array().expect("asl");
    assert_eq!(cases.len(), 12);
    for case in cases {
        let config = AsymmetricLossConfig::new()
            .with_gamma_neg(number(case, "gamma_neg"))
            .with_gamma_pos(number(case, "gamma_pos"))
            .with_clip(number(case, "clip"))
            .with_eps(number(case, "eps"));
        let shape = json_matrix(&case["logits"]).1;
        let what = format!(
            "asl {shape:?} gamma_neg {} gamma_pos {} clip {}",
            config.gamma_neg, config.gamma_pos, config.clip
        );
        let loss = config.init();

        let device = Device::flex();
        let output = loss.forward(
            matrix(case, "logits", &device),
            matrix(case, "labels", &device),
        );
        check_values(&what, output, case, "sum");

        let device = Device::flex().autodiff();
        let logits = matrix(case, "logits", &device).require_grad();
        let output = loss.forward(logits.clone(), matrix(case, "labels", &device));
        let grads = output.total.backward();
        check_values(&format!("{what} (autodiff)"), output, case, "sum");
        assert_close(
            &format!("{what}: d sum / d logits"),
            &values(logits.grad(&grads).expect("gradient of the logits")),
            &expected(case, "grad_logits"),
            REL,
            MATRIX_FLOOR,
        );
    }
}

#[test]
fn label_estimator_starts_as_in_the_paper() {
    let device = Device::flex();
    let observed = Tensor::<2>::from_data([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], &device);
    let estimator = LabelEstimatorConfig::new().init(observed.clone(), 7, &device);
    let labels = values(estimator.estimated_labels());
    for (estimate, observed) in labels.iter().zip(values(observed.clone())) {
        if observed == 1.0 {
            assert!(
                (estimate - 0.995).abs() < 1e-6,
                "observed positive at {estimate}"
            );
        } else {
            assert!((0.4..=0.6).contains(estimate), "unobserved at {estimate}");
        }
    }
    let second_row = values(estimator.forward(Tensor::<1, Int>::from_data([1], &device)));
    assert_eq!(second_row, labels[4..8]);
    let again = LabelEstimatorConfig::new().init(observed, 7, &device);
    assert_eq!(
        values(again.estimated_labels()),
        labels,
        "same seed, same start"
    );
}

#[test]
fn loss_names_parse_and_serialise() {
    for loss in LossKind::ALL {
        assert_eq!(loss.name().parse::<LossKind>().unwrap(), loss);
        let json = serde_json::to_string(&loss).unwrap();
        assert_eq!(json, format!("\"{}\"", loss.name()));
        assert_eq!(serde_json::from_str::<LossKind>(&json).unwrap(), loss);
    }
    assert_eq!("AN_LS".parse::<LossKind>().unwrap(), LossKind::AnLs);
    assert_eq!(
        serde_json::from_str::<LossKind>("\"an_ls\"").unwrap(),
        LossKind::AnLs
    );
    assert!("iun".parse::<LossKind>().is_err());
}
