//! The CSV folder format: the simplest way to bring your own data.
//!
//! ```text
//! DIR/classes.txt   one class name per line, in model output order (blank lines ignored)
//! DIR/labels.csv    header `filename,labels`; one row per image; labels are space-separated
//!                   class names from classes.txt (`_` for spaces, e.g. `traffic_light`),
//!                   possibly empty for an image with no positive class
//! DIR/images/       the image files, named relative to this folder
//! ```
//!
//! Other columns may follow (they are ignored); columns are found by their header names.
//! `DIR` may also be a parent holding one folder per split: `train/` for [`Split::Train`],
//! `test/` or else `val/` for [`Split::Test`]. A `DIR` that itself holds `labels.csv` is one
//! split already and is read whatever split is asked for. Examples keep the row order.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use querylabel::labels::{LabelSpace, LabelSpaceError};

use super::image_check::ensure_images_exist;
use super::{Dataset, DatasetFormat, Example, Split, empty_file, normalise_labels};
use crate::error::{Context, Result, TrainerError};

pub const LABELS_FILE: &str = "labels.csv";
pub const CLASSES_FILE: &str = "classes.txt";
pub const IMAGES_DIR: &str = "images";

/// The folder holding `labels.csv` for `split`: `dir` itself, or its `train/`, `test/` or
/// `val/` subfolder. `None` if there is none.
pub fn locate(dir: &Path, split: Split) -> Option<PathBuf> {
    if dir.join(LABELS_FILE).is_file() {
        return Some(dir.to_path_buf());
    }
    let subfolders: &[&str] = match split {
        Split::Train => &["train"],
        Split::Test => &["test", "val"],
    };
    subfolders
        .iter()
        .map(|name| dir.join(name))
        .find(|folder| folder.join(LABELS_FILE).is_file())
}

/// Reads the CSV folder in `dir` (see the module documentation).
pub fn read_csv_folder(dir: &Path, split: Split) -> Result<Dataset> {
    let Some(folder) = locate(dir, split) else {
        let subfolder = match split {
            Split::Train => "train/",
            Split::Test => "test/ or val/",
        };
        return Err(TrainerError::new(format!(
            "no {LABELS_FILE} here (nor in its {subfolder} subfolder)"
        ))
        .in_file(dir)
        .with_hint(format!(
            "the CSV format needs {LABELS_FILE}, {CLASSES_FILE} and {IMAGES_DIR}/"
        )));
    };
    let classes_path = folder.join(CLASSES_FILE);
    let labels_path = folder.join(LABELS_FILE);
    let images_dir = folder.join(IMAGES_DIR);
    let label_space = read_classes(&classes_path)?;
    if !images_dir.is_dir() {
        return Err(
            TrainerError::new(format!("no {IMAGES_DIR}/ folder beside {LABELS_FILE}"))
                .in_file(&folder)
                .with_hint(format!(
                    "the CSV format keeps the image files in {IMAGES_DIR}/, named in \
                     {LABELS_FILE} relative to it"
                )),
        );
    }
    let rows = read_labels(&labels_path, &label_space)?;
    let examples: Vec<Example> = rows
        .iter()
        .map(|row| Example {
            path: images_dir.join(&row.filename),
            labels: row.labels.clone(),
        })
        .collect();
    ensure_images_exist(&examples, &labels_path, |index| {
        format!("line {}", rows[index].line)
    })?;
    Ok(Dataset {
        label_space,
        examples,
        format: DatasetFormat::Csv,
        split,
        source: labels_path,
    })
}

/// Reads `classes.txt`. A list equal to COCO's 80 or VOC's 20 classes (in order) gets that
/// label space's name, so that models trained on it are recognised as such; any other list
/// is named after its folder.
pub fn read_classes(path: &Path) -> Result<LabelSpace> {
    let text = fs::read_to_string(path).context_in(path, "cannot read")?;
    let mut names: Vec<(usize, String)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let name = line.trim_start_matches('\u{feff}').trim();
        if !name.is_empty() {
            names.push((index + 1, name.to_owned()));
        }
    }
    if names.is_empty() {
        return Err(empty_file(path, "one class name per line"));
    }
    let known = [LabelSpace::coco80(), LabelSpace::voc20()];
    for space in known {
        let same = space.n_classes() == names.len()
            && names
                .iter()
                .enumerate()
                .all(|(index, (_, name))| space.index_of(name) == Some(index));
        if same {
            return Ok(space);
        }
    }
    let space_name = path
        .parent()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "custom".to_owned());
    LabelSpace::new(space_name, names.iter().map(|(_, name)| name.clone())).map_err(|error| {
        let (problem, culprit) = match &error {
            LabelSpaceError::DuplicateClassName(name) => ("repeats an earlier class", Some(name)),
            LabelSpaceError::InvalidClassName(name) => ("is not a valid class name", Some(name)),
            LabelSpaceError::NoClasses => ("has no classes", None),
        };
        // The culprit is the last line with that text (a repeat is reported at its second use).
        match culprit.and_then(|name| names.iter().rev().find(|(_, candidate)| candidate == name)) {
            Some((line, name)) => {
                TrainerError::new(format!("{name:?} {problem}")).at_line(path, *line as u64)
            }
            None => TrainerError::new(problem).in_file(path),
        }
    })
}

/// One data row of `labels.csv`.
struct LabelRow {
    line: u64,
    filename: String,
    labels: Vec<usize>,
}

/// Reads and checks `labels.csv` against the label space (see the module documentation).
fn read_labels(path: &Path, label_space: &LabelSpace) -> Result<Vec<LabelRow>> {
    let file = fs::File::open(path).context_in(path, "cannot read")?;
    // Headers are handled here rather than by the csv crate, so that every complaint about
    // them can carry a line number, and field counts are checked per row for the same reason.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let mut records = reader.records();
    let header = match records.next() {
        None => {
            return Err(empty_file(
                path,
                "the header line 'filename,labels', then a line per image",
            ));
        }
        Some(record) => record.map_err(|error| csv_error(path, error))?,
    };
    let header_text = header.iter().collect::<Vec<_>>().join(",");
    let (filename_column, labels_column) = header_columns(path, &header, &header_text)?;

    let mut rows: Vec<LabelRow> = Vec::new();
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    for record in records {
        let record = record.map_err(|error| csv_error(path, error))?;
        let line = line_of(&record);
        if record.len() != header.len() {
            return Err(TrainerError::new(format!(
                "expected {} fields as in the header '{header_text}', found {}",
                header.len(),
                record.len()
            ))
            .at_line(path, line)
            .with_hint("a filename containing a comma must be quoted: \"a,b.jpg\",dog"));
        }
        let filename = record[filename_column].trim();
        check_filename(filename)
            .map_err(|problem| TrainerError::new(problem).at_line(path, line))?;
        if let Some(earlier) = first_line_of.insert(filename.to_owned(), line) {
            return Err(TrainerError::new(format!(
                "{filename:?} is listed again (first on line {earlier})"
            ))
            .at_line(path, line)
            .with_hint("give each image one line, with all its labels"));
        }
        let labels = row_labels(path, line, &record[labels_column], label_space)?;
        rows.push(LabelRow {
            line,
            filename: filename.to_owned(),
            labels,
        });
    }
    Ok(rows)
}

/// The positions of the `filename` and `labels` columns in the header line.
fn header_columns(
    path: &Path,
    header: &csv::StringRecord,
    header_text: &str,
) -> Result<(usize, usize)> {
    let column = |wanted: &str| {
        header.iter().position(|name| {
            name.trim_start_matches('\u{feff}')
                .trim()
                .eq_ignore_ascii_case(wanted)
        })
    };
    match (column("filename"), column("labels")) {
        (Some(filename), Some(labels)) => Ok((filename, labels)),
        (filename, _) => {
            let missing = if filename.is_none() {
                "filename"
            } else {
                "labels"
            };
            Err(TrainerError::new(format!(
                "missing column '{missing}' in header '{header_text}'"
            ))
            .at_line(path, line_of(header))
            .with_hint("the first line is the header 'filename,labels' (other columns may follow)"))
        }
    }
}

/// The class indices of one row's space-separated labels, sorted and without repeats.
fn row_labels(path: &Path, line: u64, field: &str, label_space: &LabelSpace) -> Result<Vec<usize>> {
    let mut labels = Vec::new();
    for label in field.split_whitespace() {
        let Some(index) = label_space.index_of(label) else {
            return Err(TrainerError::new(format!(
                "unknown label '{label}' (not in {CLASSES_FILE})"
            ))
            .at_line(path, line)
            .with_hint(format!(
                "labels are class names of {CLASSES_FILE}, space-separated, with _ for a \
                 space (traffic_light); add the class to {CLASSES_FILE} or correct the label"
            )));
        };
        labels.push(index);
    }
    Ok(normalise_labels(labels))
}

/// A filename must name a file inside `images/`: relative, without `..`.
fn check_filename(filename: &str) -> Result<(), String> {
    if filename.is_empty() {
        return Err("empty filename".to_owned());
    }
    let escapes = Path::new(filename)
        .components()
        .any(|part| !matches!(part, Component::Normal(_)));
    if escapes {
        return Err(format!(
            "filename {filename:?} must be a plain path relative to {IMAGES_DIR}/ (no leading /, no ..)"
        ));
    }
    Ok(())
}

fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

/// The csv crate's error, placed in the file and, where it knows it, on the line.
fn csv_error(path: &Path, error: csv::Error) -> TrainerError {
    let line = match error.kind() {
        csv::ErrorKind::Utf8 { pos: Some(pos), .. } => Some(pos.line()),
        csv::ErrorKind::UnequalLengths { pos: Some(pos), .. } => Some(pos.line()),
        csv::ErrorKind::Deserialize { pos: Some(pos), .. } => Some(pos.line()),
        _ => None,
    };
    let what = if error.is_io_error() {
        "cannot read"
    } else {
        "not valid CSV"
    };
    let placed = match line {
        Some(line) => TrainerError::new(what).at_line(path, line),
        None => TrainerError::new(what).in_file(path),
    };
    placed.caused_by(error)
}
