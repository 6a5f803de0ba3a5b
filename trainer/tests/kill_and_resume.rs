//! The crash test: a real training run is killed with SIGKILL at chosen moments (inside an
//! epoch, while a checkpoint is being written, between the renames that swap it in, during
//! validation, while the best model is replaced), then resumed with `--resume`. After every kill
//! the checkpoint is whole or absent, and every resumed run ends with exactly the epochs, losses
//! and mAP of one that was never interrupted. `QUERYLABEL_PAUSE_AT` (trainer/src/fault_points.rs)
//! stops the trainer at the moment, so that the kill lands there for certain.

mod common;

use std::path::Path;

use common::{assert_same_history, kill_at_fault_point, metrics_history, train};
use serde_json::Value;

/// Query2Label with dropout and augmentation, ROLE with its label estimator, and the weights'
/// moving average: every piece of state a resume must restore. 96 training photos in batches of
/// 32 give 3 steps an epoch, at a learning rate where the first epoch beats the untrained model
/// (10.2 against 8.4 mAP), so that it replaces the best model (the moment `swap-best:1`); with
/// 48 photos the first epoch's mAP was noise around the untrained model's.
const RUN: &[&str] = &[
    "--head",
    "q2l",
    "--q2l-hidden-dim",
    "64",
    "--q2l-heads",
    "2",
    "--q2l-encoder-layers",
    "0",
    "--q2l-decoder-layers",
    "1",
    "--q2l-feedforward-dim",
    "128",
    "--labels",
    "single-positive",
    "--loss",
    "role",
    "--ema-decay",
    "0.9",
    "--epochs",
    "2",
    "--image-size",
    "64",
    "--max-train-images",
    "96",
    "--batch-size",
    "32",
    "--lr",
    "1e-2",
];

/// Starts `trainer train` on `run` with `extra` flags, waits until it reaches the fault point
/// `pause_at`, and kills it there with SIGKILL.
fn kill_at(run: &Path, pause_at: &str, extra: &[&str]) {
    let out = run.to_str().unwrap();
    let args = [&["train", "--backend", "flex", "--out", out], RUN, extra].concat();
    kill_at_fault_point(&args, pause_at);
}

/// What a killed run left: a checkpoint whose state and files agree, or none at all.
fn assert_whole_or_absent(run: &Path, moment: &str) {
    let checkpoint = run.join("checkpoint");
    if !checkpoint.exists() {
        return;
    }
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(checkpoint.join("state.json"))
            .unwrap_or_else(|e| panic!("{moment}: a checkpoint without its state: {e}")),
    )
    .unwrap();
    for file in ["model.bpk", "optimizer.bpk", "ema.bpk", "estimator.bpk"] {
        assert!(
            checkpoint.join(file).is_file(),
            "{moment}: the checkpoint of {state} lacks {file}"
        );
    }
}

/// Scratch files of the atomic writes and directory swaps.
fn leftovers(run: &Path) -> Vec<String> {
    std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-") || name.ends_with(".new") || name.ends_with(".old"))
        .collect()
}

#[test]
fn a_run_killed_at_any_moment_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let straight_dir = dir.path().join("straight");
    let straight = train(&straight_dir, RUN);
    let expected = metrics_history(&straight_dir);
    assert_eq!(expected.len(), 2);

    // With a checkpoint every 2 steps: at step 2 (inside epoch 1), at the end of epoch 1 (step
    // 3), at step 4 (inside epoch 2) and at the end. Each checkpoint writes 4 files.
    let every = ["--checkpoint-every", "2"];
    let moments: &[(&str, &[&str])] = &[
        // Before any checkpoint: the run starts over from its saved options.
        ("step:1", &every),
        // Inside epoch 2, after its mid-epoch checkpoint: resumes at step 4.
        ("step:5", &every),
        // During the validation of epoch 1: resumes inside epoch 1, after step 2.
        ("validation:1", &every),
        // Halfway through writing the second checkpoint: the first one stays.
        ("checkpoint-file:6", &every),
        // Between moving the old checkpoint aside and moving the new one in.
        ("swap-checkpoint:1", &every),
        // While best/ is replaced, with epoch-end checkpoints only.
        ("swap-best:1", &[]),
    ];
    for (moment, extra) in moments {
        let run = dir.path().join(moment.replace(':', "-"));
        kill_at(&run, moment, extra);
        assert_whole_or_absent(&run, moment);

        let mut again = RUN.to_vec();
        again.extend_from_slice(extra);
        again.push("--resume");
        let resumed = train(&run, &again);
        assert!(
            leftovers(&run).is_empty(),
            "{moment}: {:?}",
            leftovers(&run)
        );
        let context = format!("{moment}: after the kill against uninterrupted");
        assert_same_history(&expected, &metrics_history(&run), 1e-6, &context);
        assert_eq!(resumed["best_epoch"], straight["best_epoch"], "{moment}");
    }
}
