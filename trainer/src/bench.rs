//! Throughput benchmark: images per second of the work a run does, on each backend this
//! machine has: backbone feature extraction, training steps of backbone + Query2Label end to
//! end, and training steps of a head alone on cached features (`train --features`). Numbers are
//! printed side by side from one run, so ratios between backends (and, with
//! `make bench-pytorch`, against PyTorch) are meaningful; nothing here asserts a time.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor};
use querylabel::backbone::{BackboneConfig, BackboneKind};
use querylabel::head::{LinearHeadConfig, Query2LabelConfig};
use querylabel::loss::AsymmetricLossConfig;
use querylabel::model::{ClassifierConfig, HeadConfig};
use serde::Serialize;

use crate::backend::BackendChoice;
use crate::error::{Context, Result};
use crate::optimizer::{OptimizerKind, build_optimizer};
use crate::train_options::{DEFAULT_LEARNING_RATE, DEFAULT_WEIGHT_DECAY};

/// What is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BenchWork {
    /// Backbone forward passes in inference mode, batch norms folded into the convolutions
    /// (`trainer extract`, `eval`, `predict` and the page).
    Extract,
    /// The same passes with the batch norms run as stored, unfolded: the comparison for
    /// `extract`.
    ExtractUnfolded,
    /// Forward, loss, backward and optimiser step of backbone + Query2Label (`--finetune`).
    Train,
    /// The same step for a linear head alone on a cached feature map (`--features`).
    HeadLinear,
    /// The same step for a Query2Label head alone on a cached feature map (`--features`).
    HeadQ2l,
}

/// The size of one measurement.
#[derive(Clone, Copy, Debug)]
pub struct BenchSize {
    pub image_size: usize,
    pub batch_size: usize,
    /// Untimed batches first, in which GPU kernels are compiled and autotuned.
    pub warmup: usize,
    /// Timed batches.
    pub steps: usize,
}

/// One backend's throughput for one kind of work.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    pub backend: String,
    pub work: BenchWork,
    pub backbone: String,
    pub image_size: usize,
    pub batch_size: usize,
    pub images_per_second: f64,
}

/// The step's settings are the trainer's defaults: Adam with its weight decay, ASL, Query2Label
/// as `trainer train` builds it. On a GPU the first batches compile, autotune and fuse kernels
/// (on an H100 a training epoch of 265 photos took 2 minutes at first, then 1 second), so give
/// several warm-up batches there.
pub fn bench_backend(
    backend: BackendChoice,
    backbone: BackboneKind,
    work: BenchWork,
    size: BenchSize,
) -> Result<BenchResult> {
    let device = backend.device(0);
    let classes = 80;
    let channels = backbone.feature_channels();
    let head = match work {
        BenchWork::HeadLinear => HeadConfig::Linear(LinearHeadConfig::new(classes, channels)),
        _ => HeadConfig::Query2Label(Query2LabelConfig::new(classes, channels)),
    };
    let config = ClassifierConfig::new(BackboneConfig::new(backbone), head);
    let seconds = if matches!(work, BenchWork::Extract | BenchWork::ExtractUnfolded) {
        extraction_seconds(&config, work, size, &device)?
    } else {
        training_seconds(&config, work, size, &device)?
    };
    let BenchSize {
        image_size,
        batch_size,
        steps,
        ..
    } = size;
    Ok(BenchResult {
        backend: backend.to_string(),
        work,
        backbone: backbone.to_string(),
        image_size,
        batch_size,
        images_per_second: (steps * batch_size) as f64 / seconds,
    })
}

/// Seconds the backbone of `config` takes to extract features from the timed batches.
fn extraction_seconds(
    config: &ClassifierConfig,
    work: BenchWork,
    size: BenchSize,
    device: &Device,
) -> Result<f64> {
    let stored = config.init(device).valid().backbone;
    let backbone = match work {
        BenchWork::Extract => stored.fold_batch_norms(),
        _ => stored,
    };
    let input_shape = [size.batch_size, 3, size.image_size, size.image_size];
    let mut seconds = 0.0;
    for step in 0..size.warmup + size.steps {
        let batch = Tensor::<4>::random(input_shape, Distribution::Default, device);
        let elapsed = timed(device, || {
            let _ = backbone.forward_features(batch).into_data();
        })?;
        if step >= size.warmup {
            seconds += elapsed;
        }
    }
    Ok(seconds)
}

/// Seconds the timed training steps take: the whole network on images, or the head alone on
/// feature maps.
fn training_seconds(
    config: &ClassifierConfig,
    work: BenchWork,
    size: BenchSize,
    device: &Device,
) -> Result<f64> {
    let BenchSize {
        image_size,
        batch_size,
        warmup,
        steps,
    } = size;
    let classes = config.head.num_classes();
    let channels = config.head.in_channels();
    let train_device = device.clone().autodiff();
    let mut model = Some(config.init(&train_device));
    let side = image_size.div_ceil(model.as_ref().unwrap().backbone.feature_stride());
    let input_shape = match work {
        BenchWork::Train => [batch_size, 3, image_size, image_size],
        _ => [batch_size, channels, side, side],
    };
    let mut optimizer = build_optimizer(OptimizerKind::Adam, DEFAULT_WEIGHT_DECAY, None);
    let loss = AsymmetricLossConfig::new().init();
    let mut seconds = 0.0;
    for step in 0..warmup + steps {
        let inputs = Tensor::<4>::random(input_shape, Distribution::Default, &train_device);
        let targets = Tensor::<2>::random(
            [batch_size, classes],
            Distribution::Bernoulli(0.05),
            &train_device,
        );
        let elapsed = timed(device, || {
            let trainee = model
                .take()
                .expect("the model is put back after every step");
            let logits = match work {
                BenchWork::Train => trainee.forward(inputs).logits,
                _ => trainee.head.forward(inputs).logits,
            };
            let output = loss.forward(logits, targets);
            let gradients = GradientsParams::from_grads(output.total.backward(), &trainee);
            model = Some(optimizer.step(DEFAULT_LEARNING_RATE, trainee, gradients));
        })?;
        if step >= warmup {
            seconds += elapsed;
        }
    }
    Ok(seconds)
}

/// Seconds `work` takes on `device`, queued kernels included.
fn timed(device: &Device, work: impl FnOnce()) -> Result<f64> {
    let sync = || {
        device
            .sync()
            .context("the device failed to finish its work")
    };
    sync()?;
    let started = Instant::now();
    work();
    sync()?;
    Ok(started.elapsed().as_secs_f64())
}
