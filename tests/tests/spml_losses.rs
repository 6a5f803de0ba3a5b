//! The single-positive losses that came after Cole et al. (LL-R, LL-Ct, LL-Cp, EM, EM+APL, GR,
//! Hill and SPLC) against vectors computed by running each paper's official code in float64
//! (`spml_vectors.json`, described in `SPML_VECTORS.md` beside it): loss matrices, totals and
//! gradients, LL's selections, LL-Cp's label state over a sequence of batches, APL's label
//! updates over its epochs and GR's schedule.
//!
//! The losses run here in float64 on the CPU backend, so that the comparison measures the
//! formulas rather than float32 rounding: totals to 1e-9 relative, matrices and scaled gradients
//! to 1e-6 · max(1, |v|) (they are stored rounded to 7 decimals), and masks, counts and label
//! states exactly.

use burn::tensor::{Bool, DType, Device, Tensor, TensorData};
use querylabel::loss::{
    EntropyMaximizationLossConfig, GeneralizedRobustLossConfig, HillLossConfig, LargeLossConfig,
    LargeLossScheme, LossOutput, PseudoLabelerConfig, SelfPacedCorrectionLossConfig,
    write_back_corrections,
};
use querylabel_tests::reference_json;
use serde_json::Value;

const TOTAL_REL: f64 = 1e-9;
const MATRIX_TOL: f64 = 1e-6;

fn vectors() -> Value {
    reference_json("spml_vectors.json")
}

fn list<'a>(vectors: &'a Value, key: &str) -> &'a [Value] {
    vectors[key]
        .as_array()
        .unwrap_or_else(|| panic!("spml_vectors.json: no list {key:?}"))
}

fn number(case: &Value, key: &str) -> f64 {
    case[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}: expected a number"))
}

fn count(case: &Value, key: &str) -> usize {
    case[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key}: expected a count")) as usize
}

/// A JSON matrix of numbers (or booleans) flattened row-major, with its shape.
fn flat(value: &Value) -> (Vec<f64>, [usize; 2]) {
    let rows = value.as_array().expect("matrix: expected an array of rows");
    let cols = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    let mut values = Vec::with_capacity(rows.len() * cols);
    for row in rows {
        let row = row.as_array().expect("matrix row");
        assert_eq!(row.len(), cols, "ragged matrix");
        values.extend(row.iter().map(|v| {
            v.as_f64()
                .or_else(|| v.as_bool().map(f64::from))
                .expect("matrix entry")
        }));
    }
    (values, [rows.len(), cols])
}

fn tensor(value: &Value, device: &Device) -> Tensor<2> {
    let (values, shape) = flat(value);
    Tensor::from_data(TensorData::new(values, shape), (device, DType::F64))
}

fn floats<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    tensor.into_data().try_into_vec_as::<f64>().unwrap()
}

fn flags(tensor: Tensor<2, Bool>) -> Vec<bool> {
    tensor.into_data().try_into_vec::<bool>().unwrap()
}

fn reference_flags(value: &Value) -> Vec<bool> {
    flat(value).0.into_iter().map(|v| v != 0.0).collect()
}

/// `[row, col]` pairs as a mask of `classes` columns and `rows` rows.
fn index_mask(pairs: &Value, rows: usize, classes: usize) -> Vec<bool> {
    let mut mask = vec![false; rows * classes];
    for pair in pairs.as_array().expect("index pairs") {
        let pair = pair.as_array().expect("[row, col]");
        let (row, col) = (pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap());
        mask[row as usize * classes + col as usize] = true;
    }
    mask
}

fn assert_matrix(what: &str, actual: &[f64], expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let allowed = tolerance * e.abs().max(1.0);
        assert!(
            (a - e).abs() <= allowed,
            "{what}[{i}]: got {a}, expected {e} (tolerance {allowed})"
        );
    }
}

fn assert_scalar(what: &str, actual: f64, expected: f64, rel: f64) {
    let allowed = rel * expected.abs().max(1e-12);
    assert!(
        (actual - expected).abs() <= allowed,
        "{what}: got {actual}, expected {expected} (tolerance {allowed})"
    );
}

fn describe(case: &Value) -> String {
    format!(
        "{} (batch {}, classes {}{})",
        case["loss"].as_str().unwrap_or("?"),
        case["batch"],
        case["classes"],
        case.get("note")
            .and_then(Value::as_str)
            .map_or(String::new(), |note| format!(", {note}"))
    )
}

/// Checks a case's loss matrix, total and scaled gradient: `run` computes the loss of the given
/// logits, once without autodiff and once with it.
fn check_loss(what: &str, case: &Value, run: impl Fn(Tensor<2>, &Device) -> LossOutput) {
    let device = Device::flex();
    let output = run(tensor(&case["logits"], &device), &device);
    assert_matrix(
        &format!("{what}: loss matrix"),
        &floats(output.loss_matrix),
        &flat(&case["loss_matrix"]).0,
        MATRIX_TOL,
    );
    assert_scalar(
        &format!("{what}: total"),
        floats(output.total)[0],
        number(case, "total"),
        TOTAL_REL,
    );

    let device = Device::flex().autodiff();
    let logits = tensor(&case["logits"], &device).require_grad();
    let output = run(logits.clone(), &device);
    let grads = output.total.backward();
    let scale = number(case, "grad_scale");
    let gradient: Vec<f64> = floats(logits.grad(&grads).expect("gradient of the logits"))
        .into_iter()
        .map(|g| g * scale)
        .collect();
    assert_matrix(
        &format!("{what}: d total / d logits × {scale}"),
        &gradient,
        &flat(&case["grad_logits_scaled"]).0,
        MATRIX_TOL,
    );
}

/// The scheme a Large Loss Matters case runs. The cases with `cp_identity_check: false` are
/// LL-Cp as the released code runs it from its command line, which is LL-Ct.
fn large_loss_scheme(case: &Value) -> LargeLossScheme {
    match case["loss"].as_str().expect("loss") {
        "LL-R" => LargeLossScheme::Reject,
        "LL-Ct" => LargeLossScheme::TemporaryCorrection,
        "LL-Cp" if case["cp_identity_check"] == Value::Bool(false) => {
            LargeLossScheme::TemporaryCorrection
        }
        "LL-Cp" => LargeLossScheme::PermanentCorrection,
        other => panic!("unknown Large Loss Matters scheme {other:?}"),
    }
}

/// Checks one LL batch (a case or a sequence step) against its reference: clean rate, k,
/// threshold, masks, loss and gradients. Returns the strict corrections, row-major.
fn check_large_loss_batch(
    what: &str,
    step: &Value,
    scheme: LargeLossScheme,
    delta_rel_percent: f64,
) -> Vec<bool> {
    let loss = LargeLossConfig::new()
        .with_delta_rel_percent(delta_rel_percent)
        .init(scheme);
    let epoch = count(step, "epoch");
    // serde_json's default float parsing may be one unit in the last place off, so the clean
    // rate is compared to 1e-14; `k` below, which its float arithmetic decides, is exact.
    assert_scalar(
        &format!("{what}: clean rate"),
        loss.clean_rate(epoch),
        number(step, "clean_rate"),
        1e-14,
    );
    let device = Device::flex();
    let (_, [batch, classes]) = flat(&step["logits"]);
    let details = loss.forward_detailed(
        tensor(&step["logits"], &device),
        tensor(&step["labels"], &device),
        epoch,
    );
    assert_eq!(
        details.selected,
        step["k"].as_u64().map(|k| k as usize),
        "{what}: k"
    );
    match (details.threshold, step["threshold"].as_f64()) {
        (Some(actual), Some(expected)) => {
            assert_scalar(&format!("{what}: threshold"), actual, expected, TOTAL_REL)
        }
        (None, None) => {}
        (actual, expected) => panic!("{what}: threshold {actual:?}, expected {expected:?}"),
    }
    let modified = details
        .modified
        .map_or_else(|| vec![false; batch * classes], flags);
    assert_eq!(
        modified,
        reference_flags(&step["modified_mask"]),
        "{what}: modified mask"
    );
    let corrections = details.corrections.map(flags);
    match (&corrections, &step["correction_idx"]) {
        (None, Value::Null) => {}
        (Some(actual), pairs @ Value::Array(_)) => assert_eq!(
            actual,
            &index_mask(pairs, batch, classes),
            "{what}: corrections (strictly above the threshold)"
        ),
        (actual, expected) => panic!("{what}: corrections {actual:?}, expected {expected}"),
    }
    check_loss(what, step, |logits, device| {
        loss.forward(logits, tensor(&step["labels"], device), epoch)
    });
    corrections.unwrap_or_else(|| vec![false; batch * classes])
}

#[test]
fn large_loss_matters_matches_the_official_code() {
    let vectors = vectors();
    let cases = list(&vectors, "ll");
    assert!(!cases.is_empty());
    for case in cases {
        let what = describe(case);
        check_large_loss_batch(
            &what,
            case,
            large_loss_scheme(case),
            number(case, "delta_rel_cli"),
        );
    }
}

#[test]
fn ll_cp_label_state_follows_the_official_sequence() {
    let vectors = vectors();
    let sequence = &vectors["ll_cp_sequence"];
    assert_eq!(sequence["loss"], "LL-Cp");
    let scheme = large_loss_scheme(sequence);
    let classes = count(sequence, "classes");
    let (mut state, _) = flat(&sequence["labels_initial"]);
    let mut state: Vec<f32> = state.drain(..).map(|v| v as f32).collect();
    let steps = sequence["steps"].as_array().expect("steps");
    assert!(!steps.is_empty());
    for (n, step) in steps.iter().enumerate() {
        let what = format!("LL-Cp sequence step {n} (epoch {})", step["epoch"]);
        let rows: Vec<usize> = step["idx"]
            .as_array()
            .expect("idx")
            .iter()
            .map(|i| i.as_u64().unwrap() as usize)
            .collect();
        let held: Vec<f64> = rows
            .iter()
            .flat_map(|&row| &state[row * classes..(row + 1) * classes])
            .map(|&v| f64::from(v))
            .collect();
        assert_eq!(
            held,
            flat(&step["labels"]).0,
            "{what}: labels held before the step"
        );
        let corrections =
            check_large_loss_batch(&what, step, scheme, number(sequence, "delta_rel_cli"));
        write_back_corrections(&mut state, classes, &rows, &corrections);
        let after: Vec<f64> = rows
            .iter()
            .flat_map(|&row| &state[row * classes..(row + 1) * classes])
            .map(|&v| f64::from(v))
            .collect();
        assert_eq!(after, flat(&step["labels_after"]).0, "{what}: labels after");
    }
    let final_state: Vec<f64> = state.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(
        final_state,
        flat(&sequence["labels_final"]).0,
        "final label state"
    );
}

fn entropy_config(case: &Value) -> EntropyMaximizationLossConfig {
    EntropyMaximizationLossConfig::new()
        .with_alpha(number(case, "alpha"))
        .with_beta(case["beta"].as_f64().unwrap_or(0.0))
}

#[test]
fn entropy_maximization_matches_the_official_code() {
    let vectors = vectors();
    for key in ["em", "em_apl"] {
        let cases = list(&vectors, key);
        assert!(!cases.is_empty(), "{key}: no cases");
        for case in cases {
            assert_eq!(number(case, "log_epsilon"), querylabel::loss::LOG_EPSILON);
            let loss = entropy_config(case).init();
            check_loss(&describe(case), case, |logits, device| {
                loss.forward(logits, tensor(&case["labels"], device))
            });
        }
    }
}

#[test]
fn asymmetric_pseudo_labelling_follows_the_official_updates() {
    let vectors = vectors();
    let sequences = list(&vectors, "apl_update");
    assert!(!sequences.is_empty());
    for sequence in sequences {
        let what = format!("APL update ({}-like)", sequence["hp_from"]);
        let classes = count(sequence, "classes");
        let (initial, _) = flat(&sequence["labels_initial"]);
        let mut labels: Vec<f32> = initial.iter().map(|&v| v as f32).collect();
        let labeler = PseudoLabelerConfig::new()
            .with_warmup_epoch(count(sequence, "warmup_epoch"))
            .with_neg_proportion(number(sequence, "neg_proportion"))
            .init(&labels, classes, count(sequence, "num_epochs"));
        let as_counts = |key: &str| -> Vec<usize> {
            sequence[key]
                .as_array()
                .expect(key)
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect()
        };
        assert_eq!(
            labeler.unobserved_counts(),
            as_counts("unlabel_num"),
            "{what}: unobserved"
        );
        assert_eq!(labeler.quotas(), as_counts("neg_pl_num"), "{what}: quotas");
        for step in sequence["steps"].as_array().expect("steps") {
            let epoch = count(step, "epoch");
            let what = format!("{what}, epoch {epoch}");
            assert!(labeler.updates_after(epoch), "{what}: should update");
            assert!(!labeler.updates_after(count(sequence, "warmup_epoch") - 1));
            let before: Vec<f64> = labels.iter().map(|&v| f64::from(v)).collect();
            assert_matrix(
                &format!("{what}: labels before"),
                &before,
                &flat(&step["labels_before"]).0,
                MATRIX_TOL,
            );
            let probabilities: Vec<f32> = flat(&step["logits"])
                .0
                .iter()
                .map(|&x| (1.0 / (1.0 + (-x).exp())) as f32)
                .collect();
            let new = labeler.update(&mut labels, &probabilities);
            assert_eq!(
                new,
                reference_flags(&step["new_pl_mask"]),
                "{what}: new pseudo-labels"
            );
            let after: Vec<f64> = labels.iter().map(|&v| f64::from(v)).collect();
            assert_matrix(
                &format!("{what}: labels after"),
                &after,
                &flat(&step["labels_after"]).0,
                MATRIX_TOL,
            );
        }
    }
}

#[test]
fn generalized_robust_loss_matches_the_official_code() {
    let vectors = vectors();
    let cases = list(&vectors, "gr");
    assert!(!cases.is_empty());
    for case in cases {
        let what = format!("{}, epoch {}", describe(case), case["epoch"]);
        let pair = |key: &str| -> Vec<f64> {
            case[key]
                .as_array()
                .expect(key)
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let (beta, alpha, q) = (pair("beta"), pair("alpha"), pair("q2q3"));
        let config = GeneralizedRobustLossConfig::new()
            .with_w_start(beta[0])
            .with_w_end(beta[1])
            .with_b_start(beta[2])
            .with_b_end(beta[3])
            .with_mu_start(alpha[0])
            .with_sigma_start(alpha[1])
            .with_mu_end(alpha[2])
            .with_sigma_end(alpha[3])
            .with_q2(q[0])
            .with_q3(q[1])
            .with_linear_init(count(case, "linear_init"));
        if case["defaults"] == Value::Bool(true) {
            let defaults = GeneralizedRobustLossConfig::new();
            assert_eq!(
                format!("{defaults:?}"),
                format!("{:?}", config.clone().with_linear_init(0)),
                "{what}: the official defaults"
            );
        }
        let (epoch, epochs) = (count(case, "epoch"), count(case, "num_epochs"));
        let weights = config.weights(epoch, epochs);
        for (name, actual) in [
            ("w", weights.w),
            ("b", weights.b),
            ("mu", weights.mu),
            ("sigma", weights.sigma),
        ] {
            assert_scalar(
                &format!("{what}: {name}"),
                actual,
                number(case, name),
                1e-12,
            );
        }
        let loss = config.init();
        let device = Device::flex();
        let details = loss.forward_detailed(
            tensor(&case["logits"], &device),
            tensor(&case["labels"], &device),
            epoch,
            epochs,
        );
        assert_matrix(
            &format!("{what}: k̂"),
            &floats(details.k_hat),
            &flat(&case["k_hat"]).0,
            MATRIX_TOL,
        );
        assert_matrix(
            &format!("{what}: v"),
            &floats(details.v),
            &flat(&case["v"]).0,
            MATRIX_TOL,
        );
        check_loss(&what, case, |logits, device| {
            loss.forward(logits, tensor(&case["labels"], device), epoch, epochs)
        });
    }
}

#[test]
fn hill_loss_matches_the_official_code() {
    let vectors = vectors();
    let cases = list(&vectors, "hill");
    assert!(!cases.is_empty());
    for case in cases {
        assert_eq!(case["reduction"], "sum");
        let loss = HillLossConfig::new()
            .with_lambda(number(case, "lamb"))
            .with_margin(number(case, "margin"))
            .with_gamma(number(case, "gamma"))
            .init();
        check_loss(&describe(case), case, |logits, device| {
            loss.forward(logits, tensor(&case["labels"], device))
        });
    }
}

#[test]
fn self_paced_correction_matches_the_official_code() {
    let vectors = vectors();
    let cases = list(&vectors, "splc");
    assert!(!cases.is_empty());
    for case in cases {
        assert_eq!(case["reduction"], "sum");
        // The official loop's epoch index is 0-based; the loss takes the 1-based epoch.
        let epoch = count(case, "epoch") + 1;
        let what = format!("{}, epoch index {}", describe(case), case["epoch"]);
        let loss = SelfPacedCorrectionLossConfig::new()
            .with_tau(number(case, "tau"))
            .with_change_epoch(count(case, "change_epoch"))
            .with_margin(number(case, "margin"))
            .with_gamma(number(case, "gamma"))
            .init();
        let device = Device::flex();
        let details = loss.forward_detailed(
            tensor(&case["logits"], &device),
            tensor(&case["labels"], &device),
            epoch,
        );
        assert_eq!(
            flags(details.targets),
            reference_flags(&case["corrected_targets"]),
            "{what}: corrected targets"
        );
        check_loss(&what, case, |logits, device| {
            loss.forward(logits, tensor(&case["labels"], device), epoch)
        });
    }
}
