//! Resuming a run: the saved options are the run's, so a flag given again must agree with them.
//! Only `--epochs` may change, and only upwards (to train a finished run on); anything else that
//! differs is refused with the list of differences, rather than silently ignored.

use anyhow::{Result, bail};
use serde_json::Value;

use crate::train::TrainOptions;

/// A flag given on the command line of a resumed run, and where its value lives in
/// `options.json` (a dotted path for nested settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenFlag {
    pub flag: String,
    pub key: String,
}

/// The flags that may differ from the saved run's.
const MAY_CHANGE: &[&str] = &["epochs"];

fn lookup<'a>(options: &'a Value, key: &str) -> &'a Value {
    key.split('.').fold(options, |value, part| &value[part])
}

/// The options to resume with: the saved ones, with `--epochs` raised if asked. `asked` holds
/// the command line's options and `given` the flags it named.
pub fn resumed_options(
    saved: TrainOptions,
    asked: &TrainOptions,
    given: &[GivenFlag],
) -> Result<TrainOptions> {
    let saved_json = serde_json::to_value(&saved)?;
    let asked_json = serde_json::to_value(asked)?;
    let mut differences = Vec::new();
    for GivenFlag { flag, key } in given {
        let (before, now) = (lookup(&saved_json, key), lookup(&asked_json, key));
        if before != now && !MAY_CHANGE.contains(&key.as_str()) {
            differences.push(format!(
                "--{flag}: the run has {before}, the command line {now}"
            ));
        }
    }
    if !differences.is_empty() {
        bail!(
            "--resume continues a run with its own options, and these differ:\n  {}\nDrop them \
             to resume (only --epochs may be raised), or train a new run with another --out",
            differences.join("\n  ")
        );
    }
    let mut options = saved;
    if given.iter().any(|g| g.key == "epochs") {
        if asked.epochs < options.epochs {
            bail!(
                "--epochs {} is fewer than the run's {}; a resumed run can only be trained longer",
                asked.epochs,
                options.epochs
            );
        }
        if asked.epochs > options.epochs {
            eprintln!(
                "training the run on to {} epochs (it was set to {}); the learning-rate schedule \
                 stretches to the new length",
                asked.epochs, options.epochs
            );
        }
        options.epochs = asked.epochs;
    }
    Ok(options)
}
