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

/// Runs that differ only in their seed (or in where they ran). Ordered by head, then full
/// labels first, then the single-positive losses in the MLSPL paper's order, then the other
/// options, so that a wider head or focused attention gets a row of its own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Setting {
    head: u8,
    full_labels_last: bool,
    loss_order: usize,
    full_labels: bool,
    loss: &'static str,
    /// Every other option, by name (JSON values as text).
    other: BTreeMap<String, String>,
}

/// Options that say where or from which draw a run ran, not what it trained.
const NOT_A_SETTING: [&str; 3] = ["seed", "backend", "devices"];

impl Setting {
    fn of(options: &TrainOptions) -> Self {
        let full_labels = options.labels == LabelMode::Full;
        let mut other = BTreeMap::new();
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(options) {
            for (name, value) in fields {
                match value {
                    // A group of options (the losses' settings) counts option by option.
                    serde_json::Value::Object(group) => other.extend(
                        group
                            .into_iter()
                            .map(|(name, value)| (name, value.to_string())),
                    ),
                    _ if NOT_A_SETTING.contains(&name.as_str()) => {}
                    value => {
                        other.insert(name, value.to_string());
                    }
                }
            }
        }
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
            other,
        }
    }

    fn head_name(&self) -> &'static str {
        ["linear", "Query2Label"][usize::from(self.head)]
    }

    fn same_head_and_loss(&self, other: &Setting) -> bool {
        (self.head, self.full_labels, self.loss) == (other.head, other.full_labels, other.loss)
    }

    /// The row's name: labels and loss, and the options in which it differs from another row of
    /// the same head and loss (`--q2l-hidden-dim 512`, say).
    fn label(&self, settings: &[&Setting]) -> String {
        let mut label = if self.full_labels {
            format!("Full ({})", self.loss.to_uppercase())
        } else {
            self.loss.to_uppercase()
        };
        let siblings: Vec<&&Setting> = settings
            .iter()
            .filter(|s| s.same_head_and_loss(self))
            .collect();
        for (name, value) in &self.other {
            if siblings.iter().any(|s| s.other.get(name) != Some(value)) {
                label.push_str(&format!(", --{} {value}", name.replace('_', "-")));
            }
        }
        label
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
    // The share compares with the head's full-label row of the same Query2Label width, or with
    // its first full-label row.
    let settings: Vec<&Setting> = groups.keys().collect();
    let full_map = |setting: &Setting| -> Option<f64> {
        let full_rows = || {
            groups
                .iter()
                .filter(|(s, _)| s.head == setting.head && s.full_labels)
        };
        let same_width = |s: &Setting| {
            ["q2l_hidden_dim", "q2l_feedforward_dim"]
                .iter()
                .all(|name| s.other.get(*name) == setting.other.get(*name))
        };
        full_rows()
            .find(|(s, _)| same_width(s))
            .or_else(|| full_rows().next())
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
        let share = full_map(setting)
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
            setting.label(&settings),
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
            .push((setting.label(&settings), points));
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: TrainOptions,
    }

    fn setting(flags: &[&str]) -> Setting {
        let args = ["train"].iter().chain(flags);
        Setting::of(&Cli::try_parse_from(args).expect("valid flags").options)
    }

    #[test]
    fn seeds_share_a_row_and_other_options_get_their_own() {
        let q2l = ["--head", "q2l", "--labels", "full"];
        let seed_2 = setting(&[&q2l[..], &["--seed", "2"]].concat());
        let seed_3 = setting(&[&q2l[..], &["--seed", "3"]].concat());
        assert_eq!(seed_2, seed_3);

        let wide = setting(&[&q2l[..], &["--q2l-hidden-dim", "512"]].concat());
        assert_ne!(seed_2, wide);
        let em = |alpha: &str| {
            setting(&[
                "--labels",
                "single-positive",
                "--loss",
                "em",
                "--em-alpha",
                alpha,
            ])
        };
        let (em_official, em_half) = (em("0.1"), em("0.05"));
        assert_eq!(
            em_half.label(&[&em_official, &em_half]),
            "EM, --em-alpha 0.05",
            "a loss's own setting is named as its flag"
        );
        let role = setting(&["--labels", "single-positive", "--loss", "role"]);
        let settings = [&seed_2, &wide, &role];
        assert_eq!(
            wide.label(&settings),
            "Full (ASL), --q2l-hidden-dim 512",
            "named by the one option in which it differs"
        );
        assert_eq!(seed_2.label(&settings), "Full (ASL), --q2l-hidden-dim 256");
        assert_eq!(
            role.label(&settings),
            "ROLE",
            "alone in its loss: no options named"
        );
    }
}
