//! Data-parallel training steps over several devices (`--device 0,1,…`). Each device runs its
//! share of the batch on its own replica of the model; the gradients come back to the first
//! device and are summed, each share's loss weighted by its fraction of the batch when the loss
//! is a mean over images (a summed loss needs no weight). This is exactly the single-device step
//! on the whole batch; losses
//! with a batch-level term (EPR's and ROLE's expected-positive regulariser) see each share as a
//! batch of its own, as PyTorch's DistributedDataParallel does.
//!
//! Burn 0.22.1 has a collective `all_reduce` (`burn::tensor::distributed`), but only CUDA has a
//! transport between devices behind it: wgpu refuses the collective, and flex has none
//! (`tests/tests/wgpu_backend.rs` checks the refusal). The gradients therefore come back through
//! the host here, for every backend the trainer runs on.

use std::ops::Range;

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};
use querylabel::model::Classifier;

/// Splits `n` rows into at most `parts` contiguous, nearly equal, non-empty shares.
pub fn shares(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|p| (p * n / parts)..((p + 1) * n / parts))
        .filter(|range| !range.is_empty())
        .collect()
}

/// The devices of a step: where the model lives (`devices[0]`) and where its replicas run.
#[derive(Clone, Debug)]
pub struct DeviceSet {
    /// `(inference device, training device)` pairs; the first holds the model.
    pub devices: Vec<(Device, Device)>,
}

impl DeviceSet {
    pub fn new(devices: Vec<Device>) -> Self {
        Self {
            devices: devices
                .into_iter()
                .map(|device| (device.clone(), device.autodiff()))
                .collect(),
        }
    }

    pub fn main(&self) -> &(Device, Device) {
        &self.devices[0]
    }

    /// Computes the gradients of `loss` over `rows` examples, split over the devices and run on
    /// one thread each. `loss(replica, share, devices)` returns the loss of the share: a mean
    /// over its images, or their sum when `summed`. Returns the gradients on the main device and
    /// the batch's loss, reduced the same way.
    pub fn gradients<F>(
        &self,
        model: &Classifier,
        rows: usize,
        summed: bool,
        loss: F,
    ) -> (GradientsParams, f64)
    where
        F: Fn(&Classifier, Range<usize>, &(Device, Device)) -> Tensor<1> + Sync,
    {
        let shares = shares(rows, self.devices.len());
        let per_share: Vec<(GradientsParams, f64)> = std::thread::scope(|scope| {
            let workers: Vec<_> = shares
                .iter()
                .zip(&self.devices)
                .map(|(share, devices)| {
                    let loss = &loss;
                    scope.spawn(move || {
                        let replica = model.clone().fork(&devices.1);
                        let weight = if summed {
                            1.0
                        } else {
                            share.len() as f64 / rows as f64
                        };
                        let share_loss = loss(&replica, share.clone(), devices);
                        let value = share_loss.clone().into_scalar::<f32>() as f64;
                        let mut gradients = (share_loss * weight).backward();
                        let gradients = GradientsParams::from_module(&mut gradients, &replica);
                        (gradients, value * weight)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().expect("a device's training step panicked"))
                .collect()
        });
        let mut accumulator = GradientsAccumulator::<Classifier>::new();
        let mut mean_loss = 0.0;
        for (gradients, weighted_loss) in per_share {
            accumulator.accumulate(model, gradients.to_device(&self.main().1, model));
            mean_loss += weighted_loss;
        }
        (accumulator.grads(), mean_loss)
    }
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_cover_every_row_once_and_differ_by_at_most_one() {
        for n in [1, 2, 7, 32, 33] {
            for parts in 1..5 {
                let ranges = shares(n, parts);
                assert_eq!(ranges.first().unwrap().start, 0);
                assert_eq!(ranges.last().unwrap().end, n);
                assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
                let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "{n} rows in {parts}: {sizes:?}");
                assert_eq!(ranges.len(), parts.min(n));
            }
        }
    }
}
