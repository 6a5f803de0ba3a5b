//! End-to-end runs of the `trainer` binary on the shipped sample of real COCO photos, on the
//! CPU backend: training improves validation mAP, an interrupted run resumes to exactly where
//! an uninterrupted one gets, a diverging run stops cleanly, and predictions draw attention.
//! They need the converted Lite0 weights (`make weights`).

mod common;

use std::path::Path;

use common::{
    assert_same_history, eval_on_sample_validation_split, metrics_history, train, trainer,
};
use serde_json::Value;

#[test]
fn a_short_training_on_the_sample_measurably_improves_validation_map() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let summary = train(
        &run,
        &[
            "--head",
            "linear",
            "--epochs",
            "2",
            "--lr",
            "1e-3",
            "--image-size",
            "160",
            "--no-augmentation",
        ],
    );
    let before = summary["initial_map"].as_f64().unwrap();
    let after = summary["best_map"].as_f64().unwrap();
    assert!(
        after > before + 2.0,
        "validation mAP {before:.2} -> {after:.2}"
    );

    for file in [
        "options.json",
        "metrics.jsonl",
        "loss.png",
        "map.png",
        "best/model.json",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);

    // `trainer eval` on the run's own validation split reproduces the best epoch's mAP.
    let evaluation = eval_on_sample_validation_split(&run);
    let map = evaluation["mAP"].as_f64().unwrap();
    assert!((map - after).abs() < 1e-3, "eval {map} vs training {after}");
    for metric in ["CF1", "OF1", "CF1_top3", "OF1_top3", "top1_precision"] {
        let value = evaluation[metric].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&value), "{metric} {value}");
    }

    // The half-precision export for the browser loads back and scores within rounding.
    let export = dir.path().join("export");
    let (ok, _, stderr) = trainer(&[
        "export",
        "--model",
        run.to_str().unwrap(),
        "--out",
        export.to_str().unwrap(),
    ]);
    assert!(ok, "trainer export failed:\n{stderr}");
    let weights = std::fs::metadata(export.join("model.safetensors"))
        .unwrap()
        .len();
    let full = std::fs::metadata(run.join("best/model.bpk")).unwrap().len();
    assert!(
        weights < full * 6 / 10,
        "export {weights} bytes vs {full} in f32"
    );
    let exported_evaluation = eval_on_sample_validation_split(&export);
    let exported_map = exported_evaluation["mAP"].as_f64().unwrap();
    assert!(
        (exported_map - after).abs() < 0.5,
        "f16 export {exported_map} vs {after}"
    );
    check_decision_thresholds(&run, &export, &exported_evaluation, dir.path());
}

fn manifest_threshold(export: &Path) -> Value {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("model.json")).unwrap()).unwrap();
    assert_eq!(manifest["format_version"], 2);
    // One head, named after the run's labels.
    let heads = manifest["model"]["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0]["name"], "full");
    heads[0]["decision_threshold"].clone()
}

/// `predict`'s lines for the sample's first photo, with `extra` arguments.
fn predict_sample_photo(model: &Path, extra: &[&str]) -> String {
    let photo = querylabel_trainer::dataset::sample_dir()
        .join("images")
        .join("COCO_train2014_000000000009.jpg");
    let mut args = vec![
        "predict",
        "--backend",
        "flex",
        "--model",
        model.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(photo.to_str().unwrap());
    let (ok, stdout, stderr) = trainer(&args);
    assert!(ok, "trainer predict failed:\n{stderr}");
    stdout
}

/// `trainer export` records the threshold it chose on the run's own validation split, which
/// keeps within one wrong label per photo there; `eval` and `predict` use a model's recorded
/// threshold unless `--threshold` overrides it; `export --threshold` records a fixed one.
fn check_decision_thresholds(run: &Path, export: &Path, evaluation: &Value, scratch: &Path) {
    let chosen = manifest_threshold(export);
    assert!(
        chosen["rule"]
            .as_str()
            .unwrap()
            .contains("validation split"),
        "{chosen}"
    );
    let value = chosen["value"].as_f64().unwrap() as f32;
    assert!(value > 0.0 && value.is_finite(), "{chosen}");
    // `eval` of the export on that same split: the recorded threshold and its numbers.
    assert_eq!(evaluation["threshold"].as_f64().unwrap() as f32, value);
    assert_eq!(chosen["validation"]["images"], evaluation["images"]);
    let wrong = evaluation["false_positives_per_image"].as_f64().unwrap();
    assert!(wrong <= 1.0, "{wrong} wrong labels per photo at {value}");
    assert!(
        (wrong
            - chosen["validation"]["false_positives_per_image"]
                .as_f64()
                .unwrap())
        .abs()
            < 1e-9
    );
    let stdout = predict_sample_photo(export, &[]);
    assert!(
        stdout.starts_with(&format!(
            "head full: threshold {value:.3} (the model's own: max overall F1"
        )),
        "{stdout}"
    );

    // A linear head has no maps to draw: with every head it is said once and the photo is
    // labelled; asked for by name it is refused before any photo.
    let maps = scratch.join("maps");
    let maps = maps.to_str().unwrap();
    let stdout = predict_sample_photo(export, &["--attention", maps]);
    assert!(
        stdout.contains("head full: a linear head, no attention maps to draw")
            && stdout.contains("  full predicted: "),
        "{stdout}"
    );
    let export_path = export.to_str().unwrap();
    let (ok, _, stderr) = trainer(&[
        "predict",
        "--backend",
        "flex",
        "--model",
        export_path,
        "--head",
        "full",
        "--attention",
        maps,
        "x.jpg",
    ]);
    assert!(
        !ok && stderr.contains("\"full\" is a linear head: it has no per-label attention"),
        "{stderr}"
    );

    // A fixed threshold of 0 predicts every label, and predict uses it by default.
    let fixed = scratch.join("export-fixed");
    let (ok, _, stderr) = trainer(&[
        "export",
        "--model",
        run.to_str().unwrap(),
        "--out",
        fixed.to_str().unwrap(),
        "--threshold",
        "0",
    ]);
    assert!(ok, "trainer export --threshold failed:\n{stderr}");
    let recorded = manifest_threshold(&fixed);
    assert_eq!(recorded["value"], 0.0);
    assert_eq!(recorded["rule"], "fixed with --threshold");
    let stdout = predict_sample_photo(&fixed, &[]);
    let predicted = stdout
        .lines()
        .find_map(|line| line.strip_prefix("  full predicted: "))
        .expect("a predicted line");
    assert_eq!(predicted.split(", ").count(), 80, "{stdout}");
    assert_eq!(stdout.matches("\n    * ").count(), 5, "{stdout}");
    // `--threshold` overrides the recorded one: at 1 nothing is predicted.
    let stdout = predict_sample_photo(&fixed, &["--threshold", "1"]);
    assert!(stdout.contains("\n  full predicted: \n"), "{stdout}");
    assert_eq!(stdout.matches("\n    * ").count(), 0, "{stdout}");
    // A threshold outside [0, 1] is refused with the reason.
    let (ok, _, stderr) = trainer(&[
        "predict",
        "--model",
        fixed.to_str().unwrap(),
        "--threshold",
        "1.5",
        "x.jpg",
    ]);
    assert!(!ok && stderr.contains("[0, 1]"), "{stderr}");
    check_bundle_of_two_heads(run, &chosen, scratch);
}

/// Two heads over one backbone: names and thresholds follow the --model before them, two heads
/// of one name are refused, and `eval` gives one JSON line per head (or the one `--head` names).
/// Heads trained on one split get their thresholds in one pass over it, the same as alone
/// (`chosen`, the run's head exported alone).
fn check_bundle_of_two_heads(run: &Path, chosen: &Value, scratch: &Path) {
    let bundle = scratch.join("bundle");
    let run = run.to_str().unwrap();
    let out = bundle.to_str().unwrap();
    let (ok, _, stderr) = trainer(&["export", "--model", run, "--model", run, "--out", out]);
    assert!(
        !ok && stderr.contains("two heads are named \"full\""),
        "{stderr}"
    );
    let (ok, _, stderr) = trainer(&[
        "export",
        "--model",
        run,
        "--threshold",
        "0.25",
        "--model",
        run,
        "--name",
        "again",
        "--threshold",
        "0.75",
        "--out",
        out,
    ]);
    assert!(ok, "trainer export of two heads failed:\n{stderr}");
    let shared = scratch.join("one-split");
    let (ok, _, stderr) = trainer(&[
        "export",
        "--model",
        run,
        "--model",
        run,
        "--name",
        "again",
        "--out",
        shared.to_str().unwrap(),
    ]);
    assert!(ok, "trainer export of two heads failed:\n{stderr}");
    assert_eq!(
        stderr.matches("choosing the decision threshold").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("of 2 head(s)"), "{stderr}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(shared.join("model.json")).unwrap()).unwrap();
    for head in manifest["model"]["heads"].as_array().unwrap() {
        assert_eq!(&head["decision_threshold"], chosen, "{head}");
    }
    let data = querylabel_trainer::dataset::sample_dir();
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--backend", "flex", "--model", out];
        args.extend_from_slice(&["--data", data.to_str().unwrap(), "--run-split-seed", "1"]);
        args.extend_from_slice(extra);
        trainer(&args)
    };
    let (ok, stdout, stderr) = eval(&[]);
    assert!(ok, "trainer eval of the bundle failed:\n{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(
        (lines[0]["head"].as_str(), lines[1]["head"].as_str()),
        (Some("full"), Some("again"))
    );
    assert_eq!(
        (
            lines[0]["threshold"].as_f64(),
            lines[1]["threshold"].as_f64()
        ),
        (Some(0.25), Some(0.75))
    );
    assert_eq!(lines[0]["mAP"], lines[1]["mAP"], "one model, twice");
    let (ok, stdout, _) = eval(&["--head", "again"]);
    assert!(ok);
    assert_eq!(common::last_json_line(&stdout)["head"], "again");
    let (ok, _, stderr) = eval(&["--head", "nope"]);
    assert!(
        !ok && stderr.contains("its heads are full, again"),
        "{stderr}"
    );

    // A head added to the bundle: its heads stay as they were, thresholds included.
    let grown = scratch.join("grown");
    let grown_out = grown.to_str().unwrap();
    let (ok, _, stderr) = trainer(&[
        "export",
        "--model",
        out,
        "--model",
        run,
        "--name",
        "third",
        "--threshold",
        "0.5",
        "--out",
        grown_out,
    ]);
    assert!(ok, "adding a head to a bundle failed:\n{stderr}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(grown.join("model.json")).unwrap()).unwrap();
    let heads: Vec<(&str, f64)> = manifest["model"]["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let threshold = h["decision_threshold"]["value"].as_f64().unwrap();
            (
                h["name"].as_str().unwrap(),
                (threshold * 100.0).round() / 100.0,
            )
        })
        .collect();
    assert_eq!(heads, [("full", 0.25), ("again", 0.75), ("third", 0.5)]);
    let (ok, _, stderr) = trainer(&[
        "export", "--model", out, "--name", "renamed", "--out", grown_out,
    ]);
    assert!(!ok && stderr.contains("is a bundle"), "{stderr}");
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let dir = tempfile::tempdir().unwrap();
    // Query2Label with dropout and augmentation, ROLE with its label estimator: every piece of
    // state that a resume must restore.
    let common = [
        "--head",
        "q2l",
        "--labels",
        "single-positive",
        "--loss",
        "role",
        "--epochs",
        "2",
        "--image-size",
        "128",
        "--max-train-images",
        "96",
        "--batch-size",
        "16",
        "--lr",
        "1e-3",
    ];
    let straight = train(&dir.path().join("straight"), &common);

    let interrupted = dir.path().join("interrupted");
    let mut first = common.to_vec();
    first.extend_from_slice(&["--stop-after-epochs", "1"]);
    train(&interrupted, &first);
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(interrupted.join("checkpoint/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["epochs_done"], 1);
    let mut again = common.to_vec();
    again.push("--resume");
    let resumed = train(&interrupted, &again);

    let (a, b) = (
        metrics_history(&dir.path().join("straight")),
        metrics_history(&interrupted),
    );
    assert_eq!(a.len(), 2);
    assert_same_history(&a, &b, 1e-4, "resumed against uninterrupted");
    assert!(
        (straight["best_map"].as_f64().unwrap() - resumed["best_map"].as_f64().unwrap()).abs()
            < 1e-4
    );

    // Attention maps of the trained Query2Label model: one PNG per shown label, the photo's size.
    let attention = dir.path().join("attention");
    let photo = querylabel_trainer::dataset::sample_dir()
        .join("images")
        .join("COCO_train2014_000000000009.jpg");
    let (ok, stdout, stderr) = trainer(&[
        "predict",
        "--backend",
        "flex",
        "--model",
        interrupted.to_str().unwrap(),
        "--top",
        "3",
        "--attention",
        attention.to_str().unwrap(),
        photo.to_str().unwrap(),
    ]);
    assert!(ok, "trainer predict failed:\n{stderr}");
    assert_eq!(stdout.matches("attention:").count(), 3, "{stdout}");
    let pngs: Vec<_> = std::fs::read_dir(&attention).unwrap().collect();
    assert_eq!(pngs.len(), 3);
    for png in pngs {
        let image = image::open(png.unwrap().path()).unwrap();
        assert_eq!((image.width(), image.height()), (256, 256));
    }
}

#[test]
fn a_diverging_run_stops_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let (ok, _, stderr) = trainer(&[
        "train",
        "--backend",
        "flex",
        "--out",
        run.to_str().unwrap(),
        // A huge learning rate: the loss is NaN within a few steps.
        "--head",
        "linear",
        "--epochs",
        "3",
        "--image-size",
        "64",
        "--max-train-images",
        "64",
        "--batch-size",
        "16",
        "--lr",
        "1e38",
    ]);
    assert!(!ok, "a loss of NaN must not pass silently");
    assert!(stderr.contains("the loss became"), "{stderr}");
    // It says what it kept: no checkpoint yet, or (where the CPU's arithmetic keeps the first
    // epoch finite) the checkpoint of the last finished epoch, which is there; and best/ as the
    // untrained model.
    if !stderr.contains("No checkpoint was written yet") {
        let state: Value = serde_json::from_str(
            &std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap(),
        )
        .unwrap();
        let epochs = state["epochs_done"].as_u64().unwrap();
        assert!(
            stderr.contains(&format!(
                "The last good checkpoint, after epoch {epochs}, is in"
            )),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("holds the best model so far (epoch 0"),
        "{stderr}"
    );
    assert!(run.join("best/model.json").is_file());
    // A learning rate no run can use is refused when the command is read.
    for lr in ["inf", "NaN", "-1e-3"] {
        let flag = format!("--lr={lr}");
        let (ok, _, stderr) = trainer(&["train", "--backend", "flex", &flag]);
        assert!(!ok && stderr.contains("--lr"), "--lr {lr}: {stderr}");
    }
}

#[test]
fn a_rule_between_flags_names_the_flag_and_says_what_to_do() {
    let (ok, _, stderr) = trainer(&[
        "train",
        "--backend",
        "flex",
        "--head",
        "linear",
        "--attention-entropy",
        "0.5",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "error: --attention-entropy 0.5: needs --head q2l: the linear head has no attention\n\
             hint: train --head q2l, or leave out --attention-entropy"
        ),
        "{stderr}"
    );
    let (ok, _, stderr) = trainer(&["train", "--attention-spread-ceiling", "0.7"]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "error: --attention-spread-ceiling 0.7: has no effect without --attention-entropy"
        ),
        "{stderr}"
    );
    let (ok, _, stderr) = trainer(&[
        "train",
        "--attention-entropy",
        "1e-4",
        "--attention-spread-cost",
        "log",
        "--attention-spread-ceiling",
        "0.7",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "error: --attention-spread-ceiling 0.7: the log cost charges every bit of spread\n\
             hint: a ceiling goes with --attention-spread-cost linear"
        ),
        "{stderr}"
    );
}

#[test]
fn eval_names_a_missing_model_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let sample = querylabel_trainer::dataset::sample_dir();
    let (ok, _, stderr) = trainer(&[
        "eval",
        "--backend",
        "flex",
        "--model",
        dir.path().to_str().unwrap(),
        "--data",
        sample.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("no model here") && stderr.contains("trainer train"),
        "{stderr}"
    );
}

/// One epoch of single-positive training on the CSV fixture (four photos, one unlabelled) with
/// `--val-fraction val_fraction`; whether it worked, and what it printed.
fn train_fixture_single_positive(val_fraction: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/csv");
    let (ok, _, stderr) = trainer(&[
        "train",
        "--backend",
        "flex",
        "--data",
        data.to_str().unwrap(),
        "--head",
        "linear",
        "--image-size",
        "32",
        "--batch-size",
        "2",
        "--epochs",
        "1",
        "--labels",
        "single-positive",
        "--val-fraction",
        val_fraction,
        "--out",
        dir.path().join("run").to_str().unwrap(),
    ]);
    (ok, stderr)
}

#[test]
fn single_positive_training_says_how_many_images_have_no_positive() {
    let (ok, stderr) = train_fixture_single_positive("0.25");
    assert!(ok, "{stderr}");
    // The fixture's image with an empty label list is in the training split of seed 1.
    assert!(
        stderr.contains("1 of 3 training images have no positive label"),
        "{stderr}"
    );
}

#[test]
fn val_fraction_zero_trains_on_every_photo_and_says_what_validation_scores() {
    let (ok, stderr) = train_fixture_single_positive("0");
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("every photo trains, and validation scores 20% of them"),
        "{stderr}"
    );
    // All four photos of the fixture train, the one without a label among them.
    assert!(
        stderr.contains("1 of 4 training images have no positive label"),
        "{stderr}"
    );
}
