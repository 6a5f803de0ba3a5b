//! The single-positive lesson: what each loss makes of one photo's labels, and live training of
//! linear heads with several losses side by side on shipped backbone features.

pub mod features;
pub mod linear_run;
pub mod photo_targets;
pub mod targets;

use burn::tensor::{Device, Tensor, TensorData};
use querylabel::loss::LossKind;
use querylabel::single_positive::single_positive_labels;

use crate::read_back::read_back;
use features::LessonData;
use linear_run::{DeviceData, LinearRun, RunSettings, validation_map};

/// The losses trained side by side: the fully labelled upper bound, then the single-positive
/// losses of Cole et al. from the naive to the best, then two that came after them: EM, the
/// best of the later losses in docs/RESULTS.md, and GR.
pub const LESSON_LOSSES: [LossKind; 6] = [
    LossKind::Bce,
    LossKind::An,
    LossKind::Epr,
    LossKind::Role,
    LossKind::Em,
    LossKind::Gr,
];

/// Linear heads trained at once, one per loss, on the same data and batches.
pub struct Lesson {
    data: DeviceData,
    runs: Vec<LinearRun>,
    batch_size: usize,
}

impl Lesson {
    /// Puts the data on `device` (an inference device; training runs on its autodiff form) and
    /// starts one run per loss of `losses`. Single positives are drawn once, with the seed.
    pub fn new(
        data: LessonData,
        losses: &[LossKind],
        settings: RunSettings,
        device: &Device,
    ) -> Self {
        let train_device = device.clone().autodiff();
        let train = data.train;
        let validation = data.validation;
        let matrix = |values: Vec<f32>, rows, columns, device: &Device| {
            Tensor::<2>::from_data(TensorData::new(values, [rows, columns]), device)
        };
        let device_data = DeviceData {
            train_features: matrix(train.features, train.images, train.channels, &train_device),
            validation_features: matrix(
                validation.features,
                validation.images,
                validation.channels,
                device,
            ),
            validation_labels: validation.labels,
            classes: train.classes,
        };
        let single_positive = single_positive_labels(&train.labels, train.classes, settings.seed);
        let runs = losses
            .iter()
            .map(|&loss| {
                let labels = if loss.needs_full_labels() {
                    train.labels.clone()
                } else {
                    single_positive.clone()
                };
                LinearRun::new(loss, settings.clone(), &device_data, labels, &train_device)
            })
            .collect();
        Lesson {
            data: device_data,
            runs,
            batch_size: settings.batch_size,
        }
    }

    /// The losses of the runs, in order.
    pub fn losses(&self) -> Vec<LossKind> {
        self.runs.iter().map(LinearRun::loss).collect()
    }

    /// Images in the training part.
    pub fn train_images(&self) -> usize {
        self.data.train_features.dims()[0]
    }

    /// Images per training step.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Passes over the training data so far.
    pub fn epochs(&self) -> f64 {
        self.runs.first().map_or(0.0, LinearRun::epochs)
    }

    /// `steps` optimisation steps of every run.
    pub fn train(&mut self, steps: usize) {
        for run in &mut self.runs {
            for _ in 0..steps {
                run.step(&self.data);
            }
        }
    }

    /// Validation scores of every run, on the device (cheap to take; read back with
    /// [`validation_maps`]).
    pub fn validation_scores(&self) -> Vec<Tensor<2>> {
        self.runs
            .iter()
            .map(|run| run.validation_scores(&self.data))
            .collect()
    }

    /// The validation labels and class count, for scoring read-back scores.
    pub fn device_data(&self) -> &DeviceData {
        &self.data
    }
}

/// Validation mAP (percent) of each run's scores against the clean `labels` `[M, classes]`,
/// in order.
pub async fn validation_maps(scores: Vec<Tensor<2>>, labels: &[f32], classes: usize) -> Vec<f64> {
    let mut maps = Vec::with_capacity(scores.len());
    for run_scores in scores {
        let values = read_back(run_scores).await;
        maps.push(validation_map(&values, labels, classes));
    }
    maps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_back::block_on;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Features that carry the labels, plus noise: a linear head can learn them.
    fn separable(images: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
        let (channels, classes) = (16, 4);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..images {
            let row: Vec<u8> = (0..classes)
                .map(|_| u8::from(rng.random_bool(0.4)))
                .collect();
            let row = if row.iter().all(|&l| l == 0) {
                vec![1, 0, 0, 0]
            } else {
                row
            };
            for c in 0..channels {
                // The first `classes` channels carry the labels; the rest are noise only.
                let signal = row.get(c).map_or(0.0, |&label| f32::from(label) * 2.0);
                features.push(signal + rng.random_range(-0.5..0.5));
            }
            labels.extend(row);
        }
        (features, labels)
    }

    #[test]
    fn every_loss_learns_separable_labels() {
        let (train_f, train_l) = separable(400, 1);
        let (val_f, val_l) = separable(200, 2);
        let bytes = features::tests::features_file((&train_f, &train_l), (&val_f, &val_l), 4);
        let data = LessonData::from_safetensors(&bytes).unwrap();
        let settings = RunSettings {
            batch_size: 40,
            learning_rate: 1e-2,
            expected_positives: 1.6,
            ..RunSettings::default()
        };
        let mut lesson = Lesson::new(data, &LESSON_LOSSES, settings, &Device::flex());
        let maps = |lesson: &Lesson| {
            let data = lesson.device_data();
            block_on(validation_maps(
                lesson.validation_scores(),
                &data.validation_labels,
                data.classes,
            ))
        };
        let before = maps(&lesson);
        // 400 images in batches of 40: 120 steps are twelve passes (EM, which pulls unobserved
        // labels only gently, needs about that many).
        lesson.train(120);
        assert!((lesson.epochs() - 12.0).abs() < 1e-9);
        let after = maps(&lesson);
        for ((loss, before), after) in lesson.losses().iter().zip(&before).zip(&after) {
            assert!(
                *after > 75.0 && *after > before + 20.0,
                "{loss}: {before:.1} → {after:.1}"
            );
        }
    }
}
