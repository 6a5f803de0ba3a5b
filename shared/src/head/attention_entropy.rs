//! How spread out the label queries' attention is, as a training penalty that keeps it
//! focused. Trained from one positive label per photo, a Query2Label head can rank labels from
//! the average of the whole map, which every query reads alike: its attention flattens to an
//! even wash (docs/RESULTS.md measures it), and the maps stop saying where a label is. Adding
//! the entropy of the present labels' maps to the loss makes their queries commit to a few
//! positions; the classification loss then decides which ones.

use burn::tensor::Tensor;

use super::attention_map::{AttentionSelection, attention_maps};

/// Guards the logarithm of positions with zero weight (0 · ln 0 counts as 0).
const LOG_FLOOR: f64 = 1e-12;

/// Keeps [`SpreadCost::Log`] finite for a perfectly even map.
const CONCENTRATION_FLOOR: f64 = 1e-6;

/// What a present label's map costs for its spread `s` (its entropy over an even map's: 0 when
/// the query looks at one position, 1 for an even wash).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SpreadCost {
    /// `max(s − ceiling, 0)`. Near an even map `1 − s` shrinks with the square of how far the
    /// attention's logits differ, so this cost's pull vanishes just where a map flattens: a
    /// query that has started to flatten is let go, one that has started to focus is pushed on.
    Linear { ceiling: f64 },
    /// `−ln(1 − s)`, minus the logarithm of the map's concentration. Its pull grows as the map
    /// evens out, at the same rate as the linear cost's vanishes, so it does not fade as a map
    /// flattens (though the cost itself grows only logarithmically: at a small enough weight
    /// the labels' loss can still pay for an even map, docs/RESULTS.md); on a focused map it
    /// pulls less than the linear cost, so the labels' loss decides how far to focus.
    Log,
}

/// What the label maps the page draws (the mean over decoder layers and heads) cost for their
/// spread ([`SpreadCost`]), averaged over the photos' present labels: those `present`
/// (`[batch, labels]`, 1 or 0) marks. Only they have something to look at; an absent label's
/// query may look anywhere. `cross_attention` is one `[batch, heads, labels, positions]`
/// tensor per decoder layer; `feature_size` is the map's `[height, width]`.
///
/// # Panics
/// If there are no layers, or the positions do not match `feature_size`.
pub fn attention_spread_cost(
    cross_attention: &[Tensor<4>],
    feature_size: [usize; 2],
    cost: SpreadCost,
    present: Tensor<2>,
) -> Tensor<1> {
    let maps = attention_maps(cross_attention, feature_size, AttentionSelection::default());
    let [batch, labels, height, width] = maps.dims();
    let positions = height * width;
    let maps = maps.reshape([batch, labels, positions]);
    let entropy = -(maps.clone() * maps.clamp_min(LOG_FLOOR).log()).sum_dim(2);
    // A 1×1 map has no choice to make: its entropy is 0, and so is its cost.
    let even = (positions as f64).ln().max(f64::MIN_POSITIVE);
    let spread = entropy.div_scalar(even);
    let cost = match cost {
        SpreadCost::Linear { ceiling } => (spread - ceiling).clamp_min(0.0),
        SpreadCost::Log => spread
            .neg()
            .add_scalar(1.0)
            .clamp_min(CONCENTRATION_FLOOR)
            .log()
            .neg(),
    };
    let counted = present.clone().sum().clamp_min(1.0);
    (cost.reshape([batch, labels]) * present).sum() / counted
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    const LINEAR: SpreadCost = SpreadCost::Linear { ceiling: 0.0 };

    fn entropy_of(weights: Vec<f32>, shape: [usize; 4], size: [usize; 2]) -> f32 {
        let device = Device::flex();
        let attention = Tensor::<4>::from_data(TensorData::new(weights, shape), &device);
        let [batch, _, labels, _] = shape;
        let present = Tensor::<2>::ones([batch, labels], &device);
        attention_spread_cost(&[attention], size, LINEAR, present).into_scalar::<f32>()
    }

    #[test]
    fn an_even_map_scores_one_and_a_single_position_zero() {
        let even = entropy_of(vec![0.25; 4], [1, 1, 1, 4], [2, 2]);
        assert!((even - 1.0).abs() < 1e-6, "{even}");
        let single = entropy_of(vec![0.0, 1.0, 0.0, 0.0], [1, 1, 1, 4], [2, 2]);
        assert!(single.abs() < 1e-6, "{single}");
    }

    #[test]
    fn only_the_spread_beyond_the_ceiling_counts() {
        let device = Device::flex();
        // Label 0 looks at two of four positions (spread 0.5), label 1 evenly (spread 1).
        let attention = Tensor::<4>::from_data(
            TensorData::new(
                vec![0.5, 0.5, 0.0, 0.0, 0.25, 0.25, 0.25, 0.25],
                [1, 1, 2, 4],
            ),
            &device,
        );
        let present = Tensor::<2>::ones([1, 2], &device);
        let beyond = |ceiling| {
            attention_spread_cost(
                std::slice::from_ref(&attention),
                [2, 2],
                SpreadCost::Linear { ceiling },
                present.clone(),
            )
            .into_scalar::<f32>()
        };
        assert!((beyond(0.75) - 0.125).abs() < 1e-6, "{}", beyond(0.75));
        assert!((beyond(0.4) - 0.35).abs() < 1e-6, "{}", beyond(0.4));
        assert!(beyond(1.0).abs() < 1e-6, "{}", beyond(1.0));
    }

    #[test]
    fn absent_labels_cost_nothing() {
        let device = Device::flex();
        // Label 0 spreads evenly but is absent; label 1 looks at two of four positions.
        let attention = Tensor::<4>::from_data(
            TensorData::new(
                vec![0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 0.0, 0.0],
                [1, 1, 2, 4],
            ),
            &device,
        );
        let present = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 1.0], [1, 2]), &device);
        let spread =
            attention_spread_cost(std::slice::from_ref(&attention), [2, 2], LINEAR, present);
        assert!((spread.into_scalar::<f32>() - 0.5).abs() < 1e-6);
        let none = Tensor::<2>::zeros([1, 2], &device);
        let spread = attention_spread_cost(&[attention], [2, 2], LINEAR, none);
        assert!(spread.into_scalar::<f32>().abs() < 1e-6);
    }

    #[test]
    fn averages_the_heads_first_then_takes_each_labels_entropy() {
        // Two heads that each look at one position, different ones: the drawn map is half and
        // half, entropy ln 2 of ln 4. A second label looks evenly: 1. The mean is 0.75.
        let weights = vec![
            1.0, 0.0, 0.0, 0.0, /* head 0, label 0 */ 0.25, 0.25, 0.25,
            0.25, /* label 1 */
            0.0, 1.0, 0.0, 0.0, /* head 1, label 0 */ 0.25, 0.25, 0.25, 0.25,
        ];
        let entropy = entropy_of(weights, [1, 2, 2, 4], [2, 2]);
        let expected = (2f32.ln() / 4f32.ln() + 1.0) / 2.0;
        assert!(
            (entropy - expected).abs() < 1e-6,
            "{entropy} against {expected}"
        );
    }

    #[test]
    fn the_log_cost_is_minus_the_log_of_the_concentration() {
        // Two of four positions: spread 0.5, concentration 0.5, cost ln 2.
        let device = Device::flex();
        let attention = Tensor::<4>::from_data(
            TensorData::new(vec![0.5f32, 0.5, 0.0, 0.0], [1, 1, 1, 4]),
            &device,
        );
        let present = Tensor::<2>::ones([1, 1], &device);
        let cost = attention_spread_cost(&[attention], [2, 2], SpreadCost::Log, present)
            .into_scalar::<f32>();
        assert!((cost - 2f32.ln()).abs() < 1e-6, "{cost}");
    }

    /// The size of the cost's gradient with respect to the attention's logits, for one label
    /// whose logits are `scale` times a fixed pattern: the smaller the scale, the evener the map.
    fn pull_at(cost: SpreadCost, scale: f32) -> f32 {
        let device = Device::flex().autodiff();
        let pattern = [1.0f32, -1.0, 0.5, -0.5];
        let logits = Tensor::<4>::from_data(
            TensorData::new(pattern.map(|x| x * scale).to_vec(), [1, 1, 1, 4]),
            &device,
        )
        .require_grad();
        let attention = burn::tensor::activation::softmax(logits.clone(), 3);
        let present = Tensor::<2>::ones([1, 1], &device);
        let gradients = attention_spread_cost(&[attention], [2, 2], cost, present).backward();
        let gradient = logits.grad(&gradients).expect("a gradient for the logits");
        gradient.powi_scalar(2).sum().sqrt().into_scalar::<f32>()
    }

    #[test]
    fn near_an_even_map_the_linear_pull_vanishes_and_the_log_pull_grows() {
        let linear = [pull_at(LINEAR, 0.1), pull_at(LINEAR, 0.01)];
        let log = [
            pull_at(SpreadCost::Log, 0.1),
            pull_at(SpreadCost::Log, 0.01),
        ];
        // Ten times evener: the linear cost pulls about ten times less, the log cost about ten
        // times more.
        assert!(linear[1] < 0.2 * linear[0], "linear {linear:?}");
        assert!(log[1] > 5.0 * log[0], "log {log:?}");
    }
}
