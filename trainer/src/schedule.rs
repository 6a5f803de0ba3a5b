//! The one-cycle learning-rate schedule (Smith & Topin) that Query2Label trains with: a cosine
//! warm-up from `max/25` to `max` over the first `warmup_fraction` of the steps, then a cosine
//! decay to `max/(25·10⁴)`, as PyTorch's `OneCycleLR` with its defaults.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneCycle {
    pub max_lr: f64,
    pub total_steps: usize,
    /// Fraction of the steps spent warming up (Query2Label uses 0.2).
    pub warmup_fraction: f64,
}

const DIV_FACTOR: f64 = 25.0;
const FINAL_DIV_FACTOR: f64 = 1e4;

impl OneCycle {
    /// Learning rate of step `step` (0-based).
    pub fn learning_rate(&self, step: usize) -> f64 {
        let initial = self.max_lr / DIV_FACTOR;
        let last = initial / FINAL_DIV_FACTOR;
        let warmup_end = (self.warmup_fraction * self.total_steps as f64 - 1.0).max(1.0);
        let end = (self.total_steps as f64 - 1.0).max(warmup_end + 1.0);
        let step = step as f64;
        let cosine = |from: f64, to: f64, progress: f64| {
            to + (from - to) * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos()) / 2.0
        };
        if step <= warmup_end {
            cosine(initial, self.max_lr, step / warmup_end)
        } else {
            cosine(self.max_lr, last, (step - warmup_end) / (end - warmup_end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_to_the_maximum_then_decays_to_almost_nothing() {
        let schedule = OneCycle {
            max_lr: 1e-3,
            total_steps: 101,
            warmup_fraction: 0.2,
        };
        let lrs: Vec<f64> = (0..101).map(|s| schedule.learning_rate(s)).collect();
        assert!((lrs[0] - 1e-3 / 25.0).abs() < 1e-12);
        // As in PyTorch, the warm-up ends between two steps, so the peak is just below max_lr.
        let peak = lrs.iter().cloned().fold(0.0, f64::max);
        assert!(peak <= 1e-3 && peak > 0.999e-3, "peak {peak}");
        assert!((lrs[100] - 1e-3 / 25.0 / 1e4).abs() < 1e-12);
        let top = lrs.iter().position(|&lr| lr == peak).unwrap();
        assert!(lrs[..=top].windows(2).all(|w| w[0] <= w[1]));
        assert!(lrs[top..].windows(2).all(|w| w[0] >= w[1]));
    }
}
