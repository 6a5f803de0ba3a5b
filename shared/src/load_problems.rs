//! What went wrong when a tensor store was applied to a model: shape or dtype mismatches,
//! tensors the model needs but the file lacks, and tensors the file has but the model does not
//! use. One list serves the exported-model loader, checkpoints and imported weights.

use std::fmt;

use burn::store::ApplyResult;

/// Problems spelled out when shown; the rest are counted.
const SHOWN: usize = 20;

/// Every problem of one load, in the order errors, missing, unused.
#[derive(Debug)]
pub struct LoadProblems(Vec<String>);

impl LoadProblems {
    /// The problems of `result`, leaving out unused tensors that `ignore_unused` excuses (such
    /// as PyTorch's `num_batches_tracked`).
    pub fn of(result: &ApplyResult, ignore_unused: impl Fn(&str) -> bool) -> Self {
        let errors = result.errors.iter().map(|e| e.to_string());
        let missing = result
            .missing
            .iter()
            .map(|(name, _)| format!("missing tensor '{name}'"));
        let unused = result
            .unused
            .iter()
            .filter(|name| !ignore_unused(name.as_str()))
            .map(|name| format!("unexpected tensor '{name}' (not in the model)"));
        Self(errors.chain(missing).chain(unused).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// One indented line per problem, the first 20 of them, then how many more.
impl fmt::Display for LoadProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .0
            .iter()
            .take(SHOWN)
            .map(|p| format!("  {p}"))
            .collect();
        write!(f, "{}", lines.join("\n"))?;
        match self.0.len().saturating_sub(SHOWN) {
            0 => Ok(()),
            more => write!(f, "\n  ... and {more} more"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(missing: &[&str], unused: &[String]) -> ApplyResult {
        ApplyResult {
            applied: vec![],
            skipped: vec![],
            missing: missing
                .iter()
                .map(|name| (name.to_string(), "Struct:Model".to_string()))
                .collect(),
            unused: unused.to_vec(),
            errors: vec![],
        }
    }

    #[test]
    fn names_missing_and_unexpected_tensors_and_skips_the_excused() {
        let unused = ["bn.num_batches_tracked".to_string(), "fc.extra".to_string()];
        let problems = LoadProblems::of(&result(&["head.weight"], &unused), |name| {
            name.ends_with("num_batches_tracked")
        });
        assert_eq!(problems.len(), 2);
        assert_eq!(
            problems.to_string(),
            "  missing tensor 'head.weight'\n  unexpected tensor 'fc.extra' (not in the model)"
        );
        assert!(LoadProblems::of(&result(&[], &[]), |_| false).is_empty());
    }

    #[test]
    fn shows_twenty_and_counts_the_rest() {
        let unused: Vec<String> = (0..25).map(|i| format!("t{i}")).collect();
        let shown = LoadProblems::of(&result(&[], &unused), |_| false).to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 21);
        assert_eq!(lines[19], "  unexpected tensor 't19' (not in the model)");
        assert_eq!(lines[20], "  ... and 5 more");
    }
}
