//! Running the `trainer` binary from integration tests.

#![allow(dead_code)] // each test crate uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The real coco2014-mini photos (the folder holding `train/` and `demo/`): beside the checkout
/// in `../shared`, as every developer's machine and CI have them, or where
/// `QUERYLABEL_COCO2014_MINI` points. A test that needs them fails where they are missing,
/// rather than passing without looking.
pub fn coco2014_mini() -> PathBuf {
    let dir = std::env::var_os("QUERYLABEL_COCO2014_MINI").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/coco2014-mini"),
        PathBuf::from,
    );
    assert!(
        dir.join("train/labels.csv").is_file(),
        "{} holds no train/labels.csv: point QUERYLABEL_COCO2014_MINI at the coco2014-mini folder",
        dir.display()
    );
    dir
}

pub fn trainer(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .output()
        .expect("the trainer binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the trainer with `args` until it reaches the fault point `pause_at`
/// (`QUERYLABEL_PAUSE_AT`, trainer/src/fault_points.rs), and kills it there with SIGKILL.
pub fn kill_at_fault_point(args: &[&str], pause_at: &str) {
    use querylabel_trainer::fault_points::{PAUSE_AT, PAUSED};
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let mut child = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .env(PAUSE_AT, pause_at)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the trainer starts");
    let mut said = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let paused = line.contains(PAUSED);
        said.push(line);
        if paused {
            child.kill().unwrap();
            child.wait().unwrap();
            return;
        }
    }
    let status = child.wait().unwrap();
    panic!(
        "the trainer ended ({status}) without reaching {pause_at}:\n{}",
        said.join("\n")
    );
}

pub fn last_json_line(stdout: &str) -> Value {
    let line = stdout.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"))
}

pub fn train(out: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["train", "--backend", "flex", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = trainer(&args);
    assert!(ok, "trainer train failed:\n{stderr}");
    last_json_line(&stdout)
}

/// `trainer eval` of `model` on the shipped sample's validation split of seed 1 (the split
/// `train` holds out with its default seed); returns its JSON summary line.
pub fn eval_on_sample_validation_split(model: &Path) -> Value {
    eval_on_validation_split(model, &querylabel_trainer::dataset::sample_dir())
}

/// `trainer eval` of `model` on the seed-1 validation split of the data set in `data`; returns
/// its (last head's) JSON summary line.
pub fn eval_on_validation_split(model: &Path, data: &Path) -> Value {
    eval_with(model, data, &[])
}

/// `trainer eval` of `model` on the seed-1 split of `data`, with `extra` flags (`--head`,
/// `--val-fraction`); returns its last JSON line.
pub fn eval_with(model: &Path, data: &Path, extra: &[&str]) -> Value {
    eval_all_with(model, data, &[&["--run-split-seed", "1"], extra].concat())
}

/// `trainer eval` of `model` on every photo of `data`, with `extra` flags; returns its last
/// JSON line.
pub fn eval_all_with(model: &Path, data: &Path, extra: &[&str]) -> Value {
    eval_every_head_with(model, data, extra)
        .pop()
        .expect("trainer eval printed a JSON line")
}

/// `trainer eval` of `model` on every photo of `data`, with `extra` flags; returns the JSON
/// line it prints after each head's report, in the bundle's head order.
pub fn eval_every_head_with(model: &Path, data: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "eval",
        "--backend",
        "flex",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = trainer(&args);
    assert!(ok, "trainer eval of {} failed:\n{stderr}", model.display());
    stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// The epoch records of a run's `metrics.jsonl`.
pub fn metrics_history(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Asserts that two runs' epoch records have the same losses, mAP and EMA mAP, to `tolerance`
/// relative (absolute below 1); `context` says which comparison failed.
pub fn assert_same_history(expected: &[Value], got: &[Value], tolerance: f64, context: &str) {
    assert_eq!(got.len(), expected.len(), "{context}");
    for (x, y) in expected.iter().zip(got) {
        for key in ["train_loss", "val_mAP", "val_EMA_mAP"] {
            let (x, y) = (x[key].as_f64().unwrap(), y[key].as_f64().unwrap());
            assert!(
                (x - y).abs() <= tolerance * x.abs().max(1.0),
                "{context}: {key} {y}, expected {x}"
            );
        }
    }
}
