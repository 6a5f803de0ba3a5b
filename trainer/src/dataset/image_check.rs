//! Checking that every image an annotation names is on disk.
//!
//! A missing image is an error, not a warning: dropping it quietly would change the data set
//! behind a reported number (and a half-extracted archive would "work"). The message counts
//! the missing files, shows the first few with where each was named, and says what to do.
//! Whether a present file decodes is left to the image loader.

use std::path::Path;

use rayon::prelude::*;

use super::Example;
use crate::error::{Result, TrainerError};

/// How many missing files an error message lists by name.
const LISTED_MISSING: usize = 5;

/// Fails if any example's image file does not exist. `origin(i)` says where example `i` was
/// named (`"line 7"`, `"images[12]"`) in `source`, the annotation file.
pub fn ensure_images_exist(
    examples: &[Example],
    source: &Path,
    origin: impl Fn(usize) -> String + Sync,
) -> Result<()> {
    // Many thousands of stat calls: in parallel, which matters on network file systems.
    let missing: Vec<usize> = examples
        .par_iter()
        .enumerate()
        .filter(|(_, example)| !example.path.is_file())
        .map(|(index, _)| index)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = missing
        .iter()
        .take(LISTED_MISSING)
        .map(|&index| format!("  {} ({})", examples[index].path.display(), origin(index)))
        .collect();
    let more = match missing.len().saturating_sub(LISTED_MISSING) {
        0 => String::new(),
        rest => format!("\n  … and {rest} more"),
    };
    Err(TrainerError::new(format!(
        "{} of {} images named in this file do not exist:\n{}{more}",
        missing.len(),
        examples.len(),
        listed.join("\n"),
    ))
    .in_file(source)
    .with_hint(
        "put the image files in place (is the image archive fully extracted?) or remove their \
         entries from the annotations",
    ))
}
