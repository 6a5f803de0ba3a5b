//! The settings of the losses that came after Cole et al., as `trainer train` flags. Each flag is
//! defined once here, saved in `options.json` as it is, and its default is the shared loss
//! Config's, so the command line and the library cannot disagree.

use querylabel::loss::{
    EntropyMaximizationLossConfig, LargeLossConfig, MultiLabelLossConfig, PseudoLabelerConfig,
    SelfPacedCorrectionLossConfig,
};
use serde::{Deserialize, Serialize};

/// Settings of LL-R/Ct/Cp, EM, EM+APL and SPLC. (GR and Hill run with their official defaults:
/// GR's released command line cannot change them either.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default)]
pub struct LossSettings {
    /// LL-R, LL-Ct, LL-Cp: growth of the rejection rate per epoch, in percent of each batch's
    /// entries (the official --delta_rel; its README suggests 0.1 to 0.5).
    #[arg(long = "ll-delta-rel", default_value_t = LargeLossConfig::new().delta_rel_percent)]
    pub ll_delta_rel_percent: f64,
    /// EM and EM+APL: weight of the entropy term on unobserved labels (official COCO value).
    #[arg(long, default_value_t = EntropyMaximizationLossConfig::new().alpha)]
    pub em_alpha: f64,
    /// EM+APL: weight of the soft pseudo-negatives (official COCO value).
    #[arg(long, default_value_t = EntropyMaximizationLossConfig::new().beta)]
    pub em_beta: f64,
    /// EM+APL: the first pseudo-labelling follows this epoch (1-based); it needs more --epochs.
    #[arg(long, default_value_t = PseudoLabelerConfig::new().warmup_epoch)]
    pub apl_warmup_epochs: usize,
    /// EM+APL: the share of each class's unobserved labels pseudo-labelled by the last epoch.
    #[arg(long, default_value_t = PseudoLabelerConfig::new().neg_proportion)]
    pub apl_neg_proportion: f64,
    /// SPLC: probability above which an unobserved label counts as positive.
    #[arg(long, default_value_t = SelfPacedCorrectionLossConfig::new().tau)]
    pub splc_tau: f64,
}

impl Default for LossSettings {
    fn default() -> Self {
        let large_loss = LargeLossConfig::new();
        let entropy = EntropyMaximizationLossConfig::new();
        let pseudo = PseudoLabelerConfig::new();
        Self {
            ll_delta_rel_percent: large_loss.delta_rel_percent,
            em_alpha: entropy.alpha,
            em_beta: entropy.beta,
            apl_warmup_epochs: pseudo.warmup_epoch,
            apl_neg_proportion: pseudo.neg_proportion,
            splc_tau: SelfPacedCorrectionLossConfig::new().tau,
        }
    }
}

impl LossSettings {
    /// These settings applied to a loss configuration. `linear_init_epochs` is the run's
    /// frozen-backbone warm-up, which GR's schedule starts after.
    pub fn apply(
        &self,
        config: MultiLabelLossConfig,
        linear_init_epochs: usize,
    ) -> MultiLabelLossConfig {
        let generalized_robust = config
            .generalized_robust
            .clone()
            .with_linear_init(linear_init_epochs);
        let self_paced = config.self_paced_correction.clone().with_tau(self.splc_tau);
        config
            .with_large_loss(
                LargeLossConfig::new().with_delta_rel_percent(self.ll_delta_rel_percent),
            )
            .with_entropy_maximization(
                EntropyMaximizationLossConfig::new()
                    .with_alpha(self.em_alpha)
                    .with_beta(self.em_beta),
            )
            .with_generalized_robust(generalized_robust)
            .with_self_paced_correction(self_paced)
    }

    /// APL's labeller settings.
    pub fn pseudo_labeler(&self) -> PseudoLabelerConfig {
        PseudoLabelerConfig::new()
            .with_warmup_epoch(self.apl_warmup_epochs)
            .with_neg_proportion(self.apl_neg_proportion)
    }
}
