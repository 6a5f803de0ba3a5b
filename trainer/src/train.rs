//! Training a classifier: full or single-positive labels, frozen or fine-tuned backbone, any
//! loss of the core crate, one-cycle schedule, validation with clean labels after every epoch,
//! atomic checkpoints with exact resume, and a clear stop on a non-finite loss.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use querylabel::head::attention_spread_cost;
use querylabel::labels::LabelSpace;
use querylabel::loss::{
    LabelEstimator, LabelEstimatorConfig, LossOutput, LossProgress, MultiLabelLoss, PseudoLabeler,
    write_back_corrections,
};
use querylabel::model::{Classifier, ClassifierOutput};
use querylabel::preprocess::Preprocessing;
use querylabel::single_positive::{
    TrainValidationSplit, single_positive_labels, train_validation_split,
};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::atomic_files::{
    recover_directory, remove_stale_temporaries, replace_directory, write_atomically,
};
use crate::checkpoint::{load_module, read_json, save_module, write_json};
use crate::data_parallel::DeviceSet;
use crate::dataset::{Dataset, Split, open_dataset};
use crate::ema::update_average;
use crate::error::{Context, Result, TrainerError};
use crate::evaluate::{Evaluation, evaluate, score_cached_features, score_dataset};
use crate::fault_points::pause_if_asked;
use crate::feature_cache::FeatureCache;
use crate::flip_tta::{score_cached_features_flip_averaged, score_dataset_flip_averaged};
use crate::images::{ImageLoader, ImageRequest, MIRRORED_VIEW, PLAIN_VIEW, Prefetched, prefetch};
use crate::model_dir::OPTIONS_FILE;
use crate::plots::plot_history;
use crate::resume::{GivenFlag, refuse_changed_flags, resumed_epochs};
pub use crate::run_state::{EpochProgress, EpochRecord, TrainingState};
use crate::saved_model::{ModelDescription, save_model};
use crate::schedule::OneCycle;
use crate::train_options::{HeadKind, LabelMode, TrainOptions};
use crate::training_labels::{load_training_labels, save_training_labels};

/// What a finished run reports.
#[derive(Debug, Serialize)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub best_map: f64,
    pub best_epoch: usize,
    pub initial_map: f64,
    pub epochs_run: usize,
}

/// The files of a run directory.
struct RunFiles {
    dir: PathBuf,
}

impl RunFiles {
    fn options(&self) -> PathBuf {
        self.dir.join(OPTIONS_FILE)
    }
    fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }
    fn state(&self) -> PathBuf {
        self.checkpoint().join(STATE)
    }
    fn best(&self) -> PathBuf {
        self.dir.join("best")
    }
    fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }
    fn training_labels(&self) -> PathBuf {
        self.checkpoint().join(TRAINING_LABELS)
    }
}

/// Where a run's examples come from.
enum Examples {
    /// Image files, decoded (and augmented) every epoch.
    Images { train: Dataset, validation: Dataset },
    /// Rows of a feature cache.
    Features {
        cache: Arc<FeatureCache>,
        train: Vec<usize>,
        validation: Vec<usize>,
    },
}

/// The data of a run: training and validation examples and the training targets.
struct RunData {
    examples: Examples,
    label_space: LabelSpace,
    train_len: usize,
    /// `[train examples, classes]`: full labels or the observed single positives.
    targets: Vec<f32>,
}

impl RunData {
    fn n_classes(&self) -> usize {
        self.label_space.n_classes()
    }
}

/// Opens the data (and, for a feature cache, makes `options` agree with it: the cache decides
/// the backbone, its weights and the image size, so the saved model reproduces its features).
fn prepare_data(options: &mut TrainOptions) -> Result<RunData> {
    let (total, source) = match &options.features {
        Some(path) => {
            let cache = open_feature_cache(&path.clone(), options)?;
            (cache.len(), Err(cache))
        }
        None => {
            let dataset = open_dataset(&options.data, options.format, Split::Train)?;
            (dataset.len(), Ok(dataset))
        }
    };
    let split = training_split(total, options);
    let mut train_indices = split.train;
    if let Some(limit) = options.max_train_images {
        train_indices.truncate(limit);
    }
    if train_indices.is_empty() || split.validation.is_empty() {
        return Err(TrainerError::new(format!(
            "{total} images are too few for a training set and a validation set of {:.0}%",
            options.val_fraction * 100.0
        ))
        .in_file(&options.data)
        .with_hint("train on more images, or hold out another share with --val-fraction"));
    }
    let (examples, label_space, full) = match source {
        Ok(dataset) => {
            let train = dataset.subset(&train_indices);
            let validation = dataset.subset(&split.validation);
            let full = train.label_matrix();
            let label_space = train.label_space.clone();
            (Examples::Images { train, validation }, label_space, full)
        }
        Err(cache) => {
            let full = cache.labels_of(&train_indices);
            let label_space = cache.header.label_space.clone();
            let examples = Examples::Features {
                cache: Arc::new(cache),
                train: train_indices.clone(),
                validation: split.validation,
            };
            (examples, label_space, full)
        }
    };
    Ok(RunData {
        targets: training_targets(full, label_space.n_classes(), options),
        examples,
        label_space,
        train_len: train_indices.len(),
    })
}

/// Share of the photos that validation scores when `--val-fraction 0` holds none out.
const TRAINING_PHOTOS_SCORED: f64 = 0.2;

/// Which photos train and which validate. `--val-fraction 0` trains on every photo (as the
/// shipped models are); validation then scores a seeded fifth of the training photos, so the
/// epochs' numbers say how well the head fits them, not how it does on unseen photos.
fn training_split(total: usize, options: &TrainOptions) -> TrainValidationSplit {
    if options.val_fraction > 0.0 {
        return train_validation_split(total, options.val_fraction, options.seed);
    }
    eprintln!(
        "--val-fraction 0: every photo trains, and validation scores {:.0}% of them (its numbers \
         are not those of unseen photos)",
        TRAINING_PHOTOS_SCORED * 100.0
    );
    TrainValidationSplit {
        train: (0..total).collect(),
        validation: train_validation_split(total, TRAINING_PHOTOS_SCORED, options.seed).validation,
    }
}

/// The labels training sees: every positive, or one per image (saying how many images have
/// none to keep).
fn training_targets(full: Vec<f32>, classes: usize, options: &TrainOptions) -> Vec<f32> {
    match options.labels {
        LabelMode::Full => full,
        LabelMode::SinglePositive => {
            let unlabelled = full
                .chunks_exact(classes)
                .filter(|row| !row.contains(&1.0))
                .count();
            if unlabelled > 0 {
                eprintln!(
                    "warning: {unlabelled} of {} training images have no positive label, so none \
                     is kept for them: they train with every label unobserved",
                    full.len() / classes
                );
            }
            single_positive_labels(&full, classes, options.seed)
        }
    }
}

/// Reads the feature cache at `path` and makes `options` agree with it: the cache decides the
/// backbone, its weights, the image size and the data set, so that the saved model reproduces
/// its features.
fn open_feature_cache(path: &Path, options: &mut TrainOptions) -> Result<FeatureCache> {
    let cache = FeatureCache::read(path)?;
    if cache.header.pooled && options.head == HeadKind::Q2l {
        return Err(TrainerError::new(
            "the features are pooled, but a Query2Label head attends over feature maps",
        )
        .in_file(path)
        .with_hint("extract without --pooled, or train --head linear"));
    }
    if options.tta_flip && cache.views() <= MIRRORED_VIEW {
        return Err(TrainerError::new(format!(
            "--tta-flip needs the mirrored view of each photo, but the cache has {} view(s)",
            cache.views()
        ))
        .in_file(path)
        .with_hint("extract it with --views 2 or more"));
    }
    options.backbone = cache.header.backbone;
    options.backbone_weights = cache.header.backbone_weights.clone();
    options.image_size = cache.header.image_size;
    options.data = cache.header.source.clone();
    Ok(cache)
}

/// The input of one training batch.
enum BatchInput {
    /// Normalised CHW images.
    Images(Vec<Vec<f32>>),
    /// Cached backbone features and their `[rows, C, H, W]` shape.
    Features(Vec<f32>, [usize; 4]),
}

impl BatchInput {
    /// The examples of `range` alone.
    fn slice(&self, range: std::ops::Range<usize>) -> BatchInput {
        match self {
            BatchInput::Images(images) => BatchInput::Images(images[range].to_vec()),
            BatchInput::Features(values, [_, c, h, w]) => {
                let size = c * h * w;
                BatchInput::Features(
                    values[range.start * size..range.end * size].to_vec(),
                    [range.len(), *c, *h, *w],
                )
            }
        }
    }

    /// The model's output for this input. With a frozen backbone only the head's graph is
    /// recorded: the backbone runs on the inference device, without autodiff.
    fn output(
        &self,
        model: &Classifier,
        backbone_trains: bool,
        preprocessing: &Preprocessing,
        (device, train_device): &(Device, Device),
    ) -> ClassifierOutput {
        match self {
            BatchInput::Images(images) if backbone_trains => {
                model.forward(preprocessing.batch(images, train_device))
            }
            BatchInput::Images(images) => {
                let images = preprocessing.batch(images, device);
                let features = model.backbone.valid().forward_features(images).autodiff();
                model.head.forward(features)
            }
            BatchInput::Features(values, shape) => {
                let features =
                    Tensor::<4>::from_data(TensorData::new(values.clone(), *shape), train_device);
                model.head.forward(features)
            }
        }
    }
}

/// The loss to minimise for one batch's `output`: the labels' loss, plus what the present
/// labels' attention (those `targets` marks 1) costs for its spread (`--attention-spread-cost`),
/// weighted by `--attention-entropy`, when the head has attention and the weight is not 0.
fn batch_loss(
    setup: &StepSetup,
    output: ClassifierOutput,
    targets: Tensor<2>,
    estimated: Option<Tensor<2>>,
    progress: LossProgress,
) -> LossOutput {
    let ClassifierOutput {
        logits,
        cross_attention,
        feature_size,
    } = output;
    let mut losses = (setup.loss_function).forward(logits, targets.clone(), estimated, progress);
    let options = setup.options;
    if options.attention_entropy > 0.0 && !cross_attention.is_empty() {
        let spread = attention_spread_cost(
            &cross_attention,
            feature_size,
            options.spread_cost(),
            targets.equal_elem(1.0).float(),
        );
        losses.total = losses.total + spread.mul_scalar(options.attention_entropy);
    }
    losses
}

/// The training targets of `rows`, `[rows, classes]`.
fn targets_of(targets: &[f32], rows: &[usize], n_classes: usize, device: &Device) -> Tensor<2> {
    let mut values = Vec::with_capacity(rows.len() * n_classes);
    for &row in rows {
        values.extend_from_slice(&targets[row * n_classes..(row + 1) * n_classes]);
    }
    Tensor::from_data(TensorData::new(values, [rows.len(), n_classes]), device)
}

/// One training batch, prepared ahead on another thread.
struct TrainBatch {
    /// Training-set positions of the examples that loaded.
    rows: Vec<usize>,
    input: BatchInput,
    /// Examples asked for, and those that could not be read.
    requested: usize,
    skipped: usize,
}

/// The batches of one epoch in `order`, from batch `first_batch` on: the next one is read, decoded and augmented (or looked
/// up in the feature cache) on other threads while the current one trains.
fn epoch_batches(
    examples: &Examples,
    order: &[usize],
    batch_size: usize,
    first_batch: usize,
    loader: &ImageLoader,
    epoch_seed: u64,
) -> Prefetched<TrainBatch> {
    let chunks: Vec<Vec<usize>> = order
        .chunks(batch_size)
        .skip(first_batch)
        .map(<[usize]>::to_vec)
        .collect();
    match examples {
        Examples::Images { train, .. } => {
            let loader = loader.clone();
            let paths: Vec<PathBuf> = train.examples.iter().map(|e| e.path.clone()).collect();
            prefetch(
                chunks.into_iter().map(move |chunk| {
                    let requests: Vec<ImageRequest> = chunk
                        .iter()
                        .map(|&i| ImageRequest {
                            path: paths[i].clone(),
                            index: i as u64,
                        })
                        .collect();
                    let batch = loader.load_batch(&requests, epoch_seed);
                    TrainBatch {
                        rows: batch.kept.iter().map(|&p| chunk[p]).collect(),
                        input: BatchInput::Images(batch.images),
                        requested: chunk.len(),
                        skipped: batch.skipped.len(),
                    }
                }),
                1,
            )
        }
        Examples::Features { cache, train, .. } => {
            let views = epoch_views(train.len(), cache.views(), epoch_seed);
            let (cache, train) = (Arc::clone(cache), train.clone());
            prefetch(
                chunks.into_iter().map(move |chunk| {
                    let cache_rows: Vec<usize> = chunk.iter().map(|&i| train[i]).collect();
                    let chunk_views: Vec<usize> = chunk.iter().map(|&i| views[i]).collect();
                    let (values, shape) = cache.view_features_of(&cache_rows, &chunk_views);
                    TrainBatch {
                        requested: chunk.len(),
                        rows: chunk,
                        input: BatchInput::Features(values, shape),
                        skipped: 0,
                    }
                }),
                1,
            )
        }
    }
}

/// The stream of the epoch seed's generator that draws the cached views (stream 0 shuffles).
const VIEW_STREAM: u64 = 1;

/// The cached view each training example is seen in this epoch, by training-set position:
/// uniform over the cache's `views`, a function of the epoch seed alone (so a run, and a resumed
/// run, reproduce) and independent of the order and the batching. With one view nothing is
/// drawn, so single-view runs are what they were before views existed.
fn epoch_views(examples: usize, views: usize, epoch_seed: u64) -> Vec<usize> {
    if views <= 1 {
        return vec![PLAIN_VIEW; examples];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(epoch_seed);
    rng.set_stream(VIEW_STREAM);
    (0..examples).map(|_| rng.random_range(0..views)).collect()
}

fn initial_model(
    options: &TrainOptions,
    num_classes: usize,
    device: &Device,
) -> Result<Classifier> {
    let config = options.classifier_config(num_classes);
    let mut model = config.init(device);
    model.backbone = crate::weights::pretrained_backbone(
        &config.backbone,
        options.backbone_weights.as_deref(),
        device,
    )?;
    if !options.finetune {
        model.backbone = model.backbone.freeze();
    }
    Ok(model)
}

/// How one session of a run goes. None of it changes what the run computes, so it is not saved
/// in `options.json` and may differ from session to session.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// End this session after this many epochs, leaving a checkpoint to resume from (to
    /// time-box sessions on shared machines).
    pub stop_after_epochs: Option<usize>,
    /// Also checkpoint every this many optimiser steps inside an epoch, so that a killed run
    /// loses at most that many steps rather than up to an epoch.
    pub checkpoint_every: Option<usize>,
}

/// The options of the run in `files`: the command line's for a new run; for `--resume`, the
/// saved ones, which the flags given again must agree with.
fn resolve_run_options(
    files: &RunFiles,
    options: &TrainOptions,
    resume: Option<&[GivenFlag]>,
) -> Result<TrainOptions> {
    let Some(given) = resume else {
        if files.state().is_file() {
            return Err(TrainerError::new("already holds a training run")
                .in_file(&files.dir)
                .with_hint("pass --resume to continue it, or choose another --out"));
        }
        return Ok(options.clone());
    };
    if !files.options().is_file() {
        return Err(TrainerError::new(format!(
            "{} holds no training run to resume (no options.json)",
            files.dir.display()
        ))
        .at_flag("--resume")
        .with_hint("drop --resume to start a new run there"));
    }
    let mut saved: TrainOptions = read_json(&files.options())?;
    refuse_changed_flags(&saved, options, given)?;
    saved.epochs = resumed_epochs(saved.epochs, options.epochs, given)?;
    if files.state().is_file() {
        eprintln!("resuming {} from its last checkpoint", files.dir.display());
    } else {
        eprintln!(
            "{} was stopped before its first checkpoint: starting it over with its saved options",
            files.dir.display()
        );
    }
    Ok(saved)
}

/// The seed of the dropout masks of optimiser step `step`: a function of the run's seed and the
/// step alone, so that a run resumed at any step draws what an uninterrupted one would have.
fn step_seed(seed: u64, step: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(step as u64)
        .rotate_left(17)
}

/// Everything training changes as it goes, which a checkpoint holds whole.
struct Trainee {
    model: Classifier,
    optimizer: ModuleOptimizer,
    /// The exponential moving average of the weights, when kept.
    average: Option<Classifier>,
    /// ROLE's label estimator and its optimiser.
    estimator: Option<LabelEstimator>,
    estimator_optimizer: ModuleOptimizer,
    /// The labels the loss sees, which LL-Cp and APL change as training goes.
    training_labels: Vec<f32>,
    state: TrainingState,
}

/// What every optimiser step of a session shares.
struct StepSetup<'a> {
    options: &'a TrainOptions,
    devices: &'a DeviceSet,
    preprocessing: &'a Preprocessing,
    loss_function: &'a MultiLabelLoss,
    schedule: &'a OneCycle,
    n_classes: usize,
}

/// What one optimiser step did.
enum StepOutcome {
    Trained {
        loss: f64,
        learning_rate: f64,
        /// Unobserved labels LL-Cp made positive for good.
        corrected: usize,
    },
    /// The loss was not finite; nothing was changed.
    NonFinite(f64),
}

/// A batch's loss and the gradients it gives.
struct StepGradients {
    loss: f64,
    model: GradientsParams,
    /// ROLE's label estimator's.
    estimator: Option<GradientsParams>,
    /// The unobserved labels LL-Cp corrects in this batch.
    corrections: Option<Tensor<2, Bool>>,
}

impl Trainee {
    /// The untrained model and fresh optimisers for `data`.
    fn new(
        options: &TrainOptions,
        data: &RunData,
        loss: &MultiLabelLoss,
        train_device: &Device,
    ) -> Result<Self> {
        let n_classes = data.n_classes();
        let model = initial_model(options, n_classes, train_device)?;
        let estimator = loss.needs_label_estimator().then(|| {
            let targets = Tensor::<2>::from_data(
                TensorData::new(data.targets.clone(), [data.train_len, n_classes]),
                train_device,
            );
            LabelEstimatorConfig::new().init(targets, options.seed, train_device)
        });
        Ok(Trainee {
            average: options.ema_decay().map(|_| model.valid()),
            model,
            optimizer: options.optimizer(),
            estimator,
            estimator_optimizer: options.optimizer(),
            training_labels: data.targets.clone(),
            state: TrainingState::default(),
        })
    }

    /// Replaces everything by what the run's checkpoint holds.
    fn load_checkpoint(
        mut self,
        files: &RunFiles,
        options: &TrainOptions,
        data: &RunData,
    ) -> Result<Self> {
        let dir = files.checkpoint();
        self.state = read_json(&files.state())?;
        self.model = load_module(self.model, &dir.join("model.bpk"))?;
        self.optimizer = load_optimizer(self.optimizer, &dir.join("optimizer.bpk"))?;
        if let Some(current) = self.average.take() {
            self.average = Some(load_module(current, &dir.join("ema.bpk"))?);
        }
        if let Some(current) = self.estimator.take() {
            self.estimator = Some(load_module(current, &dir.join("estimator.bpk"))?);
            self.estimator_optimizer = load_optimizer(
                self.estimator_optimizer,
                &dir.join("estimator-optimizer.bpk"),
            )?;
        }
        if options.loss().updates_labels() {
            self.training_labels =
                load_training_labels(&files.training_labels(), data.train_len, data.n_classes())?;
        }
        Ok(self)
    }

    /// The loss of `batch` and its gradients, on the one training device.
    fn gradients(
        &self,
        batch: &TrainBatch,
        setup: &StepSetup,
        backbone_trains: bool,
        progress: LossProgress,
    ) -> StepGradients {
        let (devices, rows) = (setup.devices, &batch.rows);
        let train_device = &devices.main().1;
        let output = (batch.input).output(
            &self.model,
            backbone_trains,
            setup.preprocessing,
            devices.main(),
        );
        let estimated = self.estimator.as_ref().map(|estimator| {
            let indices: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
            estimator.forward(Tensor::<1, Int>::from_data(
                TensorData::new(indices, [rows.len()]),
                train_device,
            ))
        });
        let targets = targets_of(&self.training_labels, rows, setup.n_classes, train_device);
        let losses = batch_loss(setup, output, targets, estimated, progress);
        let loss = losses.total;
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        let mut gradients = loss.backward();
        StepGradients {
            loss: loss_value,
            model: GradientsParams::from_module(&mut gradients, &self.model),
            estimator: (self.estimator.as_ref())
                .map(|estimator| GradientsParams::from_module(&mut gradients, estimator)),
            corrections: losses.corrections,
        }
    }

    /// The loss of `batch` and its gradients, each device taking a share of the rows (no
    /// label estimator and no corrections: [`TrainOptions::check`] keeps those on one device).
    fn gradients_across_devices(
        &self,
        batch: &TrainBatch,
        setup: &StepSetup,
        backbone_trains: bool,
        progress: LossProgress,
    ) -> StepGradients {
        let (rows, training_labels) = (&batch.rows, &self.training_labels);
        let (gradients, loss_value) = setup.devices.gradients(
            &self.model,
            rows.len(),
            setup.loss_function.sums_over_images(),
            |replica, share, share_devices| {
                let output = batch.input.slice(share.clone()).output(
                    replica,
                    backbone_trains,
                    setup.preprocessing,
                    share_devices,
                );
                let targets = targets_of(
                    training_labels,
                    &rows[share],
                    setup.n_classes,
                    &share_devices.1,
                );
                batch_loss(setup, output, targets, None, progress).total
            },
        );
        StepGradients {
            loss: loss_value,
            model: gradients,
            estimator: None,
            corrections: None,
        }
    }

    /// Writes the checkpoint as a whole (see [`replace_directory`]): the state, written last,
    /// always describes the files beside it. The run's metrics and plots follow.
    fn save_checkpoint(
        &self,
        files: &RunFiles,
        options: &TrainOptions,
        n_classes: usize,
    ) -> Result<()> {
        replace_directory(&files.checkpoint(), |dir| {
            let written = || pause_if_asked("checkpoint-file");
            save_module(&self.model, &dir.join("model.bpk"))?;
            written();
            save_optimizer(&self.optimizer, &dir.join("optimizer.bpk"))?;
            written();
            if let Some(average) = &self.average {
                save_module(average, &dir.join("ema.bpk"))?;
                written();
            }
            if let Some(estimator) = &self.estimator {
                save_module(estimator, &dir.join("estimator.bpk"))?;
                save_optimizer(
                    &self.estimator_optimizer,
                    &dir.join("estimator-optimizer.bpk"),
                )?;
                written();
            }
            if options.loss().updates_labels() {
                save_training_labels(&dir.join(TRAINING_LABELS), &self.training_labels, n_classes)?;
                written();
            }
            write_json(&dir.join(STATE), &self.state)
        })?;
        write_history(files, &self.state)
    }

    /// One optimiser step on `batch` (the train step, apart from the loop). Takes the trainee
    /// and gives it back, so that the optimiser can update parameters it alone owns in place.
    fn step(
        mut self,
        batch: &TrainBatch,
        setup: &StepSetup,
        backbone_trains: bool,
        progress: LossProgress,
    ) -> (Self, StepOutcome) {
        let StepSetup {
            options,
            devices,
            schedule,
            n_classes,
            ..
        } = *setup;
        devices
            .main()
            .1
            .seed(step_seed(options.seed, self.state.steps));
        let StepGradients {
            loss: loss_value,
            model: model_gradients,
            estimator: estimator_gradients,
            corrections,
        } = if devices.devices.len() == 1 {
            self.gradients(batch, setup, backbone_trains, progress)
        } else {
            self.gradients_across_devices(batch, setup, backbone_trains, progress)
        };
        let rows = &batch.rows;
        if !loss_value.is_finite() {
            return (self, StepOutcome::NonFinite(loss_value));
        }
        let learning_rate = schedule.learning_rate(self.state.steps);
        self.model = self
            .optimizer
            .step(learning_rate, self.model, model_gradients);
        if let (Some(current), Some(gradients)) = (self.estimator.take(), estimator_gradients) {
            self.estimator = Some(self.estimator_optimizer.step(
                learning_rate * options.estimator_lr_multiplier,
                current,
                gradients,
            ));
        }
        if let (Some(decay), Some(current)) = (options.ema_decay(), self.average.take()) {
            self.average = Some(update_average(current, &self.model, decay));
        }
        let corrected = corrections.map_or(0, |corrections| {
            let flags = corrections
                .into_data()
                .try_into_vec::<bool>()
                .expect("a boolean mask");
            write_back_corrections(&mut self.training_labels, n_classes, rows, &flags)
        });
        self.state.steps += 1;
        let outcome = StepOutcome::Trained {
            loss: loss_value,
            learning_rate,
            corrected,
        };
        (self, outcome)
    }
}

/// The name of the training state inside a checkpoint, written last.
const STATE: &str = "state.json";
/// The name of the changed training labels inside a checkpoint.
const TRAINING_LABELS: &str = "labels.safetensors";

/// Writes `metrics.jsonl` and the plots from the recorded epochs.
fn write_history(files: &RunFiles, state: &TrainingState) -> Result<()> {
    let history: String = state
        .history
        .iter()
        .map(|record| serde_json::to_string(record).map(|line| line + "\n"))
        .collect::<Result<_, _>>()
        .context_in(files.metrics(), "cannot write as JSON")?;
    write_atomically(&files.metrics(), history.as_bytes())?;
    plot_history(&files.dir, &state.history)
}

/// What a run works with from start to end: its files, options and data, where it computes,
/// and how it reads photos.
struct Run {
    files: RunFiles,
    options: TrainOptions,
    data: RunData,
    devices: DeviceSet,
    preprocessing: Preprocessing,
    /// What `best/` records beside the weights.
    description: ModelDescription,
    train_loader: ImageLoader,
    eval_loader: ImageLoader,
}

impl Run {
    /// Puts back what a kill left half done, settles the options (the command line's, or the
    /// saved ones on `--resume`), opens the data and saves the options of a new run. Also says
    /// whether there is a checkpoint to resume from.
    fn open(
        options: &TrainOptions,
        run_dir: &Path,
        resume: Option<&[GivenFlag]>,
    ) -> Result<(Run, bool)> {
        let files = RunFiles {
            dir: run_dir.to_path_buf(),
        };
        recover_directory(&files.checkpoint())?;
        recover_directory(&files.best())?;
        let stale = remove_stale_temporaries(run_dir)?;
        if stale > 0 {
            eprintln!(
                "removed {stale} unfinished temporary file(s) that a killed run left in {}",
                run_dir.display()
            );
        }
        let mut options = resolve_run_options(&files, options, resume)?;
        let resuming = resume.is_some() && files.state().is_file();
        options.check()?;
        let data = prepare_data(&mut options)?;
        // Saved once the data is open: a feature cache decides the data set, backbone and image
        // size, and options.json should say what the run used, not the command line's defaults.
        if resume.is_none() {
            write_json(&files.options(), &options)?;
        }
        let devices = DeviceSet::new(
            (options.device.devices.iter())
                .map(|&index| options.device.backend.device(index))
                .collect(),
        );
        let preprocessing = Preprocessing::imagenet(options.image_size);
        let description = ModelDescription {
            classifier: options.classifier_config(data.n_classes()),
            label_space: data.label_space.clone(),
            preprocessing: preprocessing.clone(),
            // Chosen on the validation split at export (`trainer export`), not during training.
            decision_threshold: Default::default(),
        };
        let loader = |augmentation| ImageLoader {
            preprocessing: preprocessing.clone(),
            augmentation,
        };
        let run = Run {
            train_loader: loader(Some(options.augmentation.clone())),
            eval_loader: loader(None),
            files,
            options,
            data,
            devices,
            preprocessing,
            description,
        };
        Ok((run, resuming))
    }

    /// The inference device, where validation runs.
    fn device(&self) -> &Device {
        &self.devices.main().0
    }

    /// Scores `model` on the validation examples with clean labels.
    fn validate(&self, model: &Classifier) -> Result<Evaluation> {
        validate(
            model,
            &self.data.examples,
            &self.eval_loader,
            &self.options,
            self.device(),
        )
    }

    /// Validates the untrained model, which `best/` starts as, so that it never holds a worse
    /// one: a run that diverges leaves the starting point there rather than its broken weights.
    fn start_best(&self, trainee: &mut Trainee) -> Result<()> {
        let before = self.validate(&trainee.model)?;
        eprintln!("validation mAP before training: {:.2}", before.map);
        let state = &mut trainee.state;
        state.initial_map = Some(before.map);
        state.best_map = Some(before.map);
        state.best_epoch = Some(0);
        save_model(
            &self.files.best(),
            &trainee.model.valid(),
            &self.description,
        )
    }

    /// APL's pseudo-labelling after `epoch` (0-based), when it is due.
    fn pseudo_label(
        &self,
        labeler: Option<&PseudoLabeler>,
        epoch: usize,
        trainee: &mut Trainee,
    ) -> Result<()> {
        let Some(labeler) = labeler.filter(|l| l.updates_after(epoch + 1)) else {
            return Ok(());
        };
        let probabilities = training_probabilities(
            &trainee.model,
            &self.data,
            &self.eval_loader,
            self.options.batch_size,
            self.device(),
        )?;
        let new = labeler.update(&mut trainee.training_labels, &probabilities);
        eprintln!(
            "{}: {} unobserved labels became soft pseudo-negatives",
            self.options.loss(),
            new.iter().filter(|&&n| n).count()
        );
        Ok(())
    }

    /// Validates the weights and their average after `epoch` (0-based), records the epoch,
    /// keeps the better of the two in `best/` if it beats the best so far, and checkpoints.
    fn end_epoch(&self, trainee: &mut Trainee, epoch: usize, outcome: EpochOutcome) -> Result<()> {
        pause_if_asked("validation");
        let evaluation = self.validate(&trainee.model)?;
        let average_evaluation = (trainee.average.as_ref())
            .map(|average| self.validate(average))
            .transpose()?;
        let totals = &outcome.totals;
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: totals.loss_sum / totals.loss_batches.max(1) as f64,
            learning_rate: outcome.learning_rate,
            val_map: evaluation.map,
            val_cf1: evaluation.cf1,
            val_of1: evaluation.of1,
            val_ema_map: average_evaluation.as_ref().map(|e| e.map),
            val_attention_focus: evaluation.attention_focus,
            images_per_second: totals.seen as f64 / totals.seconds.max(1e-9),
            skipped_images: totals.skipped,
        };
        eprintln!("{}", epoch_line(&record, self.options.epochs));
        // The better of the weights and their average competes for the best model.
        let (epoch_map, epoch_model) = match (&average_evaluation, &trainee.average) {
            (Some(averaged), Some(average)) if averaged.map > evaluation.map => {
                (averaged.map, average.clone())
            }
            _ => (evaluation.map, trainee.model.valid()),
        };
        let state = &mut trainee.state;
        if state.best_map.is_none_or(|best| epoch_map > best) {
            state.best_map = Some(epoch_map);
            state.best_epoch = Some(epoch + 1);
            save_model(&self.files.best(), &epoch_model, &self.description)?;
        }
        state.history.push(record);
        state.epochs_done = epoch + 1;
        state.epoch_progress = None;
        let comparable_losses = !self.options.loss().changes_over_epochs();
        let initial_map = state.initial_map.unwrap_or(f64::NAN);
        if let Some(warning) = divergence_warning(&state.history, initial_map, comparable_losses) {
            eprintln!("warning: {warning}");
        }
        trainee.save_checkpoint(&self.files, &self.options, self.data.n_classes())
    }

    /// Why the run stops before its last epoch, if it does: the epochs asked of this session
    /// (which began after `first_epoch` epochs) are done, or validation stopped improving.
    fn stop_reason(
        &self,
        state: &TrainingState,
        session: &SessionOptions,
        first_epoch: usize,
    ) -> Option<String> {
        let this_session = state.epochs_done - first_epoch;
        if (session.stop_after_epochs).is_some_and(|epochs| this_session >= epochs) {
            return Some(format!(
                "stopping after {this_session} epochs as asked; continue with --resume"
            ));
        }
        let stalled = state.epochs_done - state.best_epoch.unwrap_or(0);
        (self.options.patience)
            .is_some_and(|patience| stalled >= patience)
            .then(|| format!("no better validation mAP for {stalled} epochs: stopping early"))
    }

    /// The run's result, with a warning when no epoch beat the untrained model.
    fn summary(&self, state: &TrainingState) -> Result<TrainSummary> {
        let initial_map = state.initial_map.unwrap_or(f64::NAN);
        let every_epoch_worse = !state.history.is_empty()
            && state
                .history
                .iter()
                .all(|record| record.val_map < initial_map);
        if state.best_epoch == Some(0) && every_epoch_worse {
            eprintln!(
                "warning: every epoch scored below the untrained model (validation mAP \
                 {initial_map:.2}), so {} holds the untrained model; try a lower --lr",
                self.files.best().display()
            );
        }
        Ok(TrainSummary {
            run_dir: self.files.dir.clone(),
            best_map: state.best_map.ok_or_else(|| {
                TrainerError::new("no epoch was trained").in_file(&self.files.dir)
            })?,
            best_epoch: state.best_epoch.unwrap_or(0),
            initial_map,
            epochs_run: state.epochs_done,
        })
    }
}

/// The line an epoch prints.
fn epoch_line(record: &EpochRecord, epochs: usize) -> String {
    let focus = (record.val_attention_focus)
        .map_or(String::new(), |focus| format!(", attention {focus:.1}×"));
    let skipped = match record.skipped_images {
        0 => String::new(),
        skipped => format!(", {skipped} unreadable images skipped"),
    };
    format!(
        "epoch {}/{epochs}: loss {:.4}, validation mAP {:.2}, CF1 {:.2}, OF1 {:.2}{focus}, {:.1} \
         images/s{skipped}",
        record.epoch,
        record.train_loss,
        record.val_map,
        record.val_cf1,
        record.val_of1,
        record.images_per_second,
    )
}

/// Trains (or resumes, when `resume` and the run directory has a checkpoint) and returns the
/// best validation result.
pub fn train(
    options: &TrainOptions,
    run_dir: &Path,
    resume: Option<&[GivenFlag]>,
    session: &SessionOptions,
) -> Result<TrainSummary> {
    let (run, resuming) = Run::open(options, run_dir, resume)?;
    let (options, data) = (&run.options, &run.data);
    // Parameters are drawn from the device's generator (lazily, at first use): seed it so a
    // run's initial head is a function of --seed alone.
    let (device, train_device) = run.devices.main();
    device.seed(options.seed);
    train_device.seed(options.seed);
    let loss_function = options.loss_config().init();
    let mut trainee = Trainee::new(options, data, &loss_function, train_device)?;
    if resuming {
        trainee = trainee.load_checkpoint(&run.files, options, data)?;
        // A kill between the checkpoint and its metrics leaves them an epoch behind.
        write_history(&run.files, &trainee.state)?;
    }
    let pseudo_labeler = options.pseudo_labeler(&data.targets, data.n_classes());
    let schedule = OneCycle {
        max_lr: options.learning_rate,
        total_steps: data.train_len.div_ceil(options.batch_size) * options.epochs,
        warmup_fraction: 0.2,
    };
    let setup = StepSetup {
        options,
        devices: &run.devices,
        preprocessing: &run.preprocessing,
        loss_function: &loss_function,
        schedule: &schedule,
        n_classes: data.n_classes(),
    };
    if trainee.state.history.is_empty() && trainee.state.epoch_progress.is_none() {
        run.start_best(&mut trainee)?;
    }
    let first_epoch = trainee.state.epochs_done;
    for epoch in first_epoch..options.epochs {
        let plan = EpochPlan {
            epoch,
            epoch_seed: (options.seed.wrapping_mul(1_000_003)).wrapping_add(epoch as u64),
            data,
            loader: &run.train_loader,
            files: &run.files,
            checkpoint_every: session.checkpoint_every,
        };
        let outcome;
        (trainee, outcome) = train_epoch(trainee, &setup, &plan)?;
        if outcome.totals.corrected > 0 {
            let corrected = outcome.totals.corrected;
            eprintln!(
                "{}: {corrected} unobserved labels became positives",
                options.loss()
            );
        }
        run.pseudo_label(pseudo_labeler.as_ref(), epoch, &mut trainee)?;
        run.end_epoch(&mut trainee, epoch, outcome)?;
        if let Some(reason) = run.stop_reason(&trainee.state, session, first_epoch) {
            eprintln!("{reason}");
            break;
        }
    }
    run.summary(&trainee.state)
}

/// What one epoch of [`train_epoch`] works on.
struct EpochPlan<'a> {
    /// 0-based.
    epoch: usize,
    /// Shuffling, augmentation and the cached views depend only on it.
    epoch_seed: u64,
    data: &'a RunData,
    loader: &'a ImageLoader,
    files: &'a RunFiles,
    checkpoint_every: Option<usize>,
}

/// What an epoch of [`train_epoch`] did: its totals, and the learning rate it ended at.
struct EpochOutcome {
    totals: EpochProgress,
    learning_rate: f64,
}

/// Trains the batches of one epoch, from where a checkpoint taken inside it left off, and
/// checkpoints every `checkpoint_every` steps on the way; stops the run with a clear message on
/// a non-finite loss.
fn train_epoch(
    mut trainee: Trainee,
    setup: &StepSetup,
    plan: &EpochPlan,
) -> Result<(Trainee, EpochOutcome)> {
    let options = setup.options;
    let data = plan.data;
    let mut order: Vec<usize> = (0..data.train_len).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(plan.epoch_seed));
    // The totals so far: zero, or a checkpoint's taken inside this epoch.
    let mut totals = trainee.state.epoch_progress.clone().unwrap_or_default();
    let (first_batch, seconds_before) = (totals.batches_done, totals.seconds);
    let progress = epoch_progress_bar(plan.epoch, options.epochs, data.train_len);
    progress.set_position((first_batch * options.batch_size).min(data.train_len) as u64);
    let started = Instant::now();
    let mut learning_rate = setup.schedule.learning_rate(trainee.state.steps);
    let backbone_trains = options.finetune && plan.epoch >= options.linear_init_epochs;
    let loss_progress = LossProgress {
        epoch: plan.epoch + 1,
        epochs: options.epochs,
    };
    let (batch_size, seed) = (options.batch_size, plan.epoch_seed);
    let batches = epoch_batches(
        &data.examples,
        &order,
        batch_size,
        first_batch,
        plan.loader,
        seed,
    );
    let batches_per_epoch = data.train_len.div_ceil(options.batch_size);
    for (batch_index, batch) in (first_batch..).zip(batches) {
        totals.skipped += batch.skipped;
        progress.inc(batch.requested as u64);
        if !batch.rows.is_empty() {
            let outcome;
            (trainee, outcome) = trainee.step(&batch, setup, backbone_trains, loss_progress);
            match outcome {
                StepOutcome::Trained {
                    loss,
                    learning_rate: step_learning_rate,
                    corrected,
                } => {
                    totals.add_batch(loss, batch.rows.len(), corrected);
                    learning_rate = step_learning_rate;
                }
                StepOutcome::NonFinite(loss) => {
                    progress.abandon();
                    let state = &trainee.state;
                    return Err(non_finite_error(loss, plan.epoch, state, plan.files));
                }
            }
            let mean_loss = totals.loss_sum / totals.loss_batches as f64;
            progress.set_message(format!("loss {mean_loss:.4} lr {learning_rate:.2e}"));
        }
        totals.batches_done = batch_index + 1;
        let due = plan
            .checkpoint_every
            .is_some_and(|every| trainee.state.steps.is_multiple_of(every));
        if due && !batch.rows.is_empty() && totals.batches_done < batches_per_epoch {
            trainee.state.epoch_progress = Some(EpochProgress {
                seconds: seconds_before + started.elapsed().as_secs_f64(),
                ..totals.clone()
            });
            trainee.save_checkpoint(plan.files, options, setup.n_classes)?;
        }
        pause_if_asked("step");
    }
    progress.finish_and_clear();
    totals.seconds = seconds_before + started.elapsed().as_secs_f64();
    let outcome = EpochOutcome {
        totals,
        learning_rate,
    };
    Ok((trainee, outcome))
}

/// The progress bar of epoch `epoch` (0-based) over `images` training images.
fn epoch_progress_bar(epoch: usize, epochs: usize, images: usize) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let progress = ProgressBar::new(images as u64).with_style(style);
    progress.set_prefix(format!("{}/{epochs}", epoch + 1));
    progress
}

/// Why a run stopped on a non-finite loss, and what it kept.
fn non_finite_error(
    loss: f64,
    epoch: usize,
    state: &TrainingState,
    files: &RunFiles,
) -> TrainerError {
    let kept = if files.state().is_file() {
        let at = match &state.epoch_progress {
            Some(progress) => format!(
                "epoch {}, step {} of it",
                state.epochs_done + 1,
                progress.batches_done
            ),
            None => format!("epoch {}", state.epochs_done),
        };
        format!(
            "The last good checkpoint, after {at}, is in {}",
            files.checkpoint().display()
        )
    } else {
        "No checkpoint was written yet, since no epoch finished".to_string()
    };
    TrainerError::new(format!(
        "the loss became {loss} at epoch {}, step {}; training stopped. {kept}, and {} holds the \
         best model so far (epoch {}, validation mAP {:.2})",
        epoch + 1,
        state.steps,
        files.best().display(),
        state.best_epoch.unwrap_or(0),
        state.best_map.unwrap_or(f64::NAN)
    ))
    .in_file(&files.dir)
    .with_hint("try a lower --lr, or --grad-clip-norm")
}

/// Epochs in a row whose training loss rose before a run is called diverging.
const RISING_LOSS_EPOCHS: usize = 3;

/// Why a run looks like it is diverging, if it does: its validation mAP fell below the untrained
/// model's, or its training loss rose for [`RISING_LOSS_EPOCHS`] epochs in a row (when
/// `comparable_losses`: the loss asks the same of every epoch).
fn divergence_warning(
    history: &[EpochRecord],
    initial_map: f64,
    comparable_losses: bool,
) -> Option<String> {
    let last = history.last()?;
    if last.val_map < initial_map {
        return Some(format!(
            "validation mAP {:.2} after epoch {} is below the untrained model's {initial_map:.2}; \
             the run is diverging (try a lower --lr)",
            last.val_map, last.epoch
        ));
    }
    if !comparable_losses {
        return None;
    }
    let recent = history.len().checked_sub(RISING_LOSS_EPOCHS + 1)?;
    let rising = history[recent..]
        .windows(2)
        .all(|pair| pair[1].train_loss > pair[0].train_loss);
    rising.then(|| {
        format!(
            "the training loss rose for {RISING_LOSS_EPOCHS} epochs in a row, to {:.4} at epoch \
             {}; the run may be diverging (try a lower --lr)",
            last.train_loss, last.epoch
        )
    })
}

/// Scores the validation examples with clean labels.
fn validate(
    model: &Classifier,
    examples: &Examples,
    loader: &ImageLoader,
    options: &TrainOptions,
    device: &Device,
) -> Result<Evaluation> {
    let model = model.valid();
    let batch_size = options.batch_size;
    let scored = match examples {
        Examples::Images { validation, .. } if options.tta_flip => {
            score_dataset_flip_averaged(&model, validation, loader, batch_size, device)
        }
        Examples::Images { validation, .. } => {
            score_dataset(&model, validation, loader, batch_size, device)
        }
        Examples::Features {
            cache, validation, ..
        } if options.tta_flip => {
            score_cached_features_flip_averaged(&model, cache, validation, batch_size, device)?
        }
        // The plain view only: validation measures the photos as evaluation will see them.
        Examples::Features {
            cache, validation, ..
        } => score_cached_features(&model, cache, validation, batch_size, device),
    };
    evaluate(&scored)
}

/// The probabilities of every training example, in training-set order (APL's update): the
/// plain photos, without augmentation, from the current weights.
fn training_probabilities(
    model: &Classifier,
    data: &RunData,
    loader: &ImageLoader,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<f32>> {
    let model = model.valid();
    match &data.examples {
        Examples::Features { cache, train, .. } => {
            Ok(score_cached_features(&model, cache, train, batch_size, device).scores)
        }
        Examples::Images { train, .. } => {
            let scored = score_dataset(&model, train, loader, batch_size, device);
            if scored.skipped > 0 {
                return Err(TrainerError::new(format!(
                    "pseudo-labels every training image, but {} could not be read",
                    scored.skipped
                ))
                .at_flag_value("--loss", "em-apl")
                .with_hint("remove them from the data set (the warnings above name them)"));
            }
            Ok(scored.scores)
        }
    }
}

fn save_optimizer(optimizer: &ModuleOptimizer, path: &Path) -> Result<()> {
    let bytes = optimizer
        .into_bytes()
        .context_in(path, "cannot serialise the optimiser state")?;
    write_atomically(path, &bytes)
}

fn load_optimizer(optimizer: ModuleOptimizer, path: &Path) -> Result<ModuleOptimizer> {
    let bytes = std::fs::read(path).context_in(path, "cannot read")?;
    optimizer
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .context_in(path, "not an optimiser state")
}
