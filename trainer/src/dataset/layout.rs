//! Recognising which data set layout a directory holds, so that `--format` is rarely needed.
//!
//! Each layout has a marker that the others lack: COCO's `annotations/instances_*.json`,
//! VOC's `JPEGImages/` beside `ImageSets/Main/` or `Annotations/`, the CSV format's
//! `labels.csv`. When none is found the error lists all three, since the usual cause is
//! pointing one folder too high or too low; when several are found the user must choose.

use std::path::Path;

use super::{DatasetFormat, Split, coco, csv_folder, voc};
use crate::error::{Result, TrainerError};

/// The one layout `dir` holds, or an error that explains what each layout needs.
pub fn detect_format(dir: &Path) -> Result<DatasetFormat> {
    let found: Vec<DatasetFormat> = DatasetFormat::ALL
        .into_iter()
        .filter(|&format| holds(dir, format))
        .collect();
    match found.as_slice() {
        [format] => Ok(*format),
        [] => Err(TrainerError::new(
            "cannot tell which data set layout this folder holds. Looked for:\n\
             \x20 coco: annotations/instances_train2014.json (or val, or 2017) beside train2014/ …\n\
             \x20 voc:  JPEGImages/ with ImageSets/Main/ or Annotations/, in this folder or in \
             VOC2007/, VOC2012/ or VOCdevkit/VOC20xx/ below it\n\
             \x20 csv:  labels.csv (header filename,labels), classes.txt and images/, in this \
             folder or in its train/, test/ or val/ subfolder",
        )
        .in_file(dir)
        .with_hint("point --data at the folder that holds one of these (use --format to say which)")),
        several => Err(TrainerError::new(format!(
            "matches several data set layouts ({})",
            several
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .in_file(dir)
        .with_hint("say which with --format")),
    }
}

/// Whether `dir` has the marker of `format` (not whether the data set in it is valid).
fn holds(dir: &Path, format: DatasetFormat) -> bool {
    match format {
        DatasetFormat::Coco => coco::looks_like_coco(dir),
        DatasetFormat::Voc => !voc::year_folders(dir).is_empty(),
        DatasetFormat::Csv => [Split::Train, Split::Test]
            .into_iter()
            .any(|split| csv_folder::locate(dir, split).is_some()),
    }
}
