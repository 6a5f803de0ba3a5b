//! Flags that belong to the `--model` before them: `trainer export --model A --name full
//! --model B --name wan --threshold 0.7` gives A the name `full`, B the name `wan` and B's
//! threshold 0.7. Clap collects every `--name` into one list; their positions on the command
//! line say whose each one is.

use clap::ArgMatches;

use crate::error::{Result, TrainerError};

/// For each `--model` (the argument `models_id`) in order, the value of flag `id` given after
/// it and before the next `--model`, if any. `values` are the flag's parsed values, in command
/// line order. Fails for a flag before the first `--model` or given twice for one model.
pub fn per_model<T: Clone>(
    matches: &ArgMatches,
    models_id: &str,
    id: &str,
    values: &[T],
) -> Result<Vec<Option<T>>> {
    let models: Vec<usize> = matches
        .indices_of(models_id)
        .map(Iterator::collect)
        .unwrap_or_default();
    let mut owned = vec![None; models.len()];
    let positions: Vec<usize> = matches
        .indices_of(id)
        .map(Iterator::collect)
        .unwrap_or_default();
    for (position, value) in positions.into_iter().zip(values) {
        let misplaced = |what: String, hint: String| {
            Err(TrainerError::new(what)
                .at_flag(format!("--{id}"))
                .with_hint(hint))
        };
        let Some(owner) = models.iter().rposition(|&model| model < position) else {
            return misplaced(
                format!("comes before any --{models_id}"),
                format!("give it after the --{models_id} it is for"),
            );
        };
        if owned[owner].is_some() {
            return misplaced(
                format!("is given twice for --{models_id} number {}", owner + 1),
                format!("give it once after each --{models_id}"),
            );
        }
        owned[owner] = Some(value.clone());
    }
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn matches(args: &[&str]) -> ArgMatches {
        let repeated = |id: &'static str| Arg::new(id).long(id).action(ArgAction::Append);
        Command::new("t")
            .arg(repeated("model"))
            .arg(repeated("name"))
            .try_get_matches_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
    }

    fn names(args: &[&str]) -> Result<Vec<Option<String>>> {
        let matches = matches(args);
        let values: Vec<String> = matches
            .get_many::<String>("name")
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        per_model(&matches, "model", "name", &values)
    }

    #[test]
    fn each_flag_belongs_to_the_model_before_it() {
        let got = names(&["--model", "a", "--model", "b", "--name", "wan"]).unwrap();
        assert_eq!(got, [None, Some("wan".to_string())]);
        let got = names(&["--model", "a", "--name", "full", "--model", "b"]).unwrap();
        assert_eq!(got, [Some("full".to_string()), None]);
        assert_eq!(names(&["--model", "a"]).unwrap(), [None]);
    }

    #[test]
    fn a_flag_without_its_model_or_twice_for_one_is_an_error() {
        let error = names(&["--name", "x", "--model", "a"]).unwrap_err();
        assert!(error.to_string().contains("before any --model"), "{error}");
        let error = names(&["--model", "a", "--name", "x", "--name", "y"]).unwrap_err();
        assert!(error.to_string().contains("twice"), "{error}");
    }
}
