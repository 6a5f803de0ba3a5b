//! What a run records as it trains: its progress, saved with every checkpoint
//! (`checkpoint/state.json`), and one line of `metrics.jsonl` per epoch. Training writes them;
//! the plots and `trainer report` read them.

use serde::{Deserialize, Serialize};

/// Progress of a run, saved with every checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainingState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    pub best_map: Option<f64>,
    pub best_epoch: Option<usize>,
    pub history: Vec<EpochRecord>,
    /// Validation mAP of the untrained model, which `best/` starts as (missing in runs from
    /// before it was recorded).
    #[serde(default)]
    pub initial_map: Option<f64>,
    /// Set in a checkpoint taken inside an epoch (`--checkpoint-every`): how far the epoch after
    /// `epochs_done` had come. Missing in epoch-end checkpoints and older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_progress: Option<EpochProgress>,
}

/// How far an epoch had come at a checkpoint inside it, with its running totals, so that a
/// resumed epoch reports what an uninterrupted one would.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EpochProgress {
    /// Batches of the epoch already trained.
    pub batches_done: usize,
    pub loss_sum: f64,
    /// Batches that trained (a batch whose images all failed to load does not).
    pub loss_batches: usize,
    /// Images trained on, and images that could not be read.
    pub seen: usize,
    pub skipped: usize,
    /// Unobserved labels LL-Cp made positive so far this epoch.
    pub corrected: usize,
    /// Seconds spent training the epoch (for its images per second).
    pub seconds: f64,
}

impl EpochProgress {
    /// Counts a trained batch of `images` images, its loss and its LL-Cp corrections.
    pub fn add_batch(&mut self, loss: f64, images: usize, corrected: usize) {
        self.loss_sum += loss;
        self.loss_batches += 1;
        self.seen += images;
        self.corrected += corrected;
    }
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub learning_rate: f64,
    #[serde(rename = "val_mAP")]
    pub val_map: f64,
    #[serde(rename = "val_CF1")]
    pub val_cf1: f64,
    #[serde(rename = "val_OF1")]
    pub val_of1: f64,
    /// Validation mAP of the weights' moving average, when kept.
    #[serde(rename = "val_EMA_mAP")]
    pub val_ema_map: Option<f64>,
    /// Mean peak-over-even-share of the true labels' attention maps on the validation photos
    /// (Query2Label only; missing in runs from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_attention_focus: Option<f64>,
    pub images_per_second: f64,
    pub skipped_images: usize,
}
