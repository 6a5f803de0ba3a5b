//! The data set layer: each layout read from small fixtures (`tests/fixtures/`), layout
//! detection, error messages that locate bad input, the real coco2014-mini set, and the
//! shipped sample (including that it is what its documented selection rule gives).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

mod common;

use querylabel::labels::LabelSpace;
use querylabel_trainer::dataset::{
    Dataset, DatasetFormat, Split, detect_format, open_dataset, sample_dir,
};
use querylabel_trainer::error::Result;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A writable copy of a fixture, to break in one place.
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let target = temp.path().join(name);
    copy_tree(&fixture(name), &target);
    (temp, target)
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Each example as (file name relative to `images_dir`, class names).
fn named_examples(dataset: &Dataset, images_dir: &Path) -> Vec<(String, Vec<String>)> {
    dataset
        .examples
        .iter()
        .map(|example| {
            let name = example
                .path
                .strip_prefix(images_dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let labels = example
                .labels
                .iter()
                .map(|&class| dataset.label_space.class_name(class).unwrap().to_owned())
                .collect();
            (name, labels)
        })
        .collect()
}

fn expected(rows: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    rows.iter()
        .map(|(name, labels)| {
            (
                name.to_string(),
                labels.iter().map(|label| label.to_string()).collect(),
            )
        })
        .collect()
}

/// The error's full chain as one string.
fn error_text(result: Result<Dataset>) -> String {
    match result {
        Ok(dataset) => panic!("expected an error, read {dataset}"),
        Err(error) => format!("{error:#}"),
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "{part:?} missing from the error:\n{message}"
        );
    }
}

// ---------------------------------------------------------------- COCO

#[test]
fn coco_maps_category_ids_with_gaps_and_drops_unannotated_images() {
    let dir = fixture("coco");
    let train = open_dataset(&dir, None, Split::Train).unwrap();
    assert_eq!(train.format, DatasetFormat::Coco);
    assert_eq!(train.label_space, LabelSpace::coco80());
    assert!(
        train
            .source
            .ends_with("annotations/instances_train2014.json")
    );
    // Image 30 has no annotation; image 9 has person twice and dog (id 18 → class 16);
    // tv (id 72) is class 62, hair drier (89, a crowd region) 78, toothbrush (90) 79.
    assert_eq!(
        named_examples(&train, &dir.join("train2014")),
        expected(&[
            ("COCO_train2014_000000000009.jpg", &["person", "dog"]),
            ("COCO_train2014_000000000025.jpg", &["tv", "toothbrush"]),
            ("COCO_train2014_000000000034.jpg", &["hair_drier"]),
        ])
    );
    assert_eq!(train.examples[0].labels, vec![0, 16]);
    assert_eq!(train.examples[2].labels, vec![78]);

    let test = open_dataset(&dir, Some(DatasetFormat::Coco), Split::Test).unwrap();
    assert!(test.source.ends_with("annotations/instances_val2014.json"));
    assert_eq!(
        named_examples(&test, &dir.join("val2014")),
        expected(&[
            ("COCO_val2014_000000000042.jpg", &["car", "stop_sign"]),
            ("COCO_val2014_000000000073.jpg", &["traffic_light"]),
        ])
    );
}

#[test]
fn coco_syntax_error_names_file_line_and_column() {
    let (_temp, dir) = fixture_copy("coco");
    let file = dir.join("annotations/instances_train2014.json");
    let text = fs::read_to_string(&file).unwrap();
    // Break line 5 (the fixture is indented one value per line).
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[4] = format!("{} oops", lines[4]);
    fs::write(&file, lines.join("\n")).unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &[
            "instances_train2014.json line 5 column",
            "invalid COCO annotation file",
        ],
    );
}

#[test]
fn coco_missing_field_is_reported() {
    let (_temp, dir) = fixture_copy("coco");
    let file = dir.join("annotations/instances_val2014.json");
    fs::write(
        &file,
        r#"{"images": [{"id": 1, "file_name": "a.jpg"}], "categories": []}"#,
    )
    .unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Test));
    assert_mentions(
        &message,
        &[
            "instances_val2014.json line 1 column",
            "missing field `annotations`",
        ],
    );
}

#[test]
fn coco_checks_categories_and_annotation_references() {
    let (_temp, dir) = fixture_copy("coco");
    let file = dir.join("annotations/instances_train2014.json");
    let original = fs::read_to_string(&file).unwrap();

    let renamed = original.replace("\"traffic light\"", "\"traffic signal\"");
    fs::write(&file, renamed).unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &[
            "instances_train2014.json",
            "categories[",
            "id 10",
            "traffic signal",
        ],
    );

    // Category id 12 is one of COCO's gaps.
    let mut json: serde_json::Value = serde_json::from_str(&original).unwrap();
    json["annotations"][3]["category_id"] = 12.into();
    fs::write(&file, json.to_string()).unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(&message, &["annotations[3].category_id 12"]);

    let mut json: serde_json::Value = serde_json::from_str(&original).unwrap();
    json["annotations"][1]["image_id"] = 777.into();
    fs::write(&file, json.to_string()).unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(&message, &["annotations[1].image_id 777"]);
}

#[test]
fn coco_missing_image_is_an_error_naming_it() {
    let (_temp, dir) = fixture_copy("coco");
    fs::remove_file(dir.join("train2014/COCO_train2014_000000000025.jpg")).unwrap();
    // An image without annotations is not needed.
    fs::remove_file(dir.join("train2014/COCO_train2014_000000000030.jpg")).unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &[
            "1 of 3 images named in",
            "instances_train2014.json",
            "COCO_train2014_000000000025.jpg (images[1], id 25)",
        ],
    );
}

// ---------------------------------------------------------------- VOC

/// The VOC fixture's labels. Image 000005's dog and 000004's first car are difficult; the
/// convention counts difficult objects as positives.
fn voc_expected(split: Split) -> Vec<(String, Vec<String>)> {
    match split {
        Split::Train => expected(&[
            ("000005.jpg", &["chair", "dog"]),
            ("000007.jpg", &["car"]),
            ("000009.jpg", &["horse", "person"]),
        ]),
        Split::Test => expected(&[("000001.jpg", &["dog", "person"]), ("000004.jpg", &["car"])]),
    }
}

#[test]
fn voc_reads_per_class_files_from_any_level_of_the_devkit() {
    let year = fixture("voc/VOCdevkit/VOC2007");
    for dir in [fixture("voc"), fixture("voc/VOCdevkit"), year.clone()] {
        assert_eq!(
            detect_format(&dir).unwrap(),
            DatasetFormat::Voc,
            "{}",
            dir.display()
        );
        for split in [Split::Train, Split::Test] {
            let dataset = open_dataset(&dir, None, split).unwrap();
            assert_eq!(dataset.label_space, LabelSpace::voc20());
            assert!(dataset.source.ends_with("ImageSets/Main"));
            assert_eq!(
                named_examples(&dataset, &year.join("JPEGImages")),
                voc_expected(split)
            );
        }
    }
}

#[test]
fn voc_reads_xml_annotations_with_the_same_result() {
    let year = fixture("voc-xml-only/VOC2007");
    for split in [Split::Train, Split::Test] {
        let from_xml =
            open_dataset(&fixture("voc-xml-only"), Some(DatasetFormat::Voc), split).unwrap();
        assert!(from_xml.source.ends_with("Annotations"));
        assert_eq!(
            named_examples(&from_xml, &year.join("JPEGImages")),
            voc_expected(split)
        );
        let from_text = open_dataset(&fixture("voc"), None, split).unwrap();
        assert_eq!(from_xml.label_matrix(), from_text.label_matrix());
    }
}

#[test]
fn voc_bad_class_file_line_is_reported() {
    let (_temp, dir) = fixture_copy("voc");
    let file = dir.join("VOCdevkit/VOC2007/ImageSets/Main/dog_trainval.txt");
    fs::write(&file, "000005  0\n000007 -1\n000009 2\n").unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(&message, &["dog_trainval.txt line 3", "\"2\"", "000009"]);

    fs::write(&file, "000005  0\n000007 -1\n").unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(&message, &["dog_trainval.txt", "000009", "missing"]);
}

#[test]
fn voc_bad_xml_names_file_and_line() {
    let (_temp, dir) = fixture_copy("voc-xml-only");
    let file = dir.join("VOC2007/Annotations/000007.xml");
    let original = fs::read_to_string(&file).unwrap();
    fs::write(
        &file,
        original.replace("<name>car</name>", "<name>cra</name>"),
    )
    .unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(&message, &["000007.xml line 6", "'cra'", "voc20"]);

    fs::write(&file, original.replace("</annotation>", "")).unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(&message, &["000007.xml line", "invalid XML"]);
}

#[test]
fn voc_with_two_years_asks_which() {
    let (temp, _dir) = fixture_copy("voc");
    let devkit = temp.path().join("voc/VOCdevkit");
    copy_tree(&devkit.join("VOC2007"), &devkit.join("VOC2012"));
    let message = error_text(open_dataset(
        &devkit,
        Some(DatasetFormat::Voc),
        Split::Train,
    ));
    assert_mentions(&message, &["several VOC years", "VOC2007", "VOC2012"]);
    // VOC2012 has no test labels: its test split is val.
    let message = error_text(open_dataset(&devkit.join("VOC2012"), None, Split::Test));
    assert_mentions(&message, &["val.txt"]);
}

// ---------------------------------------------------------------- CSV

#[test]
fn csv_reads_labels_in_row_order_with_empty_and_quoted_rows() {
    let dir = fixture("csv");
    let dataset = open_dataset(&dir, None, Split::Train).unwrap();
    assert_eq!(dataset.format, DatasetFormat::Csv);
    assert_eq!(dataset.label_space.name(), "csv");
    assert_eq!(
        dataset.label_space.class_names(),
        ["cat", "dog", "hot_dog", "traffic_light"]
    );
    assert_eq!(
        named_examples(&dataset, &dir.join("images")),
        expected(&[
            ("a.jpg", &["cat", "dog"]),
            ("b.jpg", &[]),
            ("sub/c.jpg", &["dog", "hot_dog", "traffic_light"]),
            ("d,1.jpg", &["dog"]),
        ])
    );
    #[rustfmt::skip]
    let matrix = vec![
        1.0, 1.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
        0.0, 1.0, 1.0, 1.0,
        0.0, 1.0, 0.0, 0.0,
    ];
    assert_eq!(dataset.label_matrix(), matrix);
    assert_eq!(dataset.class_counts(), vec![1, 3, 1, 1]);
    assert!((dataset.mean_labels_per_image() - 1.5).abs() < 1e-12);

    let subset = dataset.subset(&[3, 0]);
    assert_eq!(
        subset.examples,
        vec![dataset.examples[3].clone(), dataset.examples[0].clone()]
    );
    assert_eq!(subset.label_space, dataset.label_space);
    assert_eq!(
        subset.label_matrix(),
        [&matrix[12..16], &matrix[0..4]].concat()
    );
}

/// A copy of the CSV fixture with `labels.csv` replaced.
fn csv_with_labels(labels_csv: &str) -> (tempfile::TempDir, PathBuf) {
    let (temp, dir) = fixture_copy("csv");
    fs::write(dir.join("labels.csv"), labels_csv).unwrap();
    (temp, dir)
}

#[test]
fn csv_unknown_label_names_file_line_and_label() {
    let (_temp, dir) = csv_with_labels("filename,labels\na.jpg,dog\nb.jpg,cat zebr\n");
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &["labels.csv line 3: unknown label 'zebr' (not in classes.txt)"],
    );
}

#[test]
fn the_trainer_names_the_file_and_line_of_a_bad_label_and_says_what_to_do() {
    let (temp, dir) = csv_with_labels("filename,labels\na.jpg,dog\nb.jpg,cat dgo\n");
    let cache = temp.path().join("features.safetensors");
    let (ok, _, stderr) = common::trainer(&[
        "extract",
        "--backend",
        "flex",
        "--data",
        dir.to_str().unwrap(),
        "--out",
        cache.to_str().unwrap(),
    ]);
    assert!(!ok && !cache.exists(), "{stderr}");
    let error = format!(
        "error: {} line 3: unknown label 'dgo' (not in classes.txt)\n",
        dir.join("labels.csv").display()
    );
    let (_, after) = stderr
        .split_once(&error)
        .unwrap_or_else(|| panic!("{error:?} missing from:\n{stderr}"));
    assert!(
        after.starts_with("hint: labels are class names of classes.txt"),
        "{stderr}"
    );
}

#[test]
fn csv_header_problems_are_reported_on_line_one() {
    let (_temp, dir) = csv_with_labels("filename,tags\na.jpg,dog\n");
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &[
            "labels.csv line 1: missing column 'labels'",
            "filename,tags",
        ],
    );

    let (_temp, dir) = csv_with_labels("");
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(&message, &["labels.csv is empty", "filename,labels"]);
}

#[test]
fn csv_row_problems_name_their_line() {
    let (_temp, dir) = csv_with_labels("filename,labels\na.jpg,dog\nb.jpg,cat,dog\n");
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &["labels.csv line 3: expected 2 fields", "found 3"],
    );

    let (_temp, dir) = csv_with_labels("filename,labels\na.jpg,dog\nb.jpg,cat\na.jpg,\n");
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &["labels.csv line 4", "listed again (first on line 2)"],
    );

    let (_temp, dir) = csv_with_labels("filename,labels\n../a.jpg,dog\n");
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(&message, &["labels.csv line 2", "relative to images/"]);

    let (_temp, dir) = csv_with_labels("filename,labels\na.jpg,dog\ngone.jpg,cat\n");
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &["1 of 2 images named in", "labels.csv", "gone.jpg (line 3)"],
    );
}

#[test]
fn csv_class_list_problems_name_their_line() {
    let (_temp, dir) = fixture_copy("csv");
    fs::write(dir.join("classes.txt"), "cat\ndog\n\nDog\n").unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &["classes.txt line 4", "\"Dog\" repeats an earlier class"],
    );

    fs::write(dir.join("classes.txt"), "\n\n").unwrap();
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(&message, &["classes.txt is empty"]);
}

#[test]
fn csv_split_subfolders_are_found() {
    let temp = tempfile::tempdir().unwrap();
    copy_tree(&fixture("csv"), &temp.path().join("train"));
    copy_tree(&fixture("csv"), &temp.path().join("val"));
    fs::write(
        temp.path().join("val/labels.csv"),
        "filename,labels\nb.jpg,cat\n",
    )
    .unwrap();
    let train = open_dataset(temp.path(), None, Split::Train).unwrap();
    let test = open_dataset(temp.path(), None, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (4, 1));
    assert!(test.source.ends_with("val/labels.csv"));
}

// ---------------------------------------------------------------- layout detection

#[test]
fn layouts_are_recognised() {
    assert_eq!(
        detect_format(&fixture("coco")).unwrap(),
        DatasetFormat::Coco
    );
    assert_eq!(
        detect_format(&fixture("voc-xml-only")).unwrap(),
        DatasetFormat::Voc
    );
    assert_eq!(detect_format(&fixture("csv")).unwrap(), DatasetFormat::Csv);
}

#[test]
fn unrecognised_directory_explains_every_layout() {
    let empty = tempfile::tempdir().unwrap();
    let message = format!("{:#}", detect_format(empty.path()).unwrap_err());
    assert_mentions(
        &message,
        &[
            "cannot tell which data set layout",
            "instances_train2014.json",
            "JPEGImages/",
            "labels.csv",
            "--format",
        ],
    );
    let message = error_text(open_dataset(
        &empty.path().join("nowhere"),
        None,
        Split::Train,
    ));
    assert_mentions(&message, &["does not exist"]);
}

#[test]
fn ambiguous_directory_asks_for_a_format() {
    let (_temp, dir) = fixture_copy("coco");
    copy_tree(&fixture("csv"), &dir);
    let message = error_text(open_dataset(&dir, None, Split::Train));
    assert_mentions(
        &message,
        &["several data set layouts (coco, csv)", "--format"],
    );
    // Naming the format resolves it.
    assert_eq!(
        open_dataset(&dir, Some(DatasetFormat::Csv), Split::Train)
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn a_named_format_that_is_not_there_says_what_it_needs() {
    let message = error_text(open_dataset(
        &fixture("csv"),
        Some(DatasetFormat::Coco),
        Split::Train,
    ));
    assert_mentions(
        &message,
        &[
            "no COCO annotations",
            "annotations/instances_train2014.json",
        ],
    );
    let message = error_text(open_dataset(
        &fixture("coco"),
        Some(DatasetFormat::Csv),
        Split::Train,
    ));
    assert_mentions(&message, &["no labels.csv", "classes.txt"]);
}

#[test]
fn formats_and_splits_parse_and_print() {
    for format in DatasetFormat::ALL {
        assert_eq!(format.to_string().parse::<DatasetFormat>().unwrap(), format);
    }
    assert_eq!(
        "COCO".parse::<DatasetFormat>().unwrap(),
        DatasetFormat::Coco
    );
    assert!("yolo".parse::<DatasetFormat>().is_err());
    assert_eq!("val".parse::<Split>().unwrap(), Split::Test);
    assert_eq!(Split::Train.to_string(), "train");
    use clap::ValueEnum;
    assert_eq!(
        DatasetFormat::from_str("voc", false).unwrap(),
        DatasetFormat::Voc
    );
    assert_eq!(Split::from_str("validation", false).unwrap(), Split::Test);
}

#[test]
fn fixture_images_are_real_jpegs() {
    let dataset = open_dataset(&fixture("csv"), None, Split::Train).unwrap();
    for example in &dataset.examples {
        assert_eq!(image::image_dimensions(&example.path).unwrap(), (8, 8));
    }
}

// ---------------------------------------------------------------- real data

#[test]
fn real_coco2014_mini_train() {
    let mini = common::coco2014_mini();
    // The parent holds train/ (and demo/): the split picks the subfolder.
    let dataset = open_dataset(&mini, None, Split::Train).unwrap();
    assert_eq!(dataset.format, DatasetFormat::Csv);
    assert!(dataset.source.ends_with("train/labels.csv"));
    assert_eq!(dataset.len(), 5030);
    assert_eq!(dataset.label_space, LabelSpace::coco80());
    let mean = dataset.mean_labels_per_image();
    assert!((mean - 2.93).abs() < 0.005, "mean labels per image {mean}");
    let counts = dataset.class_counts();
    assert_eq!(
        counts.iter().min(),
        Some(&6),
        "hair_drier is the rarest class"
    );
    assert_eq!(counts[0], 2789, "person");
    assert!(
        dataset
            .examples
            .iter()
            .all(|example| !example.labels.is_empty())
    );
}

// ---------------------------------------------------------------- the shipped sample

/// Images the sample should hold of each class, where coco2014-mini has that many at 256×256.
const SAMPLE_IMAGES_PER_CLASS: usize = 8;

#[test]
fn shipped_sample_covers_every_class_and_stays_small() {
    let dataset = open_dataset(&sample_dir(), None, Split::Train).unwrap();
    assert_eq!(dataset.format, DatasetFormat::Csv);
    assert_eq!(dataset.label_space, LabelSpace::coco80());
    assert_eq!(dataset.len(), 331);
    let counts = dataset.class_counts();
    assert!(
        counts.iter().all(|&count| count >= 5),
        "class counts {counts:?}"
    );
    let mut bytes = 0;
    for example in &dataset.examples {
        assert_eq!(
            image::image_dimensions(&example.path).unwrap(),
            (256, 256),
            "{}",
            example.path.display()
        );
        bytes += fs::metadata(&example.path).unwrap().len();
    }
    assert!(bytes < 8_000_000, "sample images take {bytes} bytes");
}

/// The sample's rule (documented in sample/README.md): from coco2014-mini's 256×256 train
/// images, visit the classes from rarest to most common (counted over the whole mini set,
/// ties by class index); for each, add images containing it, in labels.csv order, until the
/// sample holds `SAMPLE_IMAGES_PER_CLASS` images of it or none are left. Returns indices into
/// the mini set, ascending (= file name order).
fn select_sample(mini: &Dataset, sources_csv: &Path) -> Vec<usize> {
    let mut sizes: HashMap<String, (u32, u32)> = HashMap::new();
    let mut reader = csv::Reader::from_path(sources_csv).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|header| header == name).unwrap();
    let (filename, width, height) = (column("filename"), column("width"), column("height"));
    for record in reader.records() {
        let record = record.unwrap();
        sizes.insert(
            record[filename].to_owned(),
            (
                record[width].parse().unwrap(),
                record[height].parse().unwrap(),
            ),
        );
    }
    let is_candidate: Vec<bool> = mini
        .examples
        .iter()
        .map(|example| sizes[example.path.file_name().unwrap().to_str().unwrap()] == (256, 256))
        .collect();
    let frequency = mini.class_counts();
    let mut class_order: Vec<usize> = (0..mini.n_classes()).collect();
    class_order.sort_by_key(|&class| (frequency[class], class));

    let mut chosen = vec![false; mini.len()];
    let mut sample_counts = vec![0; mini.n_classes()];
    for class in class_order {
        for (index, example) in mini.examples.iter().enumerate() {
            if sample_counts[class] >= SAMPLE_IMAGES_PER_CLASS {
                break;
            }
            if chosen[index] || !is_candidate[index] || !example.labels.contains(&class) {
                continue;
            }
            chosen[index] = true;
            for &label in &example.labels {
                sample_counts[label] += 1;
            }
        }
    }
    (0..mini.len()).filter(|&index| chosen[index]).collect()
}

fn mini_train() -> (Dataset, PathBuf) {
    let train = common::coco2014_mini().join("train");
    (
        open_dataset(&train, Some(DatasetFormat::Csv), Split::Train).unwrap(),
        train,
    )
}

#[test]
fn shipped_sample_is_what_the_documented_rule_selects() {
    let (mini, train) = mini_train();
    let selection = select_sample(&mini, &train.join("sources.csv"));
    let sample = open_dataset(&sample_dir(), None, Split::Train).unwrap();
    assert_eq!(
        named_examples(&sample, &sample_dir().join("images")),
        named_examples(&mini.subset(&selection), &train.join("images"))
    );
    for (example, &index) in sample.examples.iter().zip(&selection) {
        assert_eq!(
            fs::read(&example.path).unwrap(),
            fs::read(&mini.examples[index].path).unwrap()
        );
    }
}

/// Writes `sample/` from coco2014-mini by the rule above. Run by hand:
/// `cargo test --release -p querylabel-trainer --test datasets -- --ignored regenerate_shipped_sample`
#[test]
#[ignore = "rewrites trainer/sample; run by hand after changing the selection rule"]
fn regenerate_shipped_sample() {
    let (mini, train) = mini_train();
    let selection = select_sample(&mini, &train.join("sources.csv"));
    let sample = sample_dir();
    let images = sample.join("images");
    if images.exists() {
        fs::remove_dir_all(&images).unwrap();
    }
    fs::create_dir_all(&images).unwrap();
    let mut labels_csv = String::from("filename,labels\n");
    for &index in &selection {
        let example = &mini.examples[index];
        let name = example.path.file_name().unwrap().to_str().unwrap();
        fs::copy(&example.path, images.join(name)).unwrap();
        let labels: Vec<&str> = example
            .labels
            .iter()
            .map(|&class| mini.label_space.class_name(class).unwrap())
            .collect();
        labels_csv.push_str(&format!("{name},{}\n", labels.join(" ")));
    }
    fs::write(sample.join("labels.csv"), labels_csv).unwrap();
    let classes: String = mini
        .label_space
        .class_names()
        .iter()
        .map(|name| format!("{name}\n"))
        .collect();
    fs::write(sample.join("classes.txt"), classes).unwrap();
}
