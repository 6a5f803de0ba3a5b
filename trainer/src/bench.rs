//! Throughput benchmark: images per second for backbone feature extraction and for training
//! steps of a backbone (EfficientNet-Lite0 by default) + Query2Label, on each backend this
//! machine has. Numbers are
//! printed side by side from one run, so ratios between backends are meaningful; nothing here
//! asserts a time.

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use querylabel::backbone::{BackboneConfig, BackboneKind};
use querylabel::head::Query2LabelConfig;
use querylabel::loss::AsymmetricLossConfig;
use querylabel::model::{ClassifierConfig, HeadConfig};
use serde::Serialize;

use crate::backend::BackendChoice;

/// One backend's throughput.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    pub backend: String,
    pub backbone: String,
    pub image_size: usize,
    pub batch_size: usize,
    /// Backbone forward passes, inference mode.
    pub extract_images_per_second: f64,
    /// Forward, loss, backward and optimiser step of the whole network.
    pub train_images_per_second: f64,
}

/// Times `steps` batches after `warmup` untimed ones. On a GPU the first batches compile,
/// autotune and fuse kernels (on an H100 a training epoch of 265 photos took 2 minutes at
/// first, then 1 second), so give several.
pub fn bench_backend(
    backend: BackendChoice,
    backbone: BackboneKind,
    image_size: usize,
    batch_size: usize,
    warmup: usize,
    steps: usize,
) -> Result<BenchResult> {
    let device = backend.device(0);
    let config = ClassifierConfig::new(
        BackboneConfig::new(backbone),
        HeadConfig::Query2Label(Query2LabelConfig::new(80, backbone.feature_channels())),
    );
    let images = || {
        Tensor::<4>::random(
            [batch_size, 3, image_size, image_size],
            Distribution::Default,
            &device,
        )
    };
    let sync = |device: &Device| device.sync().map_err(|e| anyhow::anyhow!("{e:?}"));

    let inference = config.init(&device).valid();
    let mut extract_seconds = 0.0;
    for step in 0..warmup + steps {
        let batch = images();
        sync(&device)?;
        let started = Instant::now();
        let features = inference.backbone.forward_features(batch);
        let _ = features.into_data();
        if step >= warmup {
            extract_seconds += started.elapsed().as_secs_f64();
        }
    }

    let train_device = device.clone().autodiff();
    let mut model = config.init(&train_device);
    let mut optimizer = AdamConfig::new().init();
    let loss = AsymmetricLossConfig::new().init();
    let mut train_seconds = 0.0;
    for step in 0..warmup + steps {
        let batch = images().autodiff();
        let targets = Tensor::<2>::random(
            [batch_size, 80],
            Distribution::Bernoulli(0.05),
            &train_device,
        );
        sync(&device)?;
        let started = Instant::now();
        let output = loss.forward(model.forward(batch).logits, targets);
        let gradients = GradientsParams::from_grads(output.total.backward(), &model);
        model = optimizer.step(1e-4, model, gradients);
        sync(&device)?;
        if step >= warmup {
            train_seconds += started.elapsed().as_secs_f64();
        }
    }
    let images = (steps * batch_size) as f64;
    Ok(BenchResult {
        backend: backend.to_string(),
        backbone: backbone.to_string(),
        image_size,
        batch_size,
        extract_images_per_second: images / extract_seconds,
        train_images_per_second: images / train_seconds,
    })
}
