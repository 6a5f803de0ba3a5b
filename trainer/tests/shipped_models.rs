//! The demo's two shipped heads (the bundle in `www/models/`, made by
//! `scripts/reproduce-results.sh`) load from their half-precision export, name what is in the
//! demo's sample photos (real COCO val2014 photos, none of them seen in training, with their
//! official labels), and reproduce docs/RESULTS.md's numbers on the validation split they were
//! chosen on.

mod common;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use querylabel_trainer::model_source::load_heads;
use querylabel_trainer::predict::{HeadChoice, predict_image};
use serde::Deserialize;

#[derive(Deserialize)]
struct Sample {
    file: String,
    labels: Vec<String>,
}

fn www() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../www")
}

fn bundle() -> PathBuf {
    www().join("models")
}

/// For every sample photo, the ranks (0-based) of its true labels by the shipped head `head`.
fn true_label_ranks(head: &str) -> Vec<Vec<usize>> {
    let device = Device::flex();
    let (model, description) =
        load_heads(&bundle(), &device).unwrap_or_else(|e| panic!("{}: {e:#}", bundle().display()));
    assert_eq!(description.label_space.n_classes(), 80);
    let model = model.valid();
    let index = description.head_index(head).unwrap();
    let choice = HeadChoice {
        index,
        threshold: description.heads[index].decision_threshold.value,
    };
    let samples: Vec<Sample> =
        serde_json::from_str(&std::fs::read_to_string(www().join("samples/samples.json")).unwrap())
            .unwrap();
    assert!(samples.len() >= 6);
    samples
        .iter()
        .map(|sample| {
            let photo = www().join("samples").join(&sample.file);
            let prediction =
                predict_image(&model, &description, &[choice], &photo, 80, None, &device)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", photo.display()))
                    .heads
                    .remove(0);
            let truth: Vec<String> = sample.labels.iter().map(|l| l.replace('_', " ")).collect();
            let ranks: Vec<usize> = truth
                .iter()
                .map(|true_label| {
                    prediction
                        .labels
                        .iter()
                        .position(|label| label.label.replace('_', " ") == *true_label)
                        .expect("every label is ranked")
                })
                .collect();
            eprintln!(
                "{}: true {:?} ranked {ranks:?}, top 3 {:?}",
                sample.file,
                truth,
                prediction.labels[..3]
                    .iter()
                    .map(|l| format!("{} {:.2}", l.label, l.probability))
                    .collect::<Vec<_>>()
            );
            ranks
        })
        .collect()
}

/// What a model must do on the sample photos: every photo has a true label among its first
/// `within` labels, at least `top1_share` of the photos have a true label first, and at least
/// `top10_share` of all true labels rank in the first 10. By chance the best-ranked of 3-4 true
/// labels among 80 lands near rank 16-20, and a true label ranks in the first 10 one time in 8.
struct SampleBar {
    within: usize,
    top1_share: f64,
    top10_share: f64,
}

fn check_samples(model: &str, bar: SampleBar) {
    let ranks = true_label_ranks(model);
    let best: Vec<usize> = ranks.iter().map(|r| *r.iter().min().unwrap()).collect();
    assert!(
        best.iter().all(|&rank| rank < bar.within),
        "{model}: a photo has no true label in its top {}: {best:?}",
        bar.within
    );
    let top1 = best.iter().filter(|&&rank| rank == 0).count();
    assert!(
        top1 as f64 >= bar.top1_share * best.len() as f64,
        "{model}: the top label is true for only {top1} of {} photos",
        best.len()
    );
    let labels = ranks.iter().flatten().count();
    let top10 = ranks.iter().flatten().filter(|&&rank| rank < 10).count();
    assert!(
        top10 as f64 >= bar.top10_share * labels as f64,
        "{model}: only {top10} of {labels} true labels rank in the top 10: {ranks:?}"
    );
}

#[test]
fn the_full_label_model_names_what_is_in_the_sample_photos() {
    check_samples(
        "full",
        SampleBar {
            within: 5,
            top1_share: 0.75,
            top10_share: 0.9,
        },
    );
}

/// Trained from one positive label per image it is weaker (docs/RESULTS.md), but far from
/// chance. Its top label is right on 76% of the 1,006 validation photos (the test below), but on
/// these 8 only 3 times, with near misses (banana on apples and oranges, carrot beside broccoli,
/// person on two photos without people). Eight photos are too few to tell 76% from 50%, so this
/// bar leans on the top-10 ranks of all 29 true labels instead.
#[test]
fn the_single_positive_model_names_what_is_in_the_sample_photos() {
    check_samples(
        "wan",
        SampleBar {
            within: 8,
            top1_share: 0.25,
            top10_share: 0.75,
        },
    );
}

/// The seed-1 validation split of the 5,030 real COCO photos beside the project (or
/// `QUERYLABEL_COCO_MINI_DIR`), on which the shipped models were chosen.
fn coco_mini() -> PathBuf {
    match std::env::var_os("QUERYLABEL_COCO_MINI_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/coco2014-mini/train"),
    }
}

/// `trainer eval` of the export gives docs/RESULTS.md's numbers: mAP to 0.05 and the share of
/// photos whose top label is right to half a point (5 of the 1,006 photos).
fn check_documented(model: &str, map: f64, top1_precision: f64) {
    let data = coco_mini();
    assert!(
        data.join("labels.csv").is_file(),
        "{} is missing: point QUERYLABEL_COCO_MINI_DIR at the coco2014-mini train folder",
        data.display()
    );
    let evaluation = common::eval_head_on_validation_split(&bundle(), model, &data);
    assert_eq!(evaluation["head"], model);
    assert_eq!(evaluation["images"], 1006);
    let measured = evaluation["mAP"].as_f64().unwrap();
    assert!(
        (measured - map).abs() < 0.05,
        "{model}: mAP {measured}, documented {map}"
    );
    let measured = evaluation["top1_precision"].as_f64().unwrap();
    assert!(
        (measured - top1_precision).abs() < 0.5,
        "{model}: top-1 precision {measured}, documented {top1_precision}"
    );
}

#[test]
fn the_shipped_models_reproduce_the_documented_validation_numbers() {
    check_documented("full", 50.50, 82.7);
    check_documented("wan", 45.31, 75.8);
}
