//! An exponential moving average of the weights (as Query2Label's `ModelEma`): after every
//! optimiser step, `ema ← decay · ema + (1 − decay) · weights`. Averaging smooths the last
//! steps' noise; training validates both and keeps the better.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Query2Label's decay (its `--ema-decay`), which `trainer train` keeps unless told otherwise.
pub const DEFAULT_EMA_DECAY: f64 = 0.9997;

/// Every float parameter of a module, flattened, in visiting order.
struct FlattenParameters {
    values: Vec<Tensor<1>>,
}

impl ModuleVisitor for FlattenParameters {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().detach().inner();
        let count = value.shape().num_elements();
        self.values.push(value.reshape([count]));
    }
}

/// Blends each float parameter with the matching one of another module of the same structure.
struct BlendParameters {
    others: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for BlendParameters {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let other = self
            .others
            .next()
            .expect("the averaged module has the structure of the trained one");
        let decay = self.decay;
        param.map(|average| {
            let shape = average.shape();
            average.mul_scalar(decay) + other.reshape(shape).mul_scalar(1.0 - decay)
        })
    }
}

/// One averaging step: `average` (a module on a plain device, e.g. `model.valid()` at the
/// start) moves towards `current` (the module being trained) by `1 − decay`.
pub fn update_average<M: Module>(average: M, current: &M, decay: f64) -> M {
    let mut flattened = FlattenParameters { values: Vec::new() };
    current.visit(&mut flattened);
    average.map(&mut BlendParameters {
        others: flattened.values.into_iter(),
        decay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::Device;

    #[test]
    fn the_average_moves_towards_the_weights_by_one_minus_decay() {
        let device = Device::flex();
        let average = LinearConfig::new(3, 2).init(&device);
        let current = LinearConfig::new(3, 2).init(&device);
        let values =
            |m: &burn::nn::Linear| m.weight.val().into_data().try_into_vec_as::<f32>().unwrap();
        let (a, c) = (values(&average), values(&current));
        let updated = update_average(average, &current, 0.9);
        for ((u, a), c) in values(&updated).iter().zip(&a).zip(&c) {
            assert!((u - (0.9 * a + 0.1 * c)).abs() < 1e-6);
        }
    }
}
