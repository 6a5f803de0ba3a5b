//! MS-COCO 2014/2017 in the official layout, read into image-level labels.
//!
//! ```text
//! DIR/annotations/instances_train2014.json   (or …2017; val for Split::Test)
//! DIR/train2014/COCO_train2014_000000000009.jpg   (or DIR/images/train2014/…)
//! ```
//!
//! An image's positive classes are the categories of all its instance annotations (crowd
//! regions included, as pycocotools' `CocoDetection` and the Query2Label and Cole et al. code
//! do). Images without any annotation are dropped, which gives the standard multi-label
//! protocol of 82,081 train2014 / 40,137 val2014 images. Category ids (1…90 with gaps) are
//! mapped to the 80 classes by sorting the file's `categories` by id, and their names are
//! checked against [`LabelSpace::coco80`]. Examples keep the order of the file's `images`.
//!
//! When both years are present 2014 is read, the year most multi-label papers report on
//! (the 2014 and 2017 images are the same photos, split differently).

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use querylabel::labels::LabelSpace;
use serde::Deserialize;

use super::image_check::ensure_images_exist;
use super::{Dataset, DatasetFormat, Example, Split, normalise_labels};
use crate::error::{Context, Place, Result, TrainerError, json_message};

/// Years in order of preference.
pub const YEARS: [&str; 2] = ["2014", "2017"];

/// The annotation file and image folder of one split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CocoSplitFiles {
    pub annotations: PathBuf,
    pub images: PathBuf,
}

/// COCO's name for a split: `train` or `val`.
fn split_prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "val",
    }
}

/// `DIR/annotations/instances_{train,val}{2014,2017}.json` for `split`, 2014 first, with its
/// image folder `DIR/{train,val}{year}` (or `DIR/images/{train,val}{year}`, which is where the
/// image folder is expected when neither exists yet). `None` without an annotation file.
pub fn locate(dir: &Path, split: Split) -> Option<CocoSplitFiles> {
    YEARS.iter().find_map(|year| {
        let folder_name = format!("{}{year}", split_prefix(split));
        let annotations = dir
            .join("annotations")
            .join(format!("instances_{folder_name}.json"));
        if !annotations.is_file() {
            return None;
        }
        let images = [
            dir.join(&folder_name),
            dir.join("images").join(&folder_name),
        ]
        .into_iter()
        .find(|folder| folder.is_dir())
        .unwrap_or_else(|| dir.join(&folder_name));
        Some(CocoSplitFiles {
            annotations,
            images,
        })
    })
}

/// Whether `dir` looks like a COCO download: any `annotations/instances_*{2014,2017}.json`.
pub fn looks_like_coco(dir: &Path) -> bool {
    [Split::Train, Split::Test]
        .into_iter()
        .any(|split| locate(dir, split).is_some())
}

/// Reads `split` of the COCO download in `dir` (see the module documentation).
pub fn read_coco(dir: &Path, split: Split) -> Result<Dataset> {
    let Some(files) = locate(dir, split) else {
        let prefix = split_prefix(split);
        return Err(TrainerError::new(format!(
            "no COCO annotations for the {split} split here: expected \
             annotations/instances_{prefix}2014.json or annotations/instances_{prefix}2017.json \
             beside the image folder {prefix}2014/ or {prefix}2017/"
        ))
        .in_file(dir)
        .with_hint(
            "unzip annotations_trainval2014.zip or annotations_trainval2017.zip here, beside the \
             image folders",
        ));
    };
    if !files.images.is_dir() {
        let annotations = files.annotations.display();
        return Err(
            TrainerError::new(format!("the image folder of {annotations} does not exist"))
                .in_file(&files.images)
                .with_hint("unzip the matching image archive there"),
        );
    }
    let instances = parse_instances(&files.annotations)?;
    let labelled = image_labels(&instances, &files.annotations)?;
    let mut examples = Vec::new();
    let mut origins = Vec::new();
    for (image_index, (image, labels)) in instances.images.iter().zip(labelled).enumerate() {
        if labels.is_empty() {
            continue;
        }
        examples.push(Example {
            path: files.images.join(&image.file_name),
            labels: normalise_labels(labels),
        });
        origins.push((image_index, image.id));
    }
    ensure_images_exist(&examples, &files.annotations, |index| {
        let (image_index, id) = origins[index];
        format!("images[{image_index}], id {id}")
    })?;
    Ok(Dataset {
        label_space: LabelSpace::coco80(),
        examples,
        format: DatasetFormat::Coco,
        split,
        source: files.annotations,
    })
}

/// The parts of an `instances_*.json` that image-level labels need. Every other field
/// (segmentation polygons, boxes, captions, licences) is skipped by the parser without being
/// stored, which keeps a 450 MB file to a few tens of MB in memory.
#[derive(Deserialize)]
pub struct CocoInstances {
    pub images: Vec<CocoImage>,
    pub annotations: Vec<CocoAnnotation>,
    pub categories: Vec<CocoCategory>,
}

#[derive(Deserialize)]
pub struct CocoImage {
    pub id: u64,
    pub file_name: String,
}

#[derive(Deserialize)]
pub struct CocoAnnotation {
    pub image_id: u64,
    pub category_id: u64,
}

#[derive(Deserialize)]
pub struct CocoCategory {
    pub id: u64,
    pub name: String,
}

/// Parses an instances file, streaming from disk; syntax and shape errors name the file and
/// serde_json's line and column.
pub fn parse_instances(path: &Path) -> Result<CocoInstances> {
    let file = File::open(path).context_in(path, "cannot read")?;
    serde_json::from_reader(BufReader::with_capacity(1 << 20, file)).map_err(|error| {
        if error.is_io() {
            return TrainerError::json(path, &error);
        }
        TrainerError::new(format!(
            "invalid COCO annotation file: {}",
            json_message(&error)
        ))
        .at(Place::json(path, &error))
    })
}

/// Maps category ids to class indices of [`LabelSpace::coco80`], checking that the file's
/// categories, sorted by id, are COCO's 80 classes in order.
pub fn category_classes(categories: &[CocoCategory], path: &Path) -> Result<HashMap<u64, usize>> {
    let coco = LabelSpace::coco80();
    let mut by_id: Vec<(usize, &CocoCategory)> = categories.iter().enumerate().collect();
    by_id.sort_by_key(|(_, category)| category.id);
    if let Some(pair) = by_id.windows(2).find(|pair| pair[0].1.id == pair[1].1.id) {
        // The sort is stable: the second of the pair comes later in the file.
        let (first, (second, category)) = (pair[0].0, pair[1]);
        return Err(TrainerError::new(format!(
            "shares id {} with categories[{first}]",
            category.id
        ))
        .at_field(path, format!("categories[{second}]")));
    }
    if by_id.len() != coco.n_classes() {
        return Err(TrainerError::new(format!(
            "{} entries, expected COCO's {} object categories",
            by_id.len(),
            coco.n_classes()
        ))
        .at_field(path, "categories")
        .with_hint("give an instances_*.json file of COCO's annotations"));
    }
    let mut classes = HashMap::new();
    for (class, (position, category)) in by_id.into_iter().enumerate() {
        if coco.index_of(&category.name) != Some(class) {
            return Err(TrainerError::new(format!(
                "id {}, name {:?}, is class {class} when sorted by id, but COCO's class {class} \
                 is {:?}",
                category.id,
                category.name,
                coco.display_name(class).unwrap_or_default()
            ))
            .at_field(path, format!("categories[{position}]")));
        }
        classes.insert(category.id, class);
    }
    Ok(classes)
}

/// Each image's class indices (unsorted, with repeats), in the order of `instances.images`.
fn image_labels(instances: &CocoInstances, path: &Path) -> Result<Vec<Vec<usize>>> {
    let classes = category_classes(&instances.categories, path)?;
    let mut image_positions: HashMap<u64, usize> = HashMap::with_capacity(instances.images.len());
    for (position, image) in instances.images.iter().enumerate() {
        if let Some(earlier) = image_positions.insert(image.id, position) {
            return Err(
                TrainerError::new(format!("repeats id {} of images[{earlier}]", image.id))
                    .at_field(path, format!("images[{position}]")),
            );
        }
    }
    let mut labels = vec![Vec::new(); instances.images.len()];
    for (position, annotation) in instances.annotations.iter().enumerate() {
        let field = |name: &str| format!("annotations[{position}].{name}");
        let Some(&image) = image_positions.get(&annotation.image_id) else {
            return Err(
                TrainerError::new("is not the id of any entry of images").at_field_value(
                    path,
                    field("image_id"),
                    annotation.image_id,
                ),
            );
        };
        let Some(&class) = classes.get(&annotation.category_id) else {
            return Err(
                TrainerError::new("is not the id of any entry of categories").at_field_value(
                    path,
                    field("category_id"),
                    annotation.category_id,
                ),
            );
        };
        labels[image].push(class);
    }
    Ok(labels)
}
