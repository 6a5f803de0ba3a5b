//! The demo's shipped heads (the bundle in `www/models/`, made by
//! `scripts/reproduce-results.sh`) load from their int8 export. The three the page loads first
//! name what is in the demo's sample photos (real COCO val2014 photos, none of them seen in
//! training, with their official labels). Every head, those downloaded on demand included,
//! reproduces docs/RESULTS.md's numbers on the 12 full-size photos of coco2014-mini's `demo/`,
//! which none was trained on (the first three and the linear EM head were trained on every
//! photo of its `train/`, the others on their seed-1 split of it).

mod common;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use querylabel::model::HeadConfig;
use querylabel_trainer::model_source::load_heads;
use querylabel_trainer::predict::{HeadChoice, PredictOptions, predict_image};
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
            let all = PredictOptions {
                top: 80,
                ..PredictOptions::default()
            };
            let prediction = predict_image(&model, &description, &[choice], &photo, all, &device)
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
    /// Photos allowed to miss `within`.
    misses: usize,
    top1_share: f64,
    top10_share: f64,
}

fn check_samples(model: &str, bar: SampleBar) {
    let ranks = true_label_ranks(model);
    let best: Vec<usize> = ranks.iter().map(|r| *r.iter().min().unwrap()).collect();
    let missed = best.iter().filter(|&&rank| rank >= bar.within).count();
    assert!(
        missed <= bar.misses,
        "{model}: {missed} photos have no true label in their top {}: {best:?}",
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

/// `predict --tta-flip` gives each label the mean of its probability on the photo and on the
/// photo mirrored (here written as a lossless PNG and predicted on its own).
#[test]
fn flip_averaged_prediction_is_the_mean_of_the_photo_and_its_mirror() {
    let device = Device::flex();
    let (model, description) = load_heads(&bundle(), &device).unwrap();
    let model = model.valid().fold_batch_norms();
    let choice = HeadChoice {
        index: description.head_index("full").unwrap(),
        threshold: 0.5,
    };
    let photo = www().join("samples/COCO_val2014_000000022192.jpg");
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror.png");
    let decoded = querylabel::preprocess::decode_image(&std::fs::read(&photo).unwrap()).unwrap();
    decoded.fliph().save(&mirror).unwrap();
    let probabilities = |path: &Path, flip_averaged: bool| {
        let options = PredictOptions {
            top: 80,
            flip_averaged,
            ..PredictOptions::default()
        };
        let mut labels = predict_image(&model, &description, &[choice], path, options, &device)
            .unwrap()
            .heads
            .remove(0)
            .labels;
        labels.sort_by(|a, b| a.label.cmp(&b.label));
        labels.iter().map(|l| l.probability).collect::<Vec<_>>()
    };
    let (plain, mirrored) = (probabilities(&photo, false), probabilities(&mirror, false));
    let averaged = probabilities(&photo, true);
    let mut largest_change = 0f32;
    for ((a, b), mean) in plain.iter().zip(&mirrored).zip(&averaged) {
        assert!(
            (mean - (a + b) / 2.0).abs() < 2e-3,
            "{mean} is not the mean of {a} and {b}"
        );
        largest_change = largest_change.max((mean - a).abs());
    }
    // The mirror is a second look, not the same one.
    assert!(largest_change > 1e-3, "{largest_change}");
}

/// The number of int8 values among the large tensors of the weights file `file` of the
/// bundle, and the heads whose tensors it holds; every large tensor must be int8.
fn int8_values_and_heads(file: &str) -> (usize, std::collections::BTreeSet<String>) {
    use querylabel::int8_weights::{MIN_QUANTIZED_VALUES, SCALE_SUFFIX};
    let bytes = std::fs::read(bundle().join(file)).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut quantized = 0;
    let mut heads = std::collections::BTreeSet::new();
    for (name, tensor) in tensors.tensors() {
        if let Some(head) = name.strip_prefix("heads.") {
            heads.insert(head.split('.').next().unwrap().to_string());
        }
        let values: usize = tensor.shape().iter().product();
        let large = tensor.shape().len() >= 2 && values >= MIN_QUANTIZED_VALUES;
        if name.ends_with(SCALE_SUFFIX) || !large {
            continue;
        }
        assert_eq!(tensor.dtype(), safetensors::Dtype::I8, "{file}: {name}");
        quantized += values;
    }
    (quantized, heads)
}

#[test]
fn the_shipped_bundle_stores_its_large_weights_as_int8_each_head_where_the_manifest_says() {
    let manifest = std::fs::read_to_string(bundle().join("model.json")).unwrap();
    let manifest = querylabel::bundle::parse_bundle_manifest(&manifest).unwrap();
    let (quantized, in_main) = int8_values_and_heads(&manifest.weights);
    // Nearly all of the backbone's and the first three heads' 9.7 million parameters.
    assert!(quantized > 9_000_000, "{quantized} int8 values");
    let main_heads: Vec<String> = manifest.model.in_main_file().head_names();
    let mut sorted = main_heads.clone();
    sorted.sort();
    assert_eq!(in_main.into_iter().collect::<Vec<_>>(), sorted);
    assert_eq!(main_heads, ["full", "wan", "em"]);
    for head in manifest.model.on_demand_heads() {
        let file = head.weights.as_deref().unwrap();
        let (quantized, heads) = int8_values_and_heads(file);
        // Nearly all of a Query2Label head's 0.9 million parameters; a linear head's 1,280 × 80
        // weights.
        let least = match head.head {
            HeadConfig::Linear(_) => 100_000,
            HeadConfig::Query2Label(_) => 800_000,
        };
        assert!(quantized > least, "{file}: {quantized} int8 values");
        assert_eq!(heads.into_iter().collect::<Vec<_>>(), [head.name.as_str()]);
    }
}

// Every Lite2 head misses one photo, COCO_val2014_000000289393 (bird, cow, giraffe, potted
// plant), which they call dog: its best true label ranks 18th (full), 8th (wan) and 7th (em).
// The Lite0 heads before them got it within 5, and lost 7 mAP on the 1,006 validation photos;
// eight photos say little next to those, so each bar allows that one miss, and asks 75% (22
// of 29) of the true labels in the top 10, where the Lite0 head had 90%.
#[test]
fn the_full_label_model_names_what_is_in_the_sample_photos() {
    check_samples(
        "full",
        SampleBar {
            within: 5,
            misses: 1,
            top1_share: 0.75,
            top10_share: 0.75,
        },
    );
}

/// Trained from one positive label per image it is weaker (docs/RESULTS.md), but far from
/// chance: its top label is right on 6 of these 8 photos.
#[test]
fn the_single_positive_model_names_what_is_in_the_sample_photos() {
    check_samples(
        "wan",
        SampleBar {
            within: 8,
            misses: 1,
            top1_share: 0.5,
            top10_share: 0.75,
        },
    );
}

/// EM with focused attention, the best single-positive loss for Query2Label here, held to the
/// single-positive bar.
#[test]
fn the_em_model_names_what_is_in_the_sample_photos() {
    check_samples(
        "em",
        SampleBar {
            within: 8,
            misses: 1,
            top1_share: 0.5,
            top10_share: 0.75,
        },
    );
}

/// What docs/RESULTS.md says `trainer eval` gives for a shipped head on the 12 demo photos.
struct Documented {
    head: &'static str,
    map: f64,
    top1_precision: f64,
    /// Wrong labels at or above the head's recorded decision threshold, per photo.
    false_positives_per_image: f64,
    /// Peak-over-even-share of the true labels' attention maps; `None` for a linear head,
    /// which has none.
    attention_focus: Option<f64>,
}

const fn documented(
    head: &'static str,
    map: f64,
    top1_precision: f64,
    false_positives_per_image: f64,
    attention_focus: Option<f64>,
) -> Documented {
    Documented {
        head,
        map,
        top1_precision,
        false_positives_per_image,
        attention_focus,
    }
}

/// docs/RESULTS.md's table of the shipped heads on the 12 demo photos, in the bundle's order:
/// the three the page loads first, then those it downloads when a visitor picks them.
const DOCUMENTED: &[Documented] = &[
    documented("full", 80.80, 75.0, 1.0, Some(4.70)),
    documented("wan", 72.27, 58.33, 0.67, Some(2.64)),
    documented("em", 73.34, 50.0, 1.42, Some(3.12)),
    documented("em-linear", 76.78, 58.33, 0.67, None),
    documented("an", 49.88, 16.67, 1.33, Some(10.96)),
    documented("an-ls", 38.39, 16.67, 1.17, Some(14.10)),
    documented("epr", 68.71, 16.67, 1.25, Some(6.19)),
    documented("role", 63.39, 33.33, 0.83, Some(12.58)),
    documented("hill", 69.83, 58.33, 1.17, Some(4.81)),
    documented("splc", 63.85, 50.0, 0.92, Some(3.52)),
    documented("ll-r", 42.83, 16.67, 1.08, Some(11.14)),
    documented("ll-ct", 41.58, 16.67, 0.83, Some(12.35)),
    documented("ll-cp", 41.04, 16.67, 0.92, Some(10.88)),
    documented("em-apl", 76.06, 33.33, 1.25, Some(2.55)),
    documented("gr", 62.61, 41.67, 0.83, Some(9.95)),
];

/// `trainer eval` of every head of the export on the 12 unseen demo photos gives
/// docs/RESULTS.md's numbers: mAP to 0.2 (on 12 photos a near-tie that another CPU's rounding
/// flips moves it by tenths), the share of photos whose top label is right exactly (12 photos:
/// steps of 8.3 points), the wrong labels per photo to 0.01 and the attention focus to 0.05.
/// A head without documented numbers fails too.
#[test]
fn the_shipped_models_reproduce_the_documented_numbers_on_unseen_photos() {
    let data = common::coco2014_mini().join("demo");
    let evaluations = common::eval_every_head_with(&bundle(), &data, &[]);
    let heads: Vec<&str> = evaluations
        .iter()
        .map(|e| e["head"].as_str().unwrap())
        .collect();
    let documented_heads: Vec<&str> = DOCUMENTED.iter().map(|d| d.head).collect();
    assert_eq!(heads, documented_heads);
    for (evaluation, documented) in evaluations.iter().zip(DOCUMENTED) {
        assert_eq!(evaluation["images"], 12);
        for (name, value, tolerance) in [
            ("mAP", documented.map, 0.2),
            ("top1_precision", documented.top1_precision, 0.5),
            (
                "false_positives_per_image",
                documented.false_positives_per_image,
                0.01,
            ),
        ] {
            let measured = evaluation[name].as_f64().unwrap();
            assert!(
                (measured - value).abs() < tolerance,
                "{}: {name} {measured}, documented {value}",
                documented.head
            );
        }
        let focus = evaluation["attention_focus"].as_f64();
        match (focus, documented.attention_focus) {
            (Some(measured), Some(value)) => assert!(
                (measured - value).abs() < 0.05,
                "{}: attention focus {measured}, documented {value}",
                documented.head
            ),
            (None, None) => {}
            (measured, value) => panic!(
                "{}: attention focus {measured:?}, documented {value:?}",
                documented.head
            ),
        }
    }
}
