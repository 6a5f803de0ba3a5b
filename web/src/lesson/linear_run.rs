//! One live training run of the lesson: a linear head on the shipped features, trained with one
//! loss (ROLE with its label estimator), evaluated by validation mAP on clean labels.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor, TensorData};
use querylabel::head::{LinearHead, LinearHeadConfig};
use querylabel::loss::{
    DEFAULT_EXPECTED_POSITIVES, LabelEstimator, LabelEstimatorConfig, LossKind, LossProgress,
    MultiLabelLoss, MultiLabelLossConfig,
};
use querylabel::metrics::{AveragePrecisionKind, LabelledScores, mean_average_precision};
use querylabel::optim::adam;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// How many epochs the page's live runs last (`www/js/lesson.js` reads it): the length of
/// the schedules of the losses that follow one, such as GR's.
pub const LESSON_EPOCHS: usize = 12;

/// Settings shared by the lesson's runs, so that they differ in the loss alone.
#[derive(Clone, Debug)]
pub struct RunSettings {
    pub batch_size: usize,
    pub learning_rate: f64,
    /// ROLE's estimator learns this many times faster (the paper: 10).
    pub estimator_lr_multiplier: f64,
    /// Expected positives per image for EPR and ROLE.
    pub expected_positives: f64,
    /// Seeds the head's initialisation, the batch order and ROLE's estimator.
    pub seed: u64,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            batch_size: 128,
            learning_rate: 1e-3,
            estimator_lr_multiplier: 10.0,
            expected_positives: DEFAULT_EXPECTED_POSITIVES,
            seed: 0,
        }
    }
}

/// The lesson's data on the training device.
pub struct DeviceData {
    /// Training features `[N, C]`, on the autodiff device.
    pub train_features: Tensor<2>,
    /// Validation features `[M, C]`, on the inner device.
    pub validation_features: Tensor<2>,
    /// Clean validation labels `[M, K]`, row-major on the host.
    pub validation_labels: Vec<f32>,
    pub classes: usize,
}

/// A linear head being trained with one loss.
pub struct LinearRun {
    loss_kind: LossKind,
    loss: MultiLabelLoss,
    settings: RunSettings,
    head: LinearHead,
    optimizer: ModuleOptimizer,
    estimator: Option<(LabelEstimator, ModuleOptimizer)>,
    /// What this loss trains on, `[N, K]`: full labels for BCE, single positives otherwise.
    targets: Tensor<2>,
    order: Vec<usize>,
    cursor: usize,
    rng: ChaCha8Rng,
    /// Training images seen so far, over the training set's size.
    epochs: f64,
    device: Device,
}

impl LinearRun {
    /// A fresh head for `loss`. `training_labels`: `[N, K]` row-major, full labels for BCE and
    /// single positives for the others.
    pub fn new(
        loss: LossKind,
        settings: RunSettings,
        data: &DeviceData,
        training_labels: Vec<f32>,
        device: &Device,
    ) -> Self {
        let [images, channels] = data.train_features.dims();
        let classes = data.classes;
        let loss_function = MultiLabelLossConfig::new(loss)
            .with_expected_num_pos(settings.expected_positives)
            .init();
        let estimator = loss_function.needs_label_estimator().then(|| {
            (
                initial_estimator(&training_labels, classes, settings.seed, device),
                adam().init(),
            )
        });
        let targets =
            Tensor::from_data(TensorData::new(training_labels, [images, classes]), device);
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        // The head starts from the same seeded parameters in every run.
        let head = seeded_head(classes, channels, settings.seed, device);
        let mut order: Vec<usize> = (0..images).collect();
        order.shuffle(&mut rng);
        LinearRun {
            loss_kind: loss,
            loss: loss_function,
            settings,
            head,
            optimizer: adam().init(),
            estimator,
            targets,
            order,
            cursor: 0,
            rng,
            epochs: 0.0,
            device: device.clone(),
        }
    }

    /// The loss this run trains with.
    pub fn loss(&self) -> LossKind {
        self.loss_kind
    }

    /// Passes over the training set so far (fractional).
    pub fn epochs(&self) -> f64 {
        self.epochs
    }

    /// One optimisation step on the next batch; returns nothing so that nothing waits for the
    /// device (the loss is never read back while training).
    pub fn step(&mut self, data: &DeviceData) {
        let images = self.order.len();
        if self.cursor >= images {
            self.order.shuffle(&mut self.rng);
            self.cursor = 0;
        }
        let end = (self.cursor + self.settings.batch_size).min(images);
        let rows: Vec<i64> = self.order[self.cursor..end]
            .iter()
            .map(|&r| r as i64)
            .collect();
        self.cursor = end;
        let batch = rows.len();
        let indices = Tensor::<1, Int>::from_data(TensorData::new(rows, [batch]), &self.device);
        let features = data.train_features.clone().select(0, indices.clone());
        let targets = self.targets.clone().select(0, indices.clone());
        let logits = self.head.forward_pooled(features);
        let estimated = self
            .estimator
            .as_ref()
            .map(|(estimator, _)| estimator.forward(indices));
        let progress = LossProgress {
            epoch: self.epochs.floor() as usize + 1,
            epochs: LESSON_EPOCHS,
        };
        let loss = self.loss.forward(logits, targets, estimated, progress);
        let mut gradients = loss.total.backward();
        let head_gradients = GradientsParams::from_module(&mut gradients, &self.head);
        let rate = self.settings.learning_rate;
        self.head = self.optimizer.step(rate, self.head.clone(), head_gradients);
        if let Some((estimator, optimizer)) = self.estimator.take() {
            let estimator_gradients = GradientsParams::from_module(&mut gradients, &estimator);
            let estimator = optimizer_step(
                optimizer,
                rate * self.settings.estimator_lr_multiplier,
                estimator,
                estimator_gradients,
            );
            self.estimator = Some(estimator);
        }
        self.epochs += batch as f64 / images as f64;
    }

    /// Validation probabilities `[M, K]` on the device, ready to read back.
    pub fn validation_scores(&self, data: &DeviceData) -> Tensor<2> {
        sigmoid(
            self.head
                .valid()
                .forward_pooled(data.validation_features.clone()),
        )
    }
}

fn optimizer_step(
    mut optimizer: ModuleOptimizer,
    rate: f64,
    estimator: LabelEstimator,
    gradients: GradientsParams,
) -> (LabelEstimator, ModuleOptimizer) {
    let estimator = optimizer.step(rate, estimator, gradients);
    (estimator, optimizer)
}

/// ROLE's estimator at the paper's initialisation, drawn on the host (the browser cannot read a
/// GPU tensor back synchronously, which the initialisation does) and then put on `device`.
fn initial_estimator(
    observed: &[f32],
    classes: usize,
    seed: u64,
    device: &Device,
) -> LabelEstimator {
    let host = Device::flex();
    let images = observed.len() / classes;
    let observed = Tensor::from_data(TensorData::new(observed.to_vec(), [images, classes]), &host);
    let logits = LabelEstimatorConfig::new()
        .init(observed, seed, &host)
        .logits
        .val()
        .into_data();
    LabelEstimator::from_logits(Tensor::from_data(logits, device))
}

/// A linear head whose initial parameters depend on `seed` only.
fn seeded_head(classes: usize, channels: usize, seed: u64, device: &Device) -> LinearHead {
    device.seed(seed);
    LinearHeadConfig::new(classes, channels).init(device)
}

/// Validation mAP (percent, scikit-learn's AP) of read-back scores against clean labels.
pub fn validation_map(scores: &[f32], labels: &[f32], classes: usize) -> f64 {
    let set = LabelledScores::new(scores, labels, classes).expect("scores and labels agree");
    100.0 * mean_average_precision(&set, AveragePrecisionKind::NonInterpolated).unwrap_or(0.0)
}
