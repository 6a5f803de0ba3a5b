//! The transformer's dropout, with its mask drawn quickly on the CPU backend.
//!
//! Burn's `Dropout` draws its mask with `Distribution::Bernoulli`, which the CPU backend samples
//! one element at a time, building a new sampler for each from a ChaCha generator: 18.6 ms for
//! the 1.3 million values of one `[64, 80, 256]` mask, 20% of a Query2Label head's training
//! step. Here, on the CPU backend, the mask's seed comes from Burn's generator (so
//! `Device::seed` still fixes every mask) and its values from a small fast generator on the
//! host, kept values already scaled by `1 / (1 − p)`: one multiplication instead of Burn's two.
//! On a GPU the mask is drawn where the tensor is, so there Burn's dropout runs unchanged.

use burn::nn::Dropout;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// `layer`'s dropout of `input`: nothing in inference or when `layer` is frozen or off; in
/// training on the CPU backend, a mask drawn on the host (see the module docs); elsewhere Burn's.
pub fn drop_out<const D: usize>(layer: &Dropout, input: Tensor<D>) -> Tensor<D> {
    let device = input.device();
    if !layer.training.is_enabled() || !device.is_autodiff() || layer.prob == 0.0 {
        return input;
    }
    if device.clone().inner() != Device::flex() {
        return layer.forward(input);
    }
    let keep = 1.0 - layer.prob;
    let shape = input.shape();
    let mask = host_mask(shape.num_elements(), keep, seed_from_burn(&device));
    input * Tensor::<D>::from_data(TensorData::new(mask, shape), &device)
}

/// A seed drawn from Burn's generator on `device`, which `Device::seed` fixes.
fn seed_from_burn(device: &Device) -> u64 {
    let halves = Tensor::<1>::random([2], Distribution::Default, device)
        .into_data()
        .try_into_vec::<f32>()
        .expect("two f32 values");
    // 24 random bits in each f32 of [0, 1).
    let bits = |u: f32| (u * (1 << 24) as f32) as u64;
    (bits(halves[0]) << 24) | bits(halves[1])
}

/// `count` values, each `1 / keep` with probability `keep` and 0 otherwise.
fn host_mask(count: usize, keep: f64, seed: u64) -> Vec<f32> {
    let mut rng = SmallRng::seed_from_u64(seed);
    // Kept when a uniform 32-bit draw falls below keep · 2³².
    let threshold = (keep * 4_294_967_296.0).min(u32::MAX as f64) as u32;
    let scale = (1.0 / keep) as f32;
    (0..count)
        .map(|_| {
            if rng.random::<u32>() < threshold {
                scale
            } else {
                0.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::DropoutConfig;

    #[test]
    fn a_host_mask_keeps_the_share_asked_for_scaled_to_keep_the_mean() {
        let keep = 0.9;
        let mask = host_mask(200_000, keep, 7);
        let kept = mask.iter().filter(|&&m| m > 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - keep).abs() < 0.003, "{kept}");
        assert!(
            mask.iter()
                .all(|&m| m == 0.0 || (m - 1.0 / 0.9).abs() < 1e-6)
        );
        let mean = mask.iter().map(|&m| m as f64).sum::<f64>() / mask.len() as f64;
        assert!((mean - 1.0).abs() < 0.004, "{mean}");
        assert_ne!(host_mask(64, keep, 7), host_mask(64, keep, 8));
    }

    #[test]
    fn the_mask_follows_the_device_seed_and_only_trains() {
        let layer = DropoutConfig::new(0.5).init();
        let device = Device::flex().autodiff();
        let ones = || Tensor::<2>::ones([32, 64], &device);
        let dropped = |seed| {
            device.seed(seed);
            drop_out(&layer, ones()).into_data()
        };
        assert_eq!(dropped(3), dropped(3));
        assert_ne!(dropped(3), dropped(4));
        let values = dropped(3).try_into_vec::<f32>().unwrap();
        assert!(values.iter().all(|&v| v == 0.0 || v == 2.0));
        let zeros = values.iter().filter(|&&v| v == 0.0).count();
        assert!((800..1250).contains(&zeros), "{zeros} of 2048 dropped");
        // Inference: the input as it is.
        let plain = Device::flex();
        let input = Tensor::<2>::ones([4, 4], &plain);
        assert_eq!(
            drop_out(&layer, input.clone()).into_data(),
            input.into_data()
        );
    }
}
