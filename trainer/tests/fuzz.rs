//! Fuzzing on stable Rust: property-based tests feed random bytes and mutations of real files
//! to every parser a user's file reaches: the image decoder; CSV, COCO JSON and VOC XML
//! annotations; `model.json` of a bundle or an old single-model export, the finite-weights
//! check and the whole bundle loader; the feature-cache file; a run's `options.json` and `state.json`. Each must answer with
//! a value or an error, never a panic; an error from a file names that file.
//!
//! `make test` runs a short seeded pass (`QUERYLABEL_FUZZ_CASES`, default 48 inputs per parser).
//! `make fuzz` runs as many as asked with a fresh seed (`QUERYLABEL_FUZZ_SEED`), and prints how
//! many inputs each parser took.

mod common;

use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use burn::store::KeyRemapper;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use querylabel::bundle::{load_bundle, parse_bundle_manifest};
use querylabel::export_tensors::read_export_tensors;
use querylabel::exported::parse_manifest;
use querylabel::preprocess::decode_image;
use querylabel_trainer::backend::BackendChoice;
use querylabel_trainer::checkpoint::read_json;
use querylabel_trainer::dataset::{DatasetFormat, Split, open_dataset};
use querylabel_trainer::extract::{DEFAULT_PART_SECONDS, ExtractOptions, extract_features};
use querylabel_trainer::feature_cache::FeatureCache;
use querylabel_trainer::run_state::TrainingState;
use querylabel_trainer::train_options::TrainOptions;

/// Inputs per parser in a run.
fn cases() -> u32 {
    std::env::var("QUERYLABEL_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(48)
}

/// A runner with a fixed seed (so a failure in `make test` reproduces), or the one in
/// `QUERYLABEL_FUZZ_SEED`.
fn runner() -> TestRunner {
    let seed: u64 = std::env::var("QUERYLABEL_FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(20261204);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Random bytes, or `seed` cut short, with bytes overwritten, with a stretch removed, or with
/// a stretch repeated.
fn mutations(seed: Vec<u8>) -> BoxedStrategy<Vec<u8>> {
    let len = seed.len().max(1);
    let (cut, overwritten, removed, repeated) =
        (seed.clone(), seed.clone(), seed.clone(), seed.clone());
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        2 => (0..len).prop_map(move |end| cut[..end.min(cut.len())].to_vec()),
        4 => prop::collection::vec((0..len, any::<u8>()), 1..24).prop_map(move |edits| {
            let mut bytes = overwritten.clone();
            for (at, value) in edits {
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            bytes
        }),
        2 => (0..len, 1..64usize).prop_map(move |(at, count)| {
            let mut bytes = removed.clone();
            let end = (at + count).min(bytes.len());
            bytes.drain(at.min(end)..end);
            bytes
        }),
        1 => (0..len, 1..64usize).prop_map(move |(at, count)| {
            let mut bytes = repeated.clone();
            let start = at.min(bytes.len());
            let end = (start + count).min(bytes.len());
            let stretch = bytes[start..end].to_vec();
            bytes.splice(start..start, stretch);
            bytes
        }),
    ]
    .boxed()
}

/// Runs `parse` on `cases()` mutations of `seed`, failing on a panic or on what `check` says
/// of the result; returns how many inputs ran.
fn fuzz<T>(
    what: &str,
    seed: Vec<u8>,
    parse: impl Fn(&[u8]) -> T,
    check: impl Fn(&T) -> Result<(), String>,
) -> u32 {
    let mut runner = runner();
    let ran = std::cell::Cell::new(0);
    let result = runner.run(&mutations(seed), |bytes| {
        ran.set(ran.get() + 1);
        let parsed = catch_unwind(AssertUnwindSafe(|| parse(&bytes)))
            .map_err(|_| TestCaseError::fail(format!("{what} panicked")))?;
        check(&parsed).map_err(TestCaseError::fail)
    });
    if let Err(failure) = result {
        panic!("{what}: {failure}");
    }
    eprintln!("{what}: {} inputs, no panic", ran.get());
    ran.get()
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// An error from reading a file must say which file.
fn names_file<T, E: Display>(file: &Path) -> impl Fn(&Result<T, E>) -> Result<(), String> + '_ {
    move |result| match result {
        Err(error) if !format!("{error:#}").contains(&file.display().to_string()) => Err(format!(
            "the error does not name {}: {error:#}",
            file.display()
        )),
        _ => Ok(()),
    }
}

#[test]
fn the_image_decoder_refuses_damaged_photos_without_a_panic() {
    // A camera photo, and restart markers, which the damage walk handles apart.
    for photo in ["exif/upright.jpg", "jpeg-codings/restart-markers.jpg"] {
        let jpeg = std::fs::read(fixture(photo)).unwrap();
        fuzz(
            "JPEG decoder",
            jpeg,
            |bytes| decode_image(bytes).is_ok(),
            |_| Ok(()),
        );
    }
    let mut png = Vec::new();
    image::DynamicImage::new_rgb8(19, 11)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    fuzz(
        "PNG decoder",
        png,
        |bytes| decode_image(bytes).is_ok(),
        |_| Ok(()),
    );
}

/// Copies the fixture data set `name` and fuzzes its annotation file `annotations` (relative
/// to the copy) through `open_dataset`.
fn fuzz_annotations(name: &str, annotations: &str, format: DatasetFormat) -> u32 {
    let temp = tempfile::tempdir().unwrap();
    let copy = temp.path().join(name);
    copy_tree(&fixture(name), &copy);
    let file = copy.join(annotations);
    let seed = std::fs::read(&file).unwrap();
    fuzz(
        &format!("{format:?} annotations"),
        seed,
        |bytes| {
            std::fs::write(&file, bytes).unwrap();
            open_dataset(&copy, Some(format), Split::Train).map(|dataset| dataset.len())
        },
        names_file(&file),
    )
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn broken_annotations_are_errors_that_name_the_file() {
    fuzz_annotations("csv", "labels.csv", DatasetFormat::Csv);
    fuzz_annotations(
        "coco",
        "annotations/instances_train2014.json",
        DatasetFormat::Coco,
    );
    fuzz_annotations(
        "voc-xml-only",
        "VOC2007/Annotations/000001.xml",
        DatasetFormat::Voc,
    );
}

#[test]
fn broken_model_manifests_and_weights_are_errors() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../www/models");
    let bundle = std::fs::read(models.join("model.json")).unwrap();
    fuzz(
        "bundle model.json",
        bundle.clone(),
        |bytes| {
            parse_bundle_manifest(&String::from_utf8_lossy(bytes))
                .map(|manifest| manifest.model.validate().is_ok())
                .is_ok()
        },
        |_| Ok(()),
    );
    fuzz(
        "single-model model.json",
        bundle,
        |bytes| parse_manifest(&String::from_utf8_lossy(bytes)).is_ok(),
        |_| Ok(()),
    );
    // The weights' header and first tensors: where a wrong or damaged file shows.
    let weights = std::fs::read(models.join("model.safetensors")).unwrap();
    let head = weights[..weights.len().min(64 * 1024)].to_vec();
    // Read as the loader reads them: int8 tensors widened with their scales, then checked.
    fuzz(
        "weights safetensors",
        head,
        |bytes| read_export_tensors(bytes, &KeyRemapper::new()).is_ok(),
        |_| Ok(()),
    );
}

/// The whole weights file through the loader the page and the trainer use (int8 widening,
/// finite check, the strict tensor check), with the damage in its header and
/// first tensors, where a wrong or damaged file shows; the rest of the file stays as it is.
#[test]
fn a_damaged_bundle_loads_or_fails_without_a_panic() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../www/models");
    let manifest = std::fs::read_to_string(models.join("model.json")).unwrap();
    let description = parse_bundle_manifest(&manifest).unwrap().model;
    let weights = std::fs::read(models.join("model.safetensors")).unwrap();
    let split = weights.len().min(64 * 1024);
    let device = burn::tensor::Device::flex();
    let loaded = std::cell::Cell::new(0);
    fuzz(
        "bundle weights, loaded whole",
        weights[..split].to_vec(),
        |head| {
            let mut whole = head.to_vec();
            whole.extend_from_slice(&weights[split..]);
            let ok = load_bundle(&description, whole, Vec::new(), &device).is_ok();
            loaded.set(loaded.get() + usize::from(ok));
            ok
        },
        |_| Ok(()),
    );
    eprintln!(
        "bundle weights: {} of the damaged files loaded",
        loaded.get()
    );
}

#[test]
fn a_damaged_feature_cache_is_an_error_that_names_it() {
    let temp = tempfile::tempdir().unwrap();
    let cache = temp.path().join("cache.safetensors");
    let options = ExtractOptions {
        data: fixture("csv"),
        format: Some(DatasetFormat::Csv),
        split: Split::Train,
        backbone: "efficientnet-lite0".parse().unwrap(),
        backbone_weights: None,
        image_size: 64,
        pooled: true,
        batch_size: 8,
        views: 1,
        view_seed: 1,
        max_images: None,
        part_seconds: DEFAULT_PART_SECONDS,
        backend: BackendChoice::Flex,
        device: 0,
    };
    extract_features(&options, &cache).unwrap();
    let seed = std::fs::read(&cache).unwrap();
    fuzz(
        "feature cache",
        seed,
        |bytes| {
            std::fs::write(&cache, bytes).unwrap();
            // The header alone (for thresholds) and the whole cache, each without a panic.
            let header = FeatureCache::read_header(&cache);
            let whole = FeatureCache::read(&cache);
            header.and(whole).map(|cache| cache.len())
        },
        names_file(&cache),
    );
}

#[test]
fn damaged_run_files_are_errors_that_name_them() {
    let temp = tempfile::tempdir().unwrap();
    let run = temp.path().join("run");
    common::train(
        &run,
        &[
            "--head",
            "linear",
            "--epochs",
            "1",
            "--image-size",
            "64",
            "--max-train-images",
            "16",
        ],
    );
    let options = run.join("options.json");
    fuzz(
        "options.json",
        std::fs::read(&options).unwrap(),
        |bytes| {
            std::fs::write(&options, bytes).unwrap();
            read_json::<TrainOptions>(&options).map(|options| options.check().is_ok())
        },
        names_file(&options),
    );
    let state = run.join("checkpoint/state.json");
    fuzz(
        "state.json",
        std::fs::read(&state).unwrap(),
        |bytes| {
            std::fs::write(&state, bytes).unwrap();
            read_json::<TrainingState>(&state).map(|state| state.epochs_done)
        },
        names_file(&state),
    );
}
