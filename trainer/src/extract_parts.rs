//! A killed `trainer extract` continues where it stopped. Every `--part-seconds` (after whole
//! batches) the extraction writes what it has gathered since the last part to a part file (a
//! feature cache of those photos, written atomically) in `.NAME.partial/` beside the cache;
//! the same command run again reads the parts back and extracts only the photos after them.
//! The finished cache replaces the parts. What an extraction computes (its options, but for the
//! device and the part interval, and the photos' count) is recorded in the directory, and a
//! different command is refused there rather than mixed in: its parts would not belong.
//!
//! Parts end on whole batches, so the photos after them are batched as in a run that was never
//! killed, and the finished cache is the same byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use half::f16;
use serde::Serialize;
use serde_json::{Value, json};

use crate::atomic_files::hidden_beside;
use crate::checkpoint::{read_json, write_json};
use crate::error::{Context, Result, TrainerError};
use crate::feature_cache::{FeatureCache, FeatureCacheHeader, write_cache};

const RECORD: &str = "extraction.json";
const PART_PREFIX: &str = "part-";
const PART_SUFFIX: &str = ".safetensors";

/// The parts of one extraction, on disk beside its cache.
pub struct ExtractionParts {
    dir: PathBuf,
}

impl ExtractionParts {
    /// The parts directory of the cache `out`, how many photos (data-set positions) the parts
    /// an earlier run of the same extraction left there cover, and those parts in order (none
    /// for a fresh one). The extraction is its `options` (those that decide the features, as
    /// they serialise) over `photos` photos; a directory of another extraction is an error that
    /// says how it differs and what to do.
    pub fn open(
        out: &Path,
        options: &impl Serialize,
        photos: usize,
    ) -> Result<(Self, usize, Vec<FeatureCache>)> {
        let record = json!({ "options": options, "photos": photos });
        let parts = Self {
            dir: hidden_beside(out, ".partial")?,
        };
        let record_path = parts.dir.join(RECORD);
        if !record_path.is_file() {
            fs::create_dir_all(&parts.dir).context_in(&parts.dir, "cannot create")?;
            write_json(&record_path, &record)?;
            return Ok((parts, 0, Vec::new()));
        }
        let recorded: Value = read_json(&record_path)?;
        if recorded != record {
            return Err(TrainerError::new(format!(
                "holds a killed extraction with other settings: {}",
                differences(&recorded, &record)
            ))
            .in_file(&parts.dir)
            .with_hint(
                "run the extraction again as it was started to finish it, or delete the \
                 directory to start this one",
            ));
        }
        let mut found = Vec::new();
        for entry in fs::read_dir(&parts.dir).context_in(&parts.dir, "cannot read")? {
            let name = entry
                .context_in(&parts.dir, "cannot read")?
                .file_name()
                .to_string_lossy()
                .into_owned();
            let range = name
                .strip_prefix(PART_PREFIX)
                .and_then(|rest| rest.strip_suffix(PART_SUFFIX))
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(first, end)| Some((first.parse().ok()?, end.parse().ok()?)));
            if let Some((first, end)) = range {
                found.push((first, end, parts.dir.join(&name)));
            }
        }
        found.sort();
        let mut expected_first = 0;
        let mut caches = Vec::with_capacity(found.len());
        for (first, end, path) in found {
            if first != expected_first || end <= first {
                return Err(TrainerError::new(format!(
                    "parts do not follow one another: photo {expected_first} was expected next"
                ))
                .in_file(&path)
                .with_hint("delete the directory to start the extraction again"));
            }
            caches.push(FeatureCache::read(&path)?);
            expected_first = end;
        }
        Ok((parts, expected_first, caches))
    }

    /// Writes the part of photos `first..end` (data-set positions), atomically: a cache of
    /// `header`'s photos with these `features` and `labels`.
    pub fn write(
        &self,
        (first, end): (usize, usize),
        header: &FeatureCacheHeader,
        features: &[f16],
        labels: &[u8],
    ) -> Result<()> {
        let name = format!("{PART_PREFIX}{first:010}-{end:010}{PART_SUFFIX}");
        write_cache(&self.dir.join(name), header, features, labels)
    }

    /// Removes the parts once the cache they made is written.
    pub fn remove(self) -> Result<()> {
        fs::remove_dir_all(&self.dir).context_in(&self.dir, "cannot remove")
    }
}

/// "views 3 (was 1), view_seed 2 (was 1)", for the refusal.
fn differences(recorded: &Value, now: &Value) -> String {
    let flat = |record: &Value| -> serde_json::Map<String, Value> {
        let mut fields = record["options"].as_object().cloned().unwrap_or_default();
        fields.insert("photos".into(), record["photos"].clone());
        fields
    };
    let (recorded, now) = (flat(recorded), flat(now));
    now.iter()
        .filter(|(key, value)| recorded.get(*key) != Some(value))
        .map(|(key, value)| {
            let was = recorded.get(key).unwrap_or(&Value::Null);
            format!("{key} {value} (was {was})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
