//! Training from cached backbone features (`trainer extract`, `train --features`), several
//! cached views per photo, the lesson's feature export, linear-init-then-fine-tune, and the
//! results report, on the shipped sample of real COCO photos with the CPU backend. They need the
//! converted Lite0 weights (`make weights`).

mod common;

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use common::{
    eval_on_sample_validation_split, eval_with, kill_at_fault_point, last_json_line, train, trainer,
};
use querylabel::backbone::{BackboneConfig, BackboneKind};
use querylabel::preprocess::{Preprocessing, decode_image};
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
    // The header alone, read without the features, is the same.
    assert_eq!(
        serde_json::to_value(FeatureCache::read_header(&cache).unwrap()).unwrap(),
        serde_json::to_value(&header).unwrap()
    );

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
    for (one, two) in train_losses(&run).iter().zip(train_losses(&parallel)) {
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
    assert!(!stderr.contains("warning"), "{stderr}");

    // A metrics file cut inside its last line is named; the table still comes from the state.
    let metrics = dir.path().join("q2l").join("metrics.jsonl");
    let text = std::fs::read_to_string(&metrics).unwrap();
    std::fs::write(&metrics, &text[..text.len() / 2]).unwrap();
    let (ok, stdout, stderr) = trainer(&[
        "report",
        "--plots",
        dir.path().to_str().unwrap(),
        dir.path().join("q2l").to_str().unwrap(),
    ]);
    assert!(ok, "trainer report failed:\n{stderr}");
    assert!(stdout.contains("| Query2Label | ROLE | 1 |"), "{stdout}");
    assert!(
        stderr.contains("metrics.jsonl line 1 is not an epoch record"),
        "{stderr}"
    );
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
    // The checkpoint's weights as a model directory of their own (the checkpoint is replaced
    // whole at every save, so nothing is added inside it).
    let checkpoint_model = |name: &str| {
        let model = dir.path().join(name);
        std::fs::create_dir_all(&model).unwrap();
        std::fs::copy(run.join("best/model.json"), model.join("model.json")).unwrap();
        std::fs::copy(run.join("checkpoint/model.bpk"), model.join("model.bpk")).unwrap();
        model
    };
    let after_linear_init = backbone_response(&checkpoint_model("after-linear-init"), &device);
    assert_eq!(
        untouched, after_linear_init,
        "the backbone moved during linear init"
    );

    let mut second = args.to_vec();
    second.push("--resume");
    train(&run, &second);
    let after_finetuning = backbone_response(&checkpoint_model("after-finetuning"), &device);
    let moved = untouched
        .iter()
        .zip(&after_finetuning)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(moved > 1e-4, "fine-tuning left the backbone unchanged");
}

/// Extracts the first `images` photos of the sample at 64 px with `views` views per photo.
/// `trainer extract` of the first `images` photos at 64 px, `views` views each, into `out`,
/// then `extra`.
fn extract_args(out: &Path, images: usize, views: usize, extra: &[&str]) -> Vec<String> {
    let fixed = [
        "extract",
        "--backend",
        "flex",
        "--image-size",
        "64",
        "--max-images",
    ];
    let mut args: Vec<String> = fixed.iter().map(|a| a.to_string()).collect();
    args.extend([images.to_string(), "--views".into(), views.to_string()]);
    args.extend(["--out".into(), out.to_str().unwrap().to_string()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn run_trainer(args: &[String]) -> (bool, String, String) {
    trainer(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn extract_views(out: &Path, images: usize, views: usize, extra: &[&str]) -> FeatureCache {
    let (ok, stdout, stderr) = run_trainer(&extract_args(out, images, views, extra));
    assert!(ok, "trainer extract failed:\n{stderr}");
    let counted = match views {
        1 => "× 1 view ".to_string(),
        _ => format!("× {views} views "),
    };
    assert!(stderr.contains(&counted), "{stderr}");
    let summary = last_json_line(&stdout);
    assert_eq!(
        summary["images"].as_u64().unwrap(),
        images as u64,
        "{summary}"
    );
    assert_eq!(
        summary["views"].as_u64().unwrap(),
        views as u64,
        "{summary}"
    );
    FeatureCache::read(out).unwrap()
}

/// The features of one view of one cached photo.
fn view_of(cache: &FeatureCache, row: usize, view: usize) -> Vec<f32> {
    cache.view_features_of(&[row], &[view]).0
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Half precision of features up to about 6 (ReLU6), plus batch-order noise.
const F16_TOLERANCE: f32 = 2e-2;

#[test]
fn extracting_views_caches_the_plain_photo_its_mirror_and_reproducible_crops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.safetensors");
    let cache = extract_views(&path, 6, 3, &[]);
    assert_eq!(cache.views(), 3);
    assert_eq!(cache.len(), 6);
    assert!(cache.header.view_crops.is_some());

    // Views 0 and 1 are the backbone's features of the plain input and of its mirror image.
    let device = Device::flex();
    let backbone = pretrained_backbone(
        &BackboneConfig::new(BackboneKind::EfficientNetLite0).with_frozen_bn(true),
        None,
        &device,
    )
    .unwrap()
    .valid();
    let preprocessing = Preprocessing::imagenet(64);
    for row in 0..3 {
        let bytes = std::fs::read(&cache.header.images[row]).unwrap();
        let chw = preprocessing.image_to_chw(&decode_image(&bytes).unwrap());
        let input = Tensor::<4>::from_data(TensorData::new(chw, [1, 3, 64, 64]), &device);
        let features = |input: Tensor<4>| -> Vec<f32> {
            backbone
                .forward_features(input)
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap()
        };
        let plain = features(input.clone());
        let mirrored = features(input.flip([3]));
        let (view0, view1, view2) = (
            view_of(&cache, row, 0),
            view_of(&cache, row, 1),
            view_of(&cache, row, 2),
        );
        assert!(
            max_difference(&view0, &plain) < F16_TOLERANCE,
            "row {row} view 0"
        );
        assert!(
            max_difference(&view1, &mirrored) < F16_TOLERANCE,
            "row {row} view 1"
        );
        for (a, b, what) in [
            (&view0, &view1, "0 and 1"),
            (&view0, &view2, "0 and 2"),
            (&view1, &view2, "1 and 2"),
        ] {
            assert!(
                max_difference(a, b) > 0.1,
                "row {row}: views {what} are alike"
            );
        }
    }
    // The plain view is what validation and the lesson read.
    assert_eq!(cache.features_of(&[4]).0, view_of(&cache, 4, 0));

    // Extracting again gives the same file; another seed other crops, but the same views 0, 1.
    let again = dir.path().join("again.safetensors");
    extract_views(&again, 6, 3, &[]);
    assert!(std::fs::read(&path).unwrap() == std::fs::read(&again).unwrap());
    let reseeded = extract_views(
        &dir.path().join("seed2.safetensors"),
        6,
        3,
        &["--seed", "2"],
    );
    for row in 0..6 {
        for view in [0, 1] {
            assert_eq!(view_of(&reseeded, row, view), view_of(&cache, row, view));
        }
    }
    assert!((0..6).any(|row| view_of(&reseeded, row, 2) != view_of(&cache, row, 2)));

    // No views at all is refused, naming the option.
    let (ok, _, stderr) = trainer(&[
        "extract",
        "--backend",
        "flex",
        "--views",
        "0",
        "--out",
        dir.path().join("none.safetensors").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("--views 0"), "{stderr}");
}

/// Arguments of a short, fast linear-head run on a small cache.
fn quick_linear(cache: &Path) -> Vec<&str> {
    vec![
        "--features",
        cache.to_str().unwrap(),
        "--head",
        "linear",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "1e-3",
        "--ema-decay",
        "0",
    ]
}

/// The training losses of a run, epoch by epoch.
fn train_losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["train_loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

#[test]
fn a_cache_from_before_views_still_loads_and_trains() {
    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("one.safetensors");
    let cache = extract_views(&current, 40, 1, &[]);

    // Rewrite it as the trainer wrote caches before views: no view fields in the header and
    // 4-D features.
    let bytes = std::fs::read(&current).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let key = "querylabel_feature_cache";
    let mut header: serde_json::Value =
        serde_json::from_str(&metadata.metadata().as_ref().unwrap()[key]).unwrap();
    let object = header.as_object_mut().unwrap();
    assert!(object.remove("views").is_some());
    assert!(object.remove("view_crops").is_some());
    let features = tensors.tensor("features").unwrap();
    let [n, views, c, h, w] = features.shape().try_into().unwrap();
    assert_eq!(views, 1);
    let labels = tensors.tensor("labels").unwrap();
    let legacy_tensors = [
        (
            "features",
            safetensors::tensor::TensorView::new(
                features.dtype(),
                vec![n, c, h, w],
                features.data(),
            )
            .unwrap(),
        ),
        (
            "labels",
            safetensors::tensor::TensorView::new(
                labels.dtype(),
                labels.shape().to_vec(),
                labels.data(),
            )
            .unwrap(),
        ),
    ];
    let legacy_metadata = std::collections::HashMap::from([(key.to_string(), header.to_string())]);
    let legacy = dir.path().join("legacy.safetensors");
    std::fs::write(
        &legacy,
        safetensors::serialize(legacy_tensors, Some(legacy_metadata)).unwrap(),
    )
    .unwrap();

    let read = FeatureCache::read(&legacy).unwrap();
    assert_eq!(read.views(), 1);
    assert!(read.header.view_crops.is_none());
    assert_eq!(read.features_of(&[0, 39]), cache.features_of(&[0, 39]));

    let run = dir.path().join("run");
    let summary = train(&run, &quick_linear(&legacy));
    assert!(
        summary["best_map"].as_f64().unwrap().is_finite(),
        "{summary}"
    );
    // The same data in the current layout trains the same steps.
    train(&dir.path().join("current"), &quick_linear(&current));
    assert_eq!(
        train_losses(&run),
        train_losses(&dir.path().join("current"))
    );

    // Flip averaging needs the mirrored view, which a one-view cache lacks.
    let (ok, _, stderr) = trainer(
        &[
            ["train", "--backend", "flex", "--tta-flip", "--out"].as_slice(),
            &[dir.path().join("refused").to_str().unwrap()],
            &quick_linear(&legacy),
        ]
        .concat(),
    );
    assert!(!ok);
    assert!(
        stderr.contains("legacy.safetensors") && stderr.contains("--views 2"),
        "{stderr}"
    );
}

#[test]
fn training_on_several_views_reproduces_for_a_seed_and_differs_from_one_view() {
    let dir = tempfile::tempdir().unwrap();
    let one_path = dir.path().join("one.safetensors");
    let three_path = dir.path().join("three.safetensors");
    let one = extract_views(&one_path, 40, 1, &[]);
    let three = extract_views(&three_path, 40, 3, &[]);
    // The plain view does not depend on how many views were extracted beside it.
    for row in [0, 17, 39] {
        assert!(max_difference(&view_of(&one, row, 0), &view_of(&three, row, 0)) < F16_TOLERANCE);
    }

    let first = train(&dir.path().join("first"), &quick_linear(&three_path));
    let second = train(&dir.path().join("second"), &quick_linear(&three_path));
    let single = train(&dir.path().join("single"), &quick_linear(&one_path));
    let first_losses = train_losses(&dir.path().join("first"));
    let second_losses = train_losses(&dir.path().join("second"));
    assert_eq!(
        first_losses, second_losses,
        "a 3-view run does not reproduce"
    );
    assert_eq!(first["best_map"], second["best_map"]);
    let single_losses = train_losses(&dir.path().join("single"));
    assert!(
        first_losses
            .iter()
            .zip(&single_losses)
            .all(|(a, b)| (a - b).abs() > 1e-6),
        "the extra views changed nothing: {first_losses:?} vs {single_losses:?}"
    );
    // Validation reads the plain view of either cache: the same photos, scored alike before
    // training.
    let initial = |summary: &serde_json::Value| summary["initial_map"].as_f64().unwrap();
    assert!(
        (initial(&first) - initial(&single)).abs() < 0.5,
        "{first} vs {single}"
    );

    // Flip-averaged validation from the cache, and flip-averaged evaluation of the photos.
    let averaged = train(
        &dir.path().join("averaged"),
        &[quick_linear(&three_path).as_slice(), &["--tta-flip"]].concat(),
    );
    assert!(averaged["best_map"].as_f64().unwrap().is_finite());
    let evaluate = |extra: &[&str]| {
        eval_with(
            &dir.path().join("first"),
            &querylabel_trainer::dataset::sample_dir(),
            extra,
        )
    };
    let plain = evaluate(&[]);
    let flipped = evaluate(&["--tta-flip"]);
    assert_eq!(plain["images"], flipped["images"]);
    assert_ne!(plain["mAP"], flipped["mAP"]);
}

/// The training labels a run saved in its checkpoint (LL-Cp's corrections, APL's soft
/// pseudo-negatives), row-major.
fn saved_training_labels(run: &Path) -> Vec<f32> {
    let bytes = std::fs::read(run.join("checkpoint/labels.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensor("labels")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn label_states_survive_a_resume_and_resume_refuses_changed_options() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.safetensors");
    extract_views(&cache, 48, 1, &[]);
    // LL-Cp with a large rate corrects labels from epoch 2; APL with a one-epoch warm-up
    // pseudo-labels after epochs 1 and 2.
    for (loss, extra) in [
        ("ll-cp", ["--ll-delta-rel", "5"]),
        ("em-apl", ["--apl-warmup-epochs", "1"]),
    ] {
        let mut common = quick_linear(&cache);
        let epochs = common.iter().position(|&arg| arg == "--epochs").unwrap() + 1;
        common[epochs] = "3";
        common.extend_from_slice(&["--labels", "single-positive", "--loss", loss]);
        common.extend_from_slice(&extra);
        let straight = dir.path().join(format!("{loss}-straight"));
        train(&straight, &common);

        let interrupted = dir.path().join(format!("{loss}-interrupted"));
        let mut first = common.clone();
        first.extend_from_slice(&["--stop-after-epochs", "2"]);
        train(&interrupted, &first);
        let mut again = common.clone();
        again.push("--resume");
        train(&interrupted, &again);

        let (a, b) = (train_losses(&straight), train_losses(&interrupted));
        assert_eq!(a.len(), 3, "{loss}");
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                "{loss}: {a:?} vs {b:?}"
            );
        }
        let labels = saved_training_labels(&straight);
        assert_eq!(
            labels,
            saved_training_labels(&interrupted),
            "{loss}: label state"
        );
        let changed = match loss {
            "ll-cp" => labels.iter().filter(|&&v| v == 1.0).count() > 48,
            _ => labels.iter().any(|&v| v < 0.0),
        };
        assert!(changed, "{loss}: training left the labels as they were");
    }

    // A resumed run keeps its own options: a different one is named and refused, raising
    // --epochs is allowed, and there must be something to resume.
    let run = dir.path().join("ll-cp-straight");
    let mut changed = quick_linear(&cache);
    changed.extend_from_slice(&["--labels", "single-positive", "--loss", "ll-r", "--resume"]);
    let out = run.to_str().unwrap();
    let mut args = vec!["train", "--backend", "flex", "--out", out];
    args.extend_from_slice(&changed);
    let (ok, _, stderr) = trainer(&args);
    assert!(
        !ok && stderr.contains("--loss: the run has \"ll-cp\""),
        "{stderr}"
    );
    let summary = train(&run, &["--epochs", "4", "--resume"]);
    assert_eq!(summary["epochs_run"], 4, "{summary}");
    let nothing = dir.path().join("nothing");
    let (ok, _, stderr) = trainer(&[
        "train",
        "--backend",
        "flex",
        "--out",
        nothing.to_str().unwrap(),
        "--resume",
    ]);
    assert!(
        !ok && stderr.contains("holds no training run to resume"),
        "{stderr}"
    );
}

#[test]
fn a_cache_cut_short_is_an_error_that_names_the_tensor_it_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.safetensors");
    extract_views(&path, 8, 1, &[]);
    let bytes = std::fs::read(&path).unwrap();
    // The labels come last: cut into them.
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let error = format!("{:#}", FeatureCache::read(&path).err().unwrap());
    assert!(
        error.contains("labels") && error.contains("does not hold its shape"),
        "{error}"
    );
    assert!(error.contains("cut.safetensors"), "{error}");
}

/// `trainer extract` killed after its second part, then run again: it continues from the
/// parts and writes the same cache byte for byte as a run never killed, and leaves no parts.
/// Run again with other settings while the parts are there, it refuses and says what differs.
#[test]
fn a_killed_extraction_continues_from_its_parts_to_the_same_cache() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.safetensors");
    // 3 photos a batch (2 views each), a part after every batch.
    let parts = ["--batch-size", "6", "--part-seconds", "0"];
    extract_views(&whole, 20, 2, &parts);
    assert!(!dir.path().join(".whole.safetensors.partial").exists());

    let killed = dir.path().join("killed.safetensors");
    let same_settings = extract_args(&killed, 20, 2, &parts);
    kill_at_fault_point(
        &same_settings.iter().map(String::as_str).collect::<Vec<_>>(),
        "extract-part:2",
    );
    assert!(!killed.exists());
    let partial = dir.path().join(".killed.safetensors.partial");
    assert!(
        partial
            .join("part-0000000003-0000000006.safetensors")
            .is_file()
    );

    let (ok, _, stderr) = run_trainer(&extract_args(&killed, 20, 3, &[]));
    assert!(!ok);
    assert!(
        stderr.contains(".killed.safetensors.partial") && stderr.contains("views 3 (was 2)"),
        "{stderr}"
    );

    let (ok, _, stderr) = run_trainer(&same_settings);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("continuing a killed extraction after its first 6 photos"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&killed).unwrap(),
        std::fs::read(&whole).unwrap()
    );
    assert!(!partial.exists());
}
