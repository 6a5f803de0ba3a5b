//! Files and directories written whole, so that nothing is lost: every file is written to a
//! scratch name in its final directory and renamed into place, so a killed process leaves
//! either the old file or the new one, never half of one. A directory whose files belong
//! together (a checkpoint, a best model) is written whole beside the old one and swapped in by
//! [`replace_directory`], so it too is either the old one or the new one. The one writer of
//! scratch names, so that [`remove_stale_temporaries`] recognises every one.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result, TrainerError};

use crate::fault_points::pause_if_asked;

/// What marks a scratch file: `.NAME.tmp-PID`.
const SCRATCH_TAG: &str = ".tmp-";

/// The directory `path` is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// This process's scratch name for `path`: `.NAME.tmp-PID` beside it.
pub fn scratch_path(path: &Path) -> Result<PathBuf> {
    hidden_beside(path, &format!("{SCRATCH_TAG}{}", std::process::id()))
}

/// The hidden name `.NAME{suffix}` beside the file `path`.
pub fn hidden_beside(path: &Path, suffix: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| TrainerError::new("not a file path").in_file(path))?;
    Ok(parent_dir(path).join(format!(".{}{suffix}", name.to_string_lossy())))
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |temporary| {
        fs::write(temporary, bytes).context_in(temporary, "cannot write")
    })
}

/// Makes `path` hold what `write` writes to the scratch file it is given, atomically as
/// [`write_atomically`]: for content too large to assemble in memory first.
pub fn write_atomically_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).context_in(dir, "cannot create")?;
    let temporary = scratch_path(path)?;
    let written = write(&temporary)
        .and_then(|()| {
            fs::File::open(&temporary)
                .and_then(|file| file.sync_all())
                .context_in(&temporary, "cannot write")
        })
        .and_then(|()| fs::rename(&temporary, path).context_in(path, "cannot move into place"));
    if written.is_err() {
        // Leave no half-written scratch file behind.
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// The scratch names of [`replace_directory`] for `dir`: the new directory while it is written,
/// and the old one while it is swapped out.
fn swap_names(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let name = dir
        .file_name()
        .ok_or_else(|| TrainerError::new("not a directory path").in_file(dir))?
        .to_string_lossy()
        .into_owned();
    let parent = parent_dir(dir);
    Ok((
        parent.join(format!(".{name}.new")),
        parent.join(format!(".{name}.old")),
    ))
}

/// Makes the directory `dir` hold exactly what `write` puts into the (empty) directory it is
/// given, all at once: the new content is written and synced beside `dir`, then swapped in with
/// two renames. A kill at any moment leaves either the old directory or the new one, or, between
/// the renames, the old one under its scratch name, which [`recover_directory`] puts back.
pub fn replace_directory(dir: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let (new, old) = swap_names(dir)?;
    recover_directory(dir)?;
    fs::create_dir_all(&new).context_in(&new, "cannot create")?;
    if let Err(e) = write(&new) {
        let _ = fs::remove_dir_all(&new);
        return Err(e);
    }
    sync_directory(&new)?;
    if dir.exists() {
        fs::rename(dir, &old).context_in(dir, "cannot move aside")?;
        pause_if_asked(&format!(
            "swap-{}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    fs::rename(&new, dir).context_in(dir, "cannot move into place")?;
    sync_directory(parent_dir(dir))?;
    if old.exists() {
        fs::remove_dir_all(&old).context_in(&old, "cannot remove")?;
    }
    Ok(())
}

/// Repairs what a killed [`replace_directory`] of `dir` left: a new directory that was never
/// swapped in is removed, and an old one that was moved aside but not replaced is put back.
pub fn recover_directory(dir: &Path) -> Result<()> {
    let (new, old) = swap_names(dir)?;
    if new.exists() {
        fs::remove_dir_all(&new).context_in(&new, "cannot remove this unfinished directory")?;
    }
    if old.exists() {
        if dir.exists() {
            fs::remove_dir_all(&old).context_in(&old, "cannot remove")?;
        } else {
            fs::rename(&old, dir)
                .context_in(dir, format!("cannot restore from {}", old.display()))?;
        }
    }
    Ok(())
}

/// Removes the scratch files of [`write_atomically`] that a killed process left in `dir`
/// (`.NAME.tmp-PID`), and says how many there were.
pub fn remove_stale_temporaries(dir: &Path) -> Result<usize> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(SCRATCH_TAG) && entry.path().is_file() {
            fs::remove_file(entry.path()).context_in(entry.path(), "cannot remove")?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Flushes a directory's entries (its renames) to disk.
fn sync_directory(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .context_in(dir, "cannot sync")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_scratch_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.safetensors");
        write_atomically(&path, b"old").unwrap();
        let failed = write_atomically_with(&path, |temporary| {
            fs::write(temporary, b"half of the new").unwrap();
            Err(TrainerError::new("disk full").in_file(temporary))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["cache.safetensors"]);
        // A write that succeeds replaces it whole.
        write_atomically_with(&path, |temporary| {
            fs::write(temporary, b"new").context_in(temporary, "cannot write")
        })
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }
}
