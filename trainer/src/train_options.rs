//! What defines a training run: every `trainer train` flag that changes what a run computes,
//! defined once here for the command line (clap) and for `options.json` (serde), with its help
//! and its default. Defaults that a shared Config owns are read from that Config, so the
//! command line trains exactly what the library builds. [`TrainOptions::check`] holds the rules
//! between flags that clap's attributes cannot state.

use std::path::PathBuf;

use burn::optim::ModuleOptimizer;
use querylabel::backbone::{BackboneConfig, BackboneKind};
use querylabel::head::{LinearHeadConfig, Query2LabelConfig, SpreadCost};
use querylabel::loss::{
    AsymmetricLossConfig, DEFAULT_EXPECTED_POSITIVES, LossKind, MultiLabelLossConfig, PseudoLabeler,
};
use querylabel::model::{ClassifierConfig, HeadConfig};
use serde::{Deserialize, Deserializer, Serialize};

use crate::backend::DeviceOptions;
use crate::dataset::{DatasetFormat, sample_dir};
use crate::error::{Result, TrainerError};
use crate::images::AugmentationConfig;
use crate::loss_settings::LossSettings;
use crate::optimizer::{OptimizerKind, build_optimizer};
use crate::{ema, flag_values};

/// Peak learning rate of the one-cycle schedule unless `--lr` says otherwise.
pub const DEFAULT_LEARNING_RATE: f64 = 1e-4;
/// Weight decay unless `--weight-decay` says otherwise.
pub const DEFAULT_WEIGHT_DECAY: f64 = 1e-4;
/// ROLE's label estimator learns this many times faster than the network (the paper: 10).
pub const DEFAULT_ESTIMATOR_LR_MULTIPLIER: f64 = 10.0;

/// Which labels the training set keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LabelMode {
    /// Every positive label of every image.
    Full,
    /// One positive per image, drawn with `--seed` (the MLSPL protocol).
    SinglePositive,
}

/// The head to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    Q2l,
    Linear,
}

/// The Query2Label head's defaults: its shared Config's (the sizes do not matter here).
fn q2l_defaults() -> Query2LabelConfig {
    Query2LabelConfig::new(1, 1)
}

/// Everything that defines a training run; saved as `options.json` in the run directory so a
/// run can be resumed or reproduced. Fields added after the first runs default when missing,
/// so older `options.json` files still resume.
#[derive(Clone, Debug, Serialize, Deserialize, clap::Args)]
pub struct TrainOptions {
    /// Data set directory (COCO, VOC or CSV layout); default: the shipped sample of COCO
    /// photos. With --features, the cache's own data set.
    #[arg(long, conflicts_with = "features", default_value_os_t = sample_dir(), hide_default_value = true)]
    pub data: PathBuf,
    /// Train a head on cached features (`trainer extract`) instead of images: the backbone
    /// stays frozen, and the cache decides the backbone, its weights and the image size.
    #[arg(long, conflicts_with_all = ["backbone", "backbone_weights", "image_size", "finetune"])]
    pub features: Option<PathBuf>,
    /// Force the data set layout instead of detecting it.
    #[arg(long, value_enum)]
    pub format: Option<DatasetFormat>,
    /// Train with every label, or with one positive label per image (MLSPL protocol).
    #[arg(long, value_enum, default_value_t = LabelMode::Full)]
    pub labels: LabelMode,
    /// Seed of the validation split, the single positives, shuffling, augmentation and dropout.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of the training set held out for validation (with clean labels). 0 trains on
    /// every photo and validates on a fifth of them.
    #[arg(long, default_value_t = 0.2, value_parser = flag_values::fraction)]
    pub val_fraction: f64,
    /// Train on at most this many images, after the split (for quick runs).
    #[arg(long, value_parser = flag_values::count)]
    pub max_train_images: Option<usize>,
    /// Head: q2l (Query2Label) or linear.
    #[arg(long, value_enum, default_value_t = HeadKind::Q2l)]
    pub head: HeadKind,
    /// Backbone: efficientnet-lite0, efficientnet-lite1, efficientnet-lite2, resnet50 or
    /// resnet101.
    #[arg(long, default_value = "efficientnet-lite0")]
    pub backbone: BackboneKind,
    /// Backbone weights (.safetensors of this project); the Lite variants default to the files
    /// of `make weights`.
    #[arg(long)]
    pub backbone_weights: Option<PathBuf>,
    /// Fine-tune the backbone end to end (otherwise it stays frozen, batch norms included).
    #[arg(long)]
    pub finetune: bool,
    /// With --finetune: train only the head, backbone frozen, for this many epochs first
    /// (MLSPL's linear init), then the whole network.
    #[arg(long, default_value_t = 0, requires = "finetune")]
    pub linear_init_epochs: usize,
    /// Input size in pixels (square).
    #[arg(long, default_value_t = 224, value_parser = flag_values::image_size)]
    pub image_size: usize,
    /// Images per optimiser step.
    #[arg(long, default_value_t = 32, value_parser = flag_values::count)]
    pub batch_size: usize,
    /// Passes over the training set; with --resume it may be raised to train a finished run on.
    #[arg(long, default_value_t = 10, value_parser = flag_values::count)]
    pub epochs: usize,
    /// Peak learning rate of the one-cycle schedule.
    #[arg(long = "lr", default_value_t = DEFAULT_LEARNING_RATE, value_parser = flag_values::positive)]
    pub learning_rate: f64,
    /// Weight decay (L2 with adam, decoupled with adamw).
    #[arg(long, default_value_t = DEFAULT_WEIGHT_DECAY, value_parser = flag_values::non_negative)]
    pub weight_decay: f64,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// Loss: asl, bce, bce-ls, an, an-ls, wan, epr, role, hill, splc, ll-r, ll-ct, ll-cp, em,
    /// em-apl or gr. Default: asl with full labels, an with single positives.
    #[arg(long)]
    pub loss: Option<LossKind>,
    /// Expected positives per image for epr and role (the paper: 2.9 for COCO, 1.5 for VOC).
    #[arg(long, default_value_t = DEFAULT_EXPECTED_POSITIVES, value_parser = flag_values::positive)]
    pub expected_positives: f64,
    /// ASL focusing on negatives.
    #[arg(long, default_value_t = AsymmetricLossConfig::new().gamma_neg, value_parser = flag_values::non_negative)]
    pub gamma_neg: f64,
    /// ASL focusing on positives.
    #[arg(long, default_value_t = AsymmetricLossConfig::new().gamma_pos, value_parser = flag_values::non_negative)]
    pub gamma_pos: f64,
    /// ASL probability margin for negatives.
    #[arg(long, default_value_t = AsymmetricLossConfig::new().clip, value_parser = flag_values::non_negative)]
    pub asl_clip: f64,
    /// ROLE's label-estimator learning rate as a multiple of --lr.
    #[arg(long, default_value_t = DEFAULT_ESTIMATOR_LR_MULTIPLIER, value_parser = flag_values::positive)]
    pub estimator_lr_multiplier: f64,
    /// Settings of the later single-positive losses (missing in runs from before they existed:
    /// their defaults).
    #[command(flatten)]
    #[serde(default)]
    pub loss_settings: LossSettings,
    /// Clip the gradient norm.
    #[arg(long)]
    pub grad_clip_norm: Option<f32>,
    /// Decay of the exponential moving average of the weights, validated beside the weights
    /// (0 turns it off; older runs saved off as null).
    #[arg(long, default_value_t = ema::DEFAULT_EMA_DECAY, value_parser = flag_values::fraction)]
    #[serde(deserialize_with = "null_as_zero")]
    pub ema_decay: f64,
    /// Stop after this many epochs without a better validation mAP.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Validate with test-time flip averaging of each photo and its mirror image, which then
    /// also picks the best model (with --features, the cache's views 0 and 1: extract with
    /// --views 2 or more). Missing in runs from before it existed: off.
    #[arg(long)]
    #[serde(default)]
    pub tta_flip: bool,
    /// The augmentation recipe (`--no-augmentation` turns it off).
    #[arg(skip = AugmentationConfig::default())]
    pub augmentation: AugmentationConfig,
    /// Query2Label transformer width; a multiple of --q2l-heads.
    #[arg(long, default_value_t = q2l_defaults().hidden_dim, value_parser = flag_values::count)]
    pub q2l_hidden_dim: usize,
    /// Query2Label attention heads.
    #[arg(long, default_value_t = q2l_defaults().heads, value_parser = flag_values::count)]
    pub q2l_heads: usize,
    /// Query2Label transformer encoder layers over the feature map (0: none).
    #[arg(long, default_value_t = q2l_defaults().encoder_layers)]
    pub q2l_encoder_layers: usize,
    /// Query2Label decoder layers, where the label queries attend to the feature map.
    #[arg(long, default_value_t = q2l_defaults().decoder_layers, value_parser = flag_values::count)]
    pub q2l_decoder_layers: usize,
    /// Query2Label feed-forward width.
    #[arg(long, default_value_t = q2l_defaults().feedforward_dim, value_parser = flag_values::count)]
    pub q2l_feedforward_dim: usize,
    /// Dropout inside the Query2Label transformer (attention weights, feed-forward, residuals).
    /// Missing in runs from before it was an option: the head's default then.
    #[arg(long, default_value_t = q2l_defaults().dropout, value_parser = flag_values::fraction)]
    #[serde(default = "default_q2l_dropout")]
    pub q2l_dropout: f64,
    /// Weight in the loss of how far the attention maps of the labels a photo is known to have
    /// spread (0: off). Above 0 their queries are pushed to look at a few positions rather than
    /// the whole map, which the single-positive losses otherwise flatten (docs/RESULTS.md:
    /// 0.002 there). Missing in older runs: 0.
    #[arg(long, default_value_t = 0.0, value_parser = flag_values::non_negative)]
    #[serde(default)]
    pub attention_entropy: f64,
    /// With --attention-entropy: the spread (entropy over an even map's, from 0 for one
    /// position to 1 for an even wash) below which a label's map costs nothing, so that queries
    /// stay focused without collapsing onto one position. 0 penalises every bit of entropy.
    #[arg(long, default_value_t = 0.0, value_parser = flag_values::fraction)]
    #[serde(default)]
    pub attention_spread_ceiling: f64,
    /// With --attention-entropy: how a map's spread is charged. `linear` charges the spread
    /// itself, whose pull vanishes as a map evens out, so a map that starts to flatten may
    /// flatten for good; `log` charges minus the logarithm of the map's concentration (1 minus
    /// the spread), whose pull grows there instead (docs/RESULTS.md compares them). Missing in
    /// older runs: linear.
    #[arg(long, value_enum, default_value_t = SpreadCostKind::Linear)]
    #[serde(default)]
    pub attention_spread_cost: SpreadCostKind,
    #[command(flatten)]
    #[serde(flatten)]
    pub device: DeviceOptions,
}

fn default_q2l_dropout() -> f64 {
    q2l_defaults().dropout
}

/// How `--attention-entropy` charges a map's spread ([`SpreadCost`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SpreadCostKind {
    #[default]
    Linear,
    Log,
}

/// Runs before `--ema-decay 0` existed saved "off" as `null`.
fn null_as_zero<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(0.0))
}

impl TrainOptions {
    /// The loss: `--loss`, or by default ASL with full labels and AN with single positives.
    pub fn loss(&self) -> LossKind {
        self.loss.unwrap_or(match self.labels {
            LabelMode::Full => LossKind::Asl,
            LabelMode::SinglePositive => LossKind::An,
        })
    }

    /// How `--attention-entropy` charges the present labels' maps.
    pub fn spread_cost(&self) -> SpreadCost {
        match self.attention_spread_cost {
            SpreadCostKind::Linear => SpreadCost::Linear {
                ceiling: self.attention_spread_ceiling,
            },
            SpreadCostKind::Log => SpreadCost::Log,
        }
    }

    /// The decay of the weights' moving average, when one is kept.
    pub fn ema_decay(&self) -> Option<f64> {
        (self.ema_decay > 0.0).then_some(self.ema_decay)
    }

    /// The rules between flags that clap's attributes do not state, each error placed at the
    /// flag that breaks one. A run's saved options passed them when it started; they are
    /// checked again on `--resume`.
    pub fn check(&self) -> Result<()> {
        if !self.q2l_hidden_dim.is_multiple_of(self.q2l_heads) {
            return Err(TrainerError::new(format!(
                "does not split into --q2l-heads {}",
                self.q2l_heads
            ))
            .at_flag_value("--q2l-hidden-dim", self.q2l_hidden_dim)
            .with_hint("the width must be a multiple of the number of heads"));
        }
        if self.attention_entropy > 0.0 && self.head != HeadKind::Q2l {
            return Err(
                TrainerError::new("needs --head q2l: the linear head has no attention")
                    .at_flag_value("--attention-entropy", self.attention_entropy)
                    .with_hint("train --head q2l, or leave out --attention-entropy"),
            );
        }
        if self.attention_spread_ceiling > 0.0 && self.attention_entropy == 0.0 {
            return Err(
                TrainerError::new("has no effect without --attention-entropy")
                    .at_flag_value("--attention-spread-ceiling", self.attention_spread_ceiling)
                    .with_hint("give --attention-entropy a weight, or leave out the ceiling"),
            );
        }
        if self.attention_spread_cost == SpreadCostKind::Log && self.attention_entropy == 0.0 {
            return Err(
                TrainerError::new("has no effect without --attention-entropy")
                    .at_flag_value("--attention-spread-cost", "log")
                    .with_hint("give --attention-entropy a weight, or leave out the cost"),
            );
        }
        if self.attention_spread_cost == SpreadCostKind::Log && self.attention_spread_ceiling > 0.0
        {
            return Err(
                TrainerError::new("the log cost charges every bit of spread")
                    .at_flag_value("--attention-spread-ceiling", self.attention_spread_ceiling)
                    .with_hint("a ceiling goes with --attention-spread-cost linear"),
            );
        }
        if self.linear_init_epochs > 0 && !self.finetune {
            return Err(TrainerError::new(
                "needs --finetune: without it the backbone never trains",
            )
            .at_flag_value("--linear-init-epochs", self.linear_init_epochs)
            .with_hint("add --finetune, or leave out --linear-init-epochs"));
        }
        let loss = self.loss();
        let problem = self.loss_config().check().err().or_else(|| {
            (loss == LossKind::EmApl)
                .then(|| self.loss_settings.pseudo_labeler().check(self.epochs).err())
                .flatten()
        });
        if let Some(problem) = problem {
            return Err(TrainerError::new(problem).at_flag_value("--loss", loss));
        }
        let one_device = |what: &str| {
            Err(TrainerError::new(what)
                .at_flag_value("--loss", loss)
                .with_hint("train it with a single --device"))
        };
        if self.device.devices.len() > 1 && self.loss_config().init().needs_label_estimator() {
            return one_device(
                "keeps a label estimator per training image, which lives on one device",
            );
        }
        if self.device.devices.len() > 1 && loss == LossKind::LlCp {
            return one_device("writes its corrections back from one device");
        }
        Ok(())
    }

    pub fn classifier_config(&self, num_classes: usize) -> ClassifierConfig {
        let channels = self.backbone.feature_channels();
        let head = match self.head {
            HeadKind::Q2l => HeadConfig::Query2Label(
                Query2LabelConfig::new(num_classes, channels)
                    .with_hidden_dim(self.q2l_hidden_dim)
                    .with_heads(self.q2l_heads)
                    .with_encoder_layers(self.q2l_encoder_layers)
                    .with_decoder_layers(self.q2l_decoder_layers)
                    .with_feedforward_dim(self.q2l_feedforward_dim)
                    .with_dropout(self.q2l_dropout),
            ),
            HeadKind::Linear => HeadConfig::Linear(LinearHeadConfig::new(num_classes, channels)),
        };
        let backbone = BackboneConfig::new(self.backbone).with_frozen_bn(!self.finetune);
        ClassifierConfig::new(backbone, head)
    }

    pub fn loss_config(&self) -> MultiLabelLossConfig {
        let config = MultiLabelLossConfig::new(self.loss())
            .with_expected_num_pos(self.expected_positives)
            .with_asymmetric(
                AsymmetricLossConfig::new()
                    .with_gamma_neg(self.gamma_neg)
                    .with_gamma_pos(self.gamma_pos)
                    .with_clip(self.asl_clip),
            );
        self.loss_settings.apply(config, self.linear_init_epochs)
    }

    pub fn optimizer(&self) -> ModuleOptimizer {
        build_optimizer(self.optimizer, self.weight_decay, self.grad_clip_norm)
    }

    /// APL's labeller for these training labels, when the loss pseudo-labels.
    pub fn pseudo_labeler(&self, labels: &[f32], classes: usize) -> Option<PseudoLabeler> {
        (self.loss() == LossKind::EmApl).then(|| {
            self.loss_settings
                .pseudo_labeler()
                .init(labels, classes, self.epochs)
        })
    }
}
