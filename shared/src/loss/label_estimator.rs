//! ROLE's label estimator: one learnable logit per training image and class, the running guess
//! of the labels that single-positive data leaves unobserved.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Configuration of a [`LabelEstimator`]; the defaults are the paper's initialisation.
#[derive(Config, Debug)]
pub struct LabelEstimatorConfig {
    /// Unobserved entries start uniformly within `0.5 ± unobserved_spread` in probability,
    /// i.e. uniformly in `±logit(0.5 + unobserved_spread)` in logits: undecided, but not all
    /// identical.
    #[config(default = 0.1)]
    pub unobserved_spread: f64,
    /// Observed positives start at this probability: nearly certain, yet with a finite logit.
    #[config(default = 0.995)]
    pub observed_positive_probability: f64,
}

impl LabelEstimatorConfig {
    /// An estimator for every image of a training set. `observed_labels` is its
    /// `[images, classes]` matrix with 1 for an observed positive and 0 for unobserved. The
    /// random spread comes from a ChaCha8 generator seeded with `seed`, drawn on the host, so the
    /// start is the same on every backend and target.
    pub fn init(&self, observed_labels: Tensor<2>, seed: u64, device: &Device) -> LabelEstimator {
        self.init_with_rng(
            observed_labels,
            &mut ChaCha8Rng::seed_from_u64(seed),
            device,
        )
    }

    /// [`init`](Self::init) drawing the spread from a caller's generator.
    pub fn init_with_rng<R: Rng + ?Sized>(
        &self,
        observed_labels: Tensor<2>,
        rng: &mut R,
        device: &Device,
    ) -> LabelEstimator {
        assert!(
            self.unobserved_spread > 0.0 && self.unobserved_spread < 0.5,
            "unobserved_spread must lie in (0, 0.5), got {}",
            self.unobserved_spread
        );
        let bound = logit(0.5 + self.unobserved_spread) as f32;
        let positive = logit(self.observed_positive_probability) as f32;
        let [images, classes] = observed_labels.dims();
        let observed = observed_labels
            .into_data()
            .try_into_vec_as::<f32>()
            .expect("observed labels are float");
        let logits: Vec<f32> = observed
            .iter()
            .map(|&label| {
                let spread = rng.random_range(-bound..bound);
                if label == 1.0 { positive } else { spread }
            })
            .collect();
        LabelEstimator::from_logits(Tensor::from_data(
            TensorData::new(logits, [images, classes]),
            device,
        ))
    }
}

/// Learnable `[images, classes]` label logits; the estimated labels are their sigmoids.
#[derive(Module, Debug)]
pub struct LabelEstimator {
    /// `[images, classes]`.
    pub logits: Param<Tensor<2>>,
}

impl LabelEstimator {
    /// An estimator starting from given logits (e.g. restored state or reference values).
    pub fn from_logits(logits: Tensor<2>) -> Self {
        Self {
            logits: Param::from_tensor(logits),
        }
    }

    /// Estimated label probabilities of the images at `indices` (their rows in the training
    /// set), `[indices, classes]`, differentiable with respect to the logits.
    pub fn forward(&self, indices: Tensor<1, Int>) -> Tensor<2> {
        sigmoid(self.logits.val().select(0, indices))
    }

    /// The current estimate for every image, `[images, classes]`, without gradient.
    pub fn estimated_labels(&self) -> Tensor<2> {
        sigmoid(self.logits.val().detach())
    }
}

/// `log(p / (1 - p))`, the inverse of the sigmoid.
fn logit(probability: f64) -> f64 {
    (probability / (1.0 - probability)).ln()
}
