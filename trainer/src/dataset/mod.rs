//! Multi-label data sets on disk: which layout a directory holds, and reading it into image
//! paths with their positive classes.
//!
//! Three layouts are understood, each in its own module:
//!
//! - [`DatasetFormat::Coco`]: the official MS-COCO 2014/2017 download
//!   (`annotations/instances_train2014.json` beside `train2014/`), see [`coco`].
//! - [`DatasetFormat::Voc`]: PASCAL VOC 2007/2012 (`VOCdevkit/VOC2007`), see [`voc`].
//! - [`DatasetFormat::Csv`]: a folder with `labels.csv`, `classes.txt` and `images/`, the
//!   project's own simple format (and that of the shipped [sample](sample_dir)), see
//!   [`csv_folder`].
//!
//! Reading is strict on purpose: a number in a paper is only as good as the labels behind it,
//! so malformed input is an error that names the file and the line (or JSON field, or XML
//! element), and an annotation that refers to an image file which does not exist is an error
//! too (see [`image_check`]) rather than a silently smaller data set. Whether an existing
//! image *decodes* is the image loader's business, not this module's.

pub mod coco;
pub mod csv_folder;
pub mod image_check;
pub mod layout;
pub mod voc;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use querylabel::labels::LabelSpace;

use crate::atomic_files::parent_dir;
use crate::error::{Result, TrainerError};

pub use layout::detect_format;

/// One image and its positive classes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Where the image file is (the data set directory joined with the annotation's name).
    pub path: PathBuf,
    /// Indices into the data set's [`LabelSpace`], ascending and without repeats. Empty for an
    /// image with no positive class (possible in the CSV format only).
    pub labels: Vec<usize>,
}

/// The on-disk layouts [`open_dataset`] reads.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// Official MS-COCO 2014/2017: `annotations/instances_*.json` and image folders.
    Coco,
    /// PASCAL VOC 2007/2012: `ImageSets/Main`, `Annotations/` and `JPEGImages/`.
    Voc,
    /// `labels.csv` (`filename,labels`), `classes.txt` and `images/`.
    Csv,
}

impl DatasetFormat {
    pub const ALL: [DatasetFormat; 3] =
        [DatasetFormat::Coco, DatasetFormat::Voc, DatasetFormat::Csv];

    /// The lower-case name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            DatasetFormat::Coco => "coco",
            DatasetFormat::Voc => "voc",
            DatasetFormat::Csv => "csv",
        }
    }
}

impl fmt::Display for DatasetFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetFormat {
    type Err = TrainerError;

    fn from_str(text: &str) -> Result<Self> {
        let wanted = text.trim().to_ascii_lowercase();
        DatasetFormat::ALL
            .into_iter()
            .find(|format| format.name() == wanted)
            .ok_or_else(|| {
                TrainerError::new(format!(
                    "unknown data set format {text:?}: expected coco, voc or csv"
                ))
            })
    }
}

/// Which part of a data set to read.
///
/// `Test` is the held-out part that papers report on, which for the public benchmarks is not
/// always called "test": COCO's `val2014`/`val2017`, VOC2007's `test`, and VOC2012's `val`
/// (VOC2012 never released test labels). `Train` is the part that does not overlap it: COCO's
/// `train*`, VOC2007's `trainval`, VOC2012's `train`. A validation set for model selection is
/// carved out of `Train` with [`querylabel::single_positive::train_validation_split`] and
/// [`Dataset::subset`], as Cole et al. do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Train,
    #[value(alias = "val", alias = "validation")]
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = TrainerError;

    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" | "val" | "validation" => Ok(Split::Test),
            _ => Err(TrainerError::new(format!(
                "unknown split {text:?}: expected train or test (alias val)"
            ))),
        }
    }
}

/// Images with their positive classes, read from one split of a data set directory.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The classes, in model output order. `coco80`/`voc20` for those benchmarks (and for a
    /// CSV folder whose `classes.txt` lists exactly those classes in order).
    pub label_space: LabelSpace,
    /// In the order of the annotation source (see each format's module).
    pub examples: Vec<Example>,
    pub format: DatasetFormat,
    pub split: Split,
    /// The file or folder the labels were read from, for messages and run records
    /// (`…/annotations/instances_train2014.json`, `…/VOC2007/ImageSets/Main`, `…/labels.csv`).
    pub source: PathBuf,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    pub fn n_classes(&self) -> usize {
        self.label_space.n_classes()
    }

    /// The labels as a row-major `len() × n_classes()` multi-hot matrix (1.0 = positive), the
    /// form the losses, metrics and [`querylabel::single_positive`] take.
    pub fn label_matrix(&self) -> Vec<f32> {
        let n_classes = self.n_classes();
        let mut matrix = vec![0.0; self.examples.len() * n_classes];
        for (row, example) in matrix.chunks_exact_mut(n_classes).zip(&self.examples) {
            for &class in &example.labels {
                row[class] = 1.0;
            }
        }
        matrix
    }

    /// How many images have each class as a positive.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes()];
        for example in &self.examples {
            for &class in &example.labels {
                counts[class] += 1;
            }
        }
        counts
    }

    /// Mean number of positive classes per image (0 for an empty data set); the expected
    /// positive count that EPR and ROLE are given.
    pub fn mean_labels_per_image(&self) -> f64 {
        if self.examples.is_empty() {
            return 0.0;
        }
        let total: usize = self
            .examples
            .iter()
            .map(|example| example.labels.len())
            .sum();
        total as f64 / self.examples.len() as f64
    }

    /// The examples at `indices` (in that order; repeats allowed), with everything else kept,
    /// e.g. the two halves of a [`train_validation_split`](querylabel::single_positive::train_validation_split).
    ///
    /// # Panics
    /// If an index is out of range, which is a bug in the caller.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let examples = indices
            .iter()
            .map(|&index| {
                self.examples.get(index).cloned().unwrap_or_else(|| {
                    panic!(
                        "subset index {index} is out of range for {} examples",
                        self.examples.len()
                    )
                })
            })
            .collect();
        Dataset {
            label_space: self.label_space.clone(),
            examples,
            format: self.format,
            split: self.split,
            source: self.source.clone(),
        }
    }
}

impl fmt::Display for Dataset {
    /// One line for logs: `coco train (…/instances_train2014.json): 82081 images, 80 classes
    /// (coco80), 2.93 labels per image`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}): {} images, {} classes ({}), {:.2} labels per image",
            self.format,
            self.split,
            self.source.display(),
            self.len(),
            self.n_classes(),
            self.label_space.name(),
            self.mean_labels_per_image()
        )
    }
}

/// Reads `split` of the data set in `dir`.
///
/// With `format` left out the layout is recognised from what `dir` holds (see
/// [`detect_format`]); when nothing matches, the error lists what each layout needs, so the
/// user can see which file is missing. Every reader checks that the images it names exist.
pub fn open_dataset(dir: &Path, format: Option<DatasetFormat>, split: Split) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(
            TrainerError::new("data set directory does not exist or is not a directory")
                .in_file(dir)
                .with_hint("point --data at the folder that holds the data set"),
        );
    }
    let format = match format {
        Some(format) => format,
        None => detect_format(dir)?,
    };
    let dataset = match format {
        DatasetFormat::Coco => coco::read_coco(dir, split),
        DatasetFormat::Voc => voc::read_voc(dir, split),
        DatasetFormat::Csv => csv_folder::read_csv_folder(dir, split),
    }?;
    // Every use of a data set (training, evaluation, extraction) needs labelled photos; without
    // them mAP is undefined, and that would be the first thing said, far from the cause.
    let labelled = dataset
        .examples
        .iter()
        .filter(|e| !e.labels.is_empty())
        .count();
    if labelled == 0 {
        let found = match (dataset.len(), format) {
            (0, DatasetFormat::Coco) => "no image with an object annotation (COCO images \
                                         without annotations are left out)"
                .to_string(),
            (0, _) => "no image".to_string(),
            (n, _) => format!("{n} images, but not one label"),
        };
        return Err(TrainerError::new(format!(
            "the {split} split has {found}; a data set to train, evaluate or extract needs \
             labelled photos"
        ))
        .in_file(&dataset.source)
        .with_hint(labelling_hint(format)));
    }
    Ok(dataset)
}

/// Where a data set of `format` says which classes a photo shows.
fn labelling_hint(format: DatasetFormat) -> &'static str {
    match format {
        DatasetFormat::Coco => {
            "the instances file lists the photos' objects under \"annotations\"; is it the file \
             of these photos?"
        }
        DatasetFormat::Voc => {
            "ImageSets/Main/<class>_<split>.txt mark a photo's classes with 1 (or 0), and each \
             Annotations/<id>.xml lists its <object>s"
        }
        DatasetFormat::Csv => {
            "give each photo's classes in the labels column of labels.csv: names from \
             classes.txt, space-separated"
        }
    }
}

/// An annotation file without content, named in its folder (`labels.csv is empty`), with a
/// hint on what it should hold.
pub(crate) fn empty_file(path: &Path, holds: &str) -> TrainerError {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    TrainerError::new(format!("{name} is empty"))
        .in_file(parent_dir(path))
        .with_hint(format!("{name} holds {holds}"))
}

/// The small sample data set shipped with the source (`trainer/sample`, CSV format: 331
/// real COCO train2014 photos at 256×256 covering all 80 classes), which `trainer train`
/// uses when no `--data` is given. Its `README.md` says how it was chosen.
pub fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample")
}

/// Sorts and deduplicates class indices into the form [`Example::labels`] promises.
pub(crate) fn normalise_labels(mut labels: Vec<usize>) -> Vec<usize> {
    labels.sort_unstable();
    labels.dedup();
    labels
}
