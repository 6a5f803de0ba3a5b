//! `trainer report`: the results table of a set of training runs. Runs that differ only in
//! their seed form one row (mean ± sample standard deviation of the best validation mAP, and the
//! CF1/OF1 of that epoch); each head gets a chart of its rows' mean validation mAP per epoch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use querylabel::loss::LossKind;

use crate::checkpoint::read_json;
use crate::error::{Result, TrainerError};
use crate::plots::{Curve, plot_curves};
use crate::run_state::{EpochRecord, TrainingState};
use crate::train_options::{HeadKind, LabelMode, TrainOptions};

/// One finished run.
struct RunResult {
    options: TrainOptions,
    state: TrainingState,
}

impl RunResult {
    fn read(dir: &Path) -> Result<Self> {
        let options: TrainOptions = read_json(&dir.join("options.json"))?;
        let state: TrainingState = read_json(&dir.join("checkpoint").join("state.json"))?;
        if state.best_map.is_none() {
            return Err(TrainerError::new("the run has no finished epoch")
                .in_file(dir)
                .with_hint("train it for an epoch at least (`trainer train --resume` goes on)"));
        }
        if let Some(problem) = metrics_problem(&dir.join("metrics.jsonl"), &state) {
            eprintln!("warning: {problem}; the table uses the run's checkpoint/state.json");
        }
        Ok(Self { options, state })
    }

    /// (mAP, CF1, OF1) of the best epoch.
    fn best(&self) -> (f64, f64, f64) {
        let epoch = self.state.best_epoch.unwrap_or(0);
        let record = self.state.history.iter().find(|r| r.epoch == epoch);
        (
            self.state.best_map.unwrap_or(f64::NAN),
            record.map_or(f64::NAN, |r| r.val_cf1),
            record.map_or(f64::NAN, |r| r.val_of1),
        )
    }
}

/// What is wrong with a run's `metrics.jsonl`, if anything: a line that is not an epoch record
/// (a file cut short or edited), or other epochs than the run's state records.
fn metrics_problem(path: &Path, state: &TrainingState) -> Option<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return Some(format!("cannot read {}: {e}", path.display())),
    };
    let mut epochs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        match serde_json::from_str::<EpochRecord>(line) {
            Ok(record) => epochs.push(record.epoch),
            Err(e) => {
                return Some(format!(
                    "{} line {} is not an epoch record ({e}): the file is damaged or cut short",
                    path.display(),
                    index + 1
                ));
            }
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        return Some(format!(
            "{} ends inside a line: the file is cut short",
            path.display()
        ));
    }
    let recorded: Vec<usize> = state.history.iter().map(|r| r.epoch).collect();
    (epochs != recorded).then(|| {
        format!(
            "{} holds epochs {epochs:?}, but the run's state records {recorded:?}",
            path.display()
        )
    })
}

/// Runs that differ only in their seed. Ordered by head, then full labels first, then the
/// single-positive losses in the MLSPL paper's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Setting {
    head: u8,
    full_labels_last: bool,
    loss_order: usize,
    full_labels: bool,
    loss: &'static str,
}

impl Setting {
    fn of(options: &TrainOptions) -> Self {
        let full_labels = options.labels == LabelMode::Full;
        Self {
            head: match options.head {
                HeadKind::Linear => 0,
                HeadKind::Q2l => 1,
            },
            full_labels_last: !full_labels,
            loss_order: LossKind::ALL
                .iter()
                .position(|&loss| loss == options.loss())
                .unwrap_or(usize::MAX),
            full_labels,
            loss: options.loss().name(),
        }
    }

    fn head_name(self) -> &'static str {
        ["linear", "Query2Label"][usize::from(self.head)]
    }

    fn label(self) -> String {
        if self.full_labels {
            format!("Full ({})", self.loss.to_uppercase())
        } else {
            self.loss.to_uppercase()
        }
    }
}

fn mean_and_spread(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, variance.sqrt())
}

/// Reads the runs, writes one `curves-<head>.png` per head into `plots`, and returns the table
/// as Markdown.
pub fn report(run_dirs: &[PathBuf], plots: &Path) -> Result<String> {
    let mut groups: BTreeMap<Setting, Vec<RunResult>> = BTreeMap::new();
    for dir in run_dirs {
        let run = RunResult::read(dir)?;
        groups
            .entry(Setting::of(&run.options))
            .or_default()
            .push(run);
    }
    if groups.is_empty() {
        return Err(TrainerError::new("no runs given"));
    }
    let full_map = |head: u8| -> Option<f64> {
        groups
            .iter()
            .find(|(s, _)| s.head == head && s.full_labels)
            .map(|(_, runs)| {
                mean_and_spread(&runs.iter().map(|r| r.best().0).collect::<Vec<_>>()).0
            })
    };

    let mut table = String::from(
        "| head | labels / loss | seeds | val mAP | CF1 | OF1 | share of full-label mAP |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut curves: BTreeMap<u8, Vec<Curve>> = BTreeMap::new();
    for (setting, runs) in &groups {
        let best: Vec<(f64, f64, f64)> = runs.iter().map(RunResult::best).collect();
        let (map, spread) = mean_and_spread(&best.iter().map(|b| b.0).collect::<Vec<_>>());
        let (cf1, _) = mean_and_spread(&best.iter().map(|b| b.1).collect::<Vec<_>>());
        let (of1, _) = mean_and_spread(&best.iter().map(|b| b.2).collect::<Vec<_>>());
        let share = full_map(setting.head)
            .map(|full| format!("{:.0}%", 100.0 * map / full))
            .unwrap_or_else(|| "n/a".into());
        let spread = if runs.len() > 1 {
            format!(" ± {spread:.1}")
        } else {
            String::new()
        };
        table.push_str(&format!(
            "| {} | {} | {} | {map:.1}{spread} | {cf1:.1} | {of1:.1} | {share} |\n",
            setting.head_name(),
            setting.label(),
            runs.len()
        ));
        // The mean curve over the seeds, for the epochs every seed reached.
        let epochs = runs
            .iter()
            .map(|r| r.state.history.len())
            .min()
            .unwrap_or(0);
        let points = (0..epochs)
            .map(|e| {
                let maps: Vec<f64> = runs.iter().map(|r| r.state.history[e].val_map).collect();
                ((e + 1) as f64, mean_and_spread(&maps).0)
            })
            .collect();
        curves
            .entry(setting.head)
            .or_default()
            .push((setting.label(), points));
    }
    for (head, head_curves) in &curves {
        let name = ["linear", "q2l"][usize::from(*head)];
        plot_curves(
            &plots.join(format!("curves-{name}.png")),
            &format!(
                "{} head: validation mAP (mean over seeds)",
                ["linear", "Query2Label"][usize::from(*head)]
            ),
            "mAP (%)",
            head_curves,
        )?;
    }
    Ok(table)
}
