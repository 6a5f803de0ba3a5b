//! PASCAL VOC 2007/2012 in the official layout, read into image-level labels over
//! [`LabelSpace::voc20`].
//!
//! ```text
//! VOC2007/ImageSets/Main/trainval.txt           image ids of a split, one per line
//! VOC2007/ImageSets/Main/dog_trainval.txt       "000005 -1": -1 absent, 1 present, 0 difficult
//! VOC2007/Annotations/000005.xml                <object><name>dog</name><difficult>0</difficult>…
//! VOC2007/JPEGImages/000005.jpg
//! ```
//!
//! `DIR` may be the year folder (`VOCdevkit/VOC2007`), the `VOCdevkit` folder holding it, or
//! the folder holding `VOCdevkit`; if that finds both 2007 and 2012 the caller must pick one.
//!
//! Splits (see [`Split`]): [`Split::Test`] is `test` where the year has test labels (VOC2007)
//! and `val` otherwise (VOC2012, whose test labels were never released); [`Split::Train`] is
//! then `trainval` or `train`, so the two never overlap.
//!
//! Labels come from the per-class files `ImageSets/Main/<class>_<split>.txt` when all 20
//! exist (the official classification ground truth), and otherwise from the XML files in
//! `Annotations/`. Examples keep the order of `ImageSets/Main/<split>.txt`.
//!
//! **Difficult objects count as positives.** A "difficult" object is still in the picture;
//! the flag only excuses detectors from finding it. So an image is positive for a class if it
//! has any object of that class, difficult or not: `1` *and* `0` in the per-class files, and
//! every `<object>` in the XML regardless of `<difficult>`. This is what reading the XML
//! annotations gives (the Query2Label/ASL VOC loaders), and both sources agree under it.
//! Cole et al.'s preprocessing instead keeps only `1`, making the few images whose only
//! instances are difficult negatives for that class, a small fraction of VOC's positive
//! labels.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use querylabel::labels::LabelSpace;
use rayon::prelude::*;

use super::image_check::ensure_images_exist;
use super::{Dataset, DatasetFormat, Example, Split, empty_file, normalise_labels};
use crate::error::{Context, Result, TrainerError};

const YEAR_FOLDERS: [&str; 2] = ["VOC2007", "VOC2012"];

/// Whether `dir` is a VOC year folder: `JPEGImages/` with `ImageSets/Main/` or `Annotations/`.
fn is_year_folder(dir: &Path) -> bool {
    dir.join("JPEGImages").is_dir()
        && (dir.join("ImageSets").join("Main").is_dir() || dir.join("Annotations").is_dir())
}

/// The VOC year folders `dir` is or holds (directly or in `VOCdevkit/`).
pub fn year_folders(dir: &Path) -> Vec<PathBuf> {
    if is_year_folder(dir) {
        return vec![dir.to_path_buf()];
    }
    [dir.to_path_buf(), dir.join("VOCdevkit")]
        .iter()
        .flat_map(|parent| YEAR_FOLDERS.iter().map(move |year| parent.join(year)))
        .filter(|folder| is_year_folder(folder))
        .collect()
}

/// The single year folder to read, or an error that says what was found.
fn locate_year_folder(dir: &Path) -> Result<PathBuf> {
    let mut folders = year_folders(dir);
    match folders.len() {
        1 => Ok(folders.remove(0)),
        0 => Err(TrainerError::new(
            "no PASCAL VOC data here: expected a year folder such as VOCdevkit/VOC2007 with \
             JPEGImages/ and ImageSets/Main/ (or Annotations/), or a folder holding it",
        )
        .in_file(dir)),
        _ => Err(TrainerError::new(format!(
            "holds several VOC years ({})",
            folders
                .iter()
                .map(|folder| folder.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .in_file(dir)
        .with_hint("pass the one to use as the data directory (--data …/VOC2007)")),
    }
}

/// The VOC split names for `split` in `year_folder`: `(Split::Train name, Split::Test name)`
/// is `("trainval", "test")` where test labels exist, else `("train", "val")`.
pub fn split_name(year_folder: &Path, split: Split) -> &'static str {
    let is_2012 = year_folder
        .file_name()
        .is_some_and(|name| name.to_string_lossy().contains("2012"));
    let main = year_folder.join("ImageSets").join("Main");
    let has_test =
        !is_2012 && (main.join("test.txt").is_file() || main.join("aeroplane_test.txt").is_file());
    match (split, has_test) {
        (Split::Train, true) => "trainval",
        (Split::Test, true) => "test",
        (Split::Train, false) => "train",
        (Split::Test, false) => "val",
    }
}

/// Reads `split` of the VOC data in `dir` (see the module documentation).
pub fn read_voc(dir: &Path, split: Split) -> Result<Dataset> {
    let root = locate_year_folder(dir)?;
    let voc_split = split_name(&root, split);
    let main = root.join("ImageSets").join("Main");
    let label_space = LabelSpace::voc20();
    let image_list = read_image_list(&main, voc_split, &label_space)?;
    let image_ids = &image_list.ids;

    let class_files: Vec<PathBuf> = label_space
        .class_names()
        .iter()
        .map(|class| main.join(format!("{class}_{voc_split}.txt")))
        .collect();
    let annotations = root.join("Annotations");
    let (labels, source) = if class_files.iter().all(|file| file.is_file()) {
        (labels_from_class_files(&class_files, image_ids)?, main)
    } else if annotations.is_dir() {
        (
            labels_from_xml(&annotations, image_ids, &label_space)?,
            annotations,
        )
    } else {
        return Err(TrainerError::new(format!(
            "no labels for VOC split '{voc_split}': expected the 20 files \
             ImageSets/Main/<class>_{voc_split}.txt or the Annotations/ folder"
        ))
        .in_file(&root));
    };

    let images = root.join("JPEGImages");
    let examples: Vec<Example> = image_ids
        .iter()
        .zip(labels)
        .map(|(id, labels)| Example {
            path: images.join(format!("{id}.jpg")),
            labels: normalise_labels(labels),
        })
        .collect();
    ensure_images_exist(&examples, &image_list.file, |index| {
        format!("image id {}", image_ids[index])
    })?;
    Ok(Dataset {
        label_space,
        examples,
        format: DatasetFormat::Voc,
        split,
        source,
    })
}

/// The image ids of a split and the file they were read from.
struct ImageList {
    file: PathBuf,
    ids: Vec<String>,
}

/// The split's image ids from `<split>.txt` or, failing that, from the first column of the
/// first per-class file.
fn read_image_list(main: &Path, voc_split: &str, label_space: &LabelSpace) -> Result<ImageList> {
    let list = main.join(format!("{voc_split}.txt"));
    let fallback = label_space
        .class_names()
        .iter()
        .map(|class| main.join(format!("{class}_{voc_split}.txt")))
        .find(|file| file.is_file());
    let Some(list) = Some(list).filter(|list| list.is_file()).or(fallback) else {
        return Err(TrainerError::new(format!(
            "no image list for VOC split '{voc_split}': neither this file nor a per-class file \
             <class>_{voc_split}.txt beside it exists"
        ))
        .in_file(main.join(format!("{voc_split}.txt"))));
    };
    let text = fs::read_to_string(&list).context_in(&list, "cannot read")?;
    let mut ids = Vec::new();
    let mut seen = HashMap::new();
    for (line_number, line) in (1..).zip(text.lines()) {
        let Some(id) = line.split_whitespace().next() else {
            continue;
        };
        if let Some(earlier) = seen.insert(id.to_owned(), line_number) {
            return Err(TrainerError::new(format!(
                "image id {id} is listed again (first on line {earlier})"
            ))
            .at_line(&list, line_number));
        }
        ids.push(id.to_owned());
    }
    if ids.is_empty() {
        return Err(empty_file(&list, "one image id per line"));
    }
    Ok(ImageList { file: list, ids })
}

/// Labels from the 20 per-class files, `1` and `0` (difficult) both positive.
fn labels_from_class_files(
    class_files: &[PathBuf],
    image_ids: &[String],
) -> Result<Vec<Vec<usize>>> {
    let position_of: HashMap<&str, usize> = image_ids
        .iter()
        .enumerate()
        .map(|(position, id)| (id.as_str(), position))
        .collect();
    let mut labels = vec![Vec::new(); image_ids.len()];
    for (class, file) in class_files.iter().enumerate() {
        let text = fs::read_to_string(file).context_in(file, "cannot read")?;
        let mut listed = vec![false; image_ids.len()];
        for (line_number, line) in (1..).zip(text.lines()) {
            let at_line = |what: String| Err(TrainerError::new(what).at_line(file, line_number));
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (id, flag) = match fields.as_slice() {
                [] => continue,
                [id, flag] => (*id, *flag),
                _ => return at_line(format!("expected '<image id> <-1|0|1>', found {line:?}")),
            };
            let Some(&position) = position_of.get(id) else {
                return at_line(format!("image id {id} is not in the split's image list"));
            };
            if std::mem::replace(&mut listed[position], true) {
                return at_line(format!("image id {id} is listed again"));
            }
            match flag {
                "1" | "0" => labels[position].push(class),
                "-1" => {}
                _ => return at_line(format!("label {flag:?} for image {id} is not -1, 0 or 1")),
            }
        }
        if let Some(position) = listed.iter().position(|&was_listed| !was_listed) {
            return Err(TrainerError::new(format!(
                "image id {} of the split's image list is missing ({} of {} images are)",
                image_ids[position],
                listed.iter().filter(|&&was_listed| !was_listed).count(),
                image_ids.len()
            ))
            .in_file(file)
            .with_hint(
                "a per-class file has a line '<image id> <-1|0|1>' for every image of the split",
            ));
        }
    }
    Ok(labels)
}

/// Labels from `Annotations/<id>.xml`, every `<object>` positive whether difficult or not.
fn labels_from_xml(
    annotations: &Path,
    image_ids: &[String],
    label_space: &LabelSpace,
) -> Result<Vec<Vec<usize>>> {
    image_ids
        .par_iter()
        .map(|id| read_annotation(&annotations.join(format!("{id}.xml")), label_space))
        .collect()
}

/// The classes of the objects in one VOC annotation file.
pub fn read_annotation(path: &Path, label_space: &LabelSpace) -> Result<Vec<usize>> {
    let text = fs::read_to_string(path).context_in(path, "cannot read")?;
    let document = roxmltree::Document::parse(&text).map_err(|error| {
        let line = error.pos().row.into();
        TrainerError::new("invalid XML")
            .at_line(path, line)
            .caused_by(error)
    })?;
    let at_node = |node: roxmltree::Node, what: String| {
        let line = document.text_pos_at(node.range().start).row.into();
        Err(TrainerError::new(what).at_line(path, line))
    };
    let root = document.root_element();
    if !root.has_tag_name("annotation") {
        let name = root.tag_name().name();
        return at_node(
            root,
            format!("root element is <{name}>, expected <annotation>"),
        );
    }
    let mut classes = Vec::new();
    for object in root.children().filter(|node| node.has_tag_name("object")) {
        let name = object
            .children()
            .find(|node| node.has_tag_name("name"))
            .and_then(|node| node.text())
            .map(str::trim)
            .filter(|name| !name.is_empty());
        let Some(name) = name else {
            return at_node(object, "<object> without a <name>".into());
        };
        let Some(class) = label_space.index_of(name) else {
            let space = label_space.name();
            return at_node(
                object,
                format!("<object><name> '{name}' is not a class of {space}"),
            );
        };
        classes.push(class);
    }
    Ok(classes)
}
