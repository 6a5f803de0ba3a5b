//! Training from cached backbone features (`trainer extract`, `train --features`), the lesson's
//! feature export, linear-init-then-fine-tune, and the results report, on the shipped sample of
//! real COCO photos with the CPU backend. They need the converted Lite0 weights (`make weights`).

mod common;

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use common::{eval_on_sample_validation_split, last_json_line, train, trainer};
use querylabel::backbone::BackboneConfig;
use querylabel_trainer::feature_cache::FeatureCache;
use querylabel_trainer::saved_model::load_model;
use querylabel_trainer::weights::pretrained_backbone;

fn extract(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "extract",
        "--backend",
        "flex",
        "--image-size",
        "160",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = trainer(&args);
    assert!(ok, "trainer extract failed:\n{stderr}");
    let summary = last_json_line(&stdout);
    assert_eq!(summary["images"].as_u64().unwrap(), 331, "{summary}");
}

#[test]
fn a_head_trained_on_cached_features_scores_the_same_on_the_photos() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("features.safetensors");
    extract(&cache, &[]);
    let header = FeatureCache::read(&cache).unwrap().header;
    assert_eq!(header.feature_shape, [1280, 5, 5]);
    assert_eq!(header.image_size, 160);

    let run = dir.path().join("run");
    let linear = [
        "--features",
        cache.to_str().unwrap(),
        "--head",
        "linear",
        "--epochs",
        "3",
        "--lr",
        "1e-3",
    ];
    let summary = train(&run, &linear);
    let before = summary["initial_map"].as_f64().unwrap();
    let after = summary["best_map"].as_f64().unwrap();
    assert!(
        after > before + 2.0,
        "validation mAP {before:.2} -> {after:.2}"
    );

    // options.json records what the run used, which the cache decided: its images and 160 px
    // (not the command line's default sample and 224 px).
    let options: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("options.json")).unwrap()).unwrap();
    assert_eq!(options["image_size"], 160, "{options}");
    assert_eq!(
        Path::new(options["data"].as_str().unwrap()),
        header.source.as_path()
    );

    // The saved model carries the backbone that made the features: evaluated on the photos of
    // the same validation split, it reproduces the mAP up to the cache's half precision.
    let map = eval_on_sample_validation_split(&run)["mAP"]
        .as_f64()
        .unwrap();
    assert!((map - after).abs() < 0.3, "eval on photos {map} vs {after}");

    // Data-parallel over two devices (here twice the CPU) takes the same steps: each half of a
    // batch weighs half, so the losses and the best mAP match the single-device run.
    let parallel = dir.path().join("parallel");
    let parallel_summary = train(
        &parallel,
        &[linear.as_slice(), &["--device", "0,1"]].concat(),
    );
    let losses = |run: &Path| -> Vec<f64> {
        std::fs::read_to_string(run.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["train_loss"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    for (one, two) in losses(&run).iter().zip(losses(&parallel)) {
        assert!(
            (one - two).abs() < 1e-4 * one.abs().max(1.0),
            "loss {one} vs {two}"
        );
    }
    let parallel_map = parallel_summary["best_map"].as_f64().unwrap();
    assert!(
        (parallel_map - after).abs() < 1e-2,
        "mAP {parallel_map} vs {after}"
    );

    // A Query2Label head trains on the same (spatial) cache.
    let q2l = train(
        &dir.path().join("q2l"),
        &[
            "--features",
            cache.to_str().unwrap(),
            "--head",
            "q2l",
            "--labels",
            "single-positive",
            "--loss",
            "role",
            "--epochs",
            "1",
            "--q2l-hidden-dim",
            "64",
            "--q2l-feedforward-dim",
            "128",
        ],
    );
    assert!(q2l["best_map"].as_f64().unwrap().is_finite());

    // The report groups runs by setting and draws each head's curves.
    let (ok, stdout, stderr) = trainer(&[
        "report",
        "--plots",
        dir.path().to_str().unwrap(),
        run.to_str().unwrap(),
        dir.path().join("q2l").to_str().unwrap(),
    ]);
    assert!(ok, "trainer report failed:\n{stderr}");
    assert!(stdout.contains("| linear | Full (ASL) | 1 |"), "{stdout}");
    assert!(stdout.contains("| Query2Label | ROLE | 1 |"), "{stdout}");
    assert!(dir.path().join("curves-linear.png").is_file());
    assert!(dir.path().join("curves-q2l.png").is_file());
}

#[test]
fn pooled_features_train_linear_heads_and_feed_the_lesson_but_not_query2label() {
    let dir = tempfile::tempdir().unwrap();
    let cache_path = dir.path().join("pooled.safetensors");
    extract(&cache_path, &["--pooled"]);
    let cache = FeatureCache::read(&cache_path).unwrap();
    assert_eq!(cache.header.feature_shape, [1280, 1, 1]);

    let (ok, _, stderr) = trainer(&[
        "train",
        "--backend",
        "flex",
        "--features",
        cache_path.to_str().unwrap(),
        "--head",
        "q2l",
        "--out",
        dir.path().join("refused").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("extract without --pooled"), "{stderr}");

    let lesson = dir.path().join("lesson.safetensors");
    let (ok, _, stderr) = trainer(&[
        "export-lesson",
        "--features",
        cache_path.to_str().unwrap(),
        "--out",
        lesson.to_str().unwrap(),
        "--train",
        "200",
        "--validation",
        "100",
    ]);
    assert!(ok, "trainer export-lesson failed:\n{stderr}");
    let bytes = std::fs::read(&lesson).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let train = tensors.tensor("train_features").unwrap();
    assert_eq!(train.shape(), [200, 1280]);
    assert_eq!(tensors.tensor("train_labels").unwrap().shape(), [200, 80]);
    assert_eq!(
        tensors.tensor("validation_features").unwrap().shape(),
        [100, 1280]
    );
    // Every shipped row is a row of the cache (to half precision), each used once.
    let row = |data: &[u8], i: usize| -> Vec<f32> {
        data[i * 2560..(i + 1) * 2560]
            .chunks_exact(2)
            .map(|p| half::f16::from_le_bytes([p[0], p[1]]).to_f32())
            .collect()
    };
    let cache_rows: Vec<Vec<f32>> = (0..cache.len())
        .map(|i| cache.features_of(&[i]).0)
        .collect();
    let mut used = std::collections::HashSet::new();
    for name in ["train_features", "validation_features"] {
        let view = tensors.tensor(name).unwrap();
        for i in 0..view.shape()[0] {
            let shipped = row(view.data(), i);
            let source = cache_rows
                .iter()
                .position(|r| r == &shipped)
                .unwrap_or_else(|| panic!("{name} row {i} is not a cache row"));
            assert!(used.insert(source), "cache row {source} shipped twice");
        }
    }
}

#[test]
fn a_corrupt_or_foreign_cache_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.safetensors");
    std::fs::write(&foreign, b"not a safetensors file at all").unwrap();
    let (ok, _, stderr) = trainer(&[
        "train",
        "--backend",
        "flex",
        "--features",
        foreign.to_str().unwrap(),
        "--out",
        dir.path().join("run").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("foreign.safetensors") && stderr.contains("trainer extract"),
        "{stderr}"
    );
}

/// The backbone's response to a fixed input, to tell whether its weights moved.
fn backbone_response(path: &Path, device: &Device) -> Vec<f32> {
    let (model, _) = load_model(path, device).unwrap();
    feature_response(&model.backbone.valid(), device)
}

fn feature_response(backbone: &querylabel::backbone::Backbone, device: &Device) -> Vec<f32> {
    device.seed(7);
    let input = Tensor::<4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), device);
    backbone
        .forward_features(input)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
}

#[test]
fn linear_init_trains_the_head_first_then_the_whole_network() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let args = [
        "--head",
        "linear",
        "--finetune",
        "--linear-init-epochs",
        "1",
        "--epochs",
        "2",
        "--image-size",
        "64",
        "--batch-size",
        "8",
        "--max-train-images",
        "32",
        "--no-augmentation",
        "--ema-decay",
        "0",
        "--lr",
        "1e-3",
    ];
    let mut first = args.to_vec();
    first.extend(["--stop-after-epochs", "1"]);
    train(&run, &first);

    let device = Device::flex();
    let pretrained = pretrained_backbone(
        &BackboneConfig::new(querylabel::backbone::BackboneKind::EfficientNetLite0),
        None,
        &device,
    )
    .unwrap();
    let untouched = feature_response(&pretrained.valid(), &device);
    let checkpoint = run.join("checkpoint");
    std::fs::copy(run.join("best/model.json"), checkpoint.join("model.json")).unwrap();
    let after_linear_init = backbone_response(&checkpoint, &device);
    assert_eq!(
        untouched, after_linear_init,
        "the backbone moved during linear init"
    );

    let mut second = args.to_vec();
    second.push("--resume");
    train(&run, &second);
    let after_finetuning = backbone_response(&checkpoint, &device);
    let moved = untouched
        .iter()
        .zip(&after_finetuning)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(moved > 1e-4, "fine-tuning left the backbone unchanged");
}
