//! Resuming a run: the saved options are the run's, so a flag given again must agree with them.
//! Only `--epochs` may change, and only upwards (to train a finished run on); anything else that
//! differs is refused with the list of differences, rather than silently ignored.

use serde::Serialize;
use serde_json::Value;

use crate::error::{Context, Result, TrainerError};

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

/// Refuses to resume when a flag in `given` asks for another value than the saved run's
/// options have (`--epochs` excepted: see [`resumed_epochs`]). `saved` and `asked` are the run's
/// options and the command line's, of any type that serialises as `options.json` does.
pub fn refuse_changed_flags<T: Serialize>(saved: &T, asked: &T, given: &[GivenFlag]) -> Result<()> {
    let comparing = "cannot compare the run's options with the command line's";
    let saved_json = serde_json::to_value(saved).context(comparing)?;
    let asked_json = serde_json::to_value(asked).context(comparing)?;
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
        return Err(TrainerError::new(format!(
            "continues a run with its own options, and these differ:\n  {}",
            differences.join("\n  ")
        ))
        .at_flag("--resume")
        .with_hint(
            "drop them to resume (only --epochs may be raised), or train a new run with another \
             --out",
        ));
    }
    Ok(())
}

/// The epochs of a resumed run: the saved run's, or `asked` when `--epochs` is given and is no
/// fewer (training a finished run on).
pub fn resumed_epochs(saved: usize, asked: usize, given: &[GivenFlag]) -> Result<usize> {
    if !given.iter().any(|g| g.key == "epochs") || asked == saved {
        return Ok(saved);
    }
    if asked < saved {
        return Err(TrainerError::new(format!(
            "is fewer than the run's {saved}; a resumed run can only be trained longer"
        ))
        .at_flag_value("--epochs", asked)
        .with_hint(format!("give --epochs {saved} or more, or leave it out")));
    }
    eprintln!(
        "training the run on to {asked} epochs (it was set to {saved}); the learning-rate schedule \
         stretches to the new length"
    );
    Ok(asked)
}
