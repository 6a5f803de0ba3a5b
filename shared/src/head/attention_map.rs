//! Turning Query2Label's cross-attention weights into one spatial map per label, for showing
//! where each label query looked.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Which attention weights to show: a mean over all, or one layer and/or one head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionSelection {
    /// A decoder layer (0-based), or `None` for the mean over layers.
    pub layer: Option<usize>,
    /// An attention head (0-based), or `None` for the mean over heads.
    pub head: Option<usize>,
}

/// Per-label maps `[batch, num_classes, height, width]` from the decoder's cross-attention
/// (`[batch, heads, num_classes, height · width]` per layer). Each map sums to 1 over its
/// positions, since every selected row does and means preserve that.
///
/// # Panics
/// If there are no layers, or the selected layer or head does not exist.
pub fn attention_maps(
    cross_attention: &[Tensor<4>],
    feature_size: [usize; 2],
    selection: AttentionSelection,
) -> Tensor<4> {
    assert!(!cross_attention.is_empty(), "no cross-attention layers");
    let layers: Vec<Tensor<4>> = match selection.layer {
        Some(layer) => {
            assert!(
                layer < cross_attention.len(),
                "layer {layer} out of {} decoder layers",
                cross_attention.len()
            );
            vec![cross_attention[layer].clone()]
        }
        None => cross_attention.to_vec(),
    };
    let layer_count = layers.len();
    let summed = layers
        .into_iter()
        .reduce(|sum, layer| sum + layer)
        .expect("at least one layer");
    let mean_over_layers = summed.div_scalar(layer_count as f64);
    let [batch, heads, classes, positions] = mean_over_layers.dims();
    let per_label = match selection.head {
        Some(head) => {
            assert!(head < heads, "head {head} out of {heads} attention heads");
            mean_over_layers.narrow(1, head, 1)
        }
        None => mean_over_layers.mean_dim(1),
    };
    let [height, width] = feature_size;
    assert_eq!(
        positions,
        height * width,
        "feature size does not match the attention"
    );
    per_label.reshape([batch, classes, height, width])
}

/// How focused each map of [`attention_maps`] is: its peak over the weight an even spread would
/// give every position (1 / positions), `[batch, num_classes]`. 1 is an even wash; a map that
/// puts all its weight on one position scores `height · width`.
pub fn peak_over_even_share(maps: Tensor<4>) -> Tensor<2> {
    let [batch, classes, height, width] = maps.dims();
    maps.reshape([batch, classes, height * width])
        .max_dim(2)
        .reshape([batch, classes])
        .mul_scalar((height * width) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::softmax;
    use burn::tensor::{Device, Distribution};

    fn random_attention(device: &Device) -> Vec<Tensor<4>> {
        (0..2)
            .map(|_| {
                softmax(
                    Tensor::<4>::random([1, 3, 4, 6], Distribution::Default, device),
                    3,
                )
            })
            .collect()
    }

    #[test]
    fn maps_are_normalised_and_shaped_like_the_feature_map() {
        let device = Device::flex();
        let attention = random_attention(&device);
        for selection in [
            AttentionSelection::default(),
            AttentionSelection {
                layer: Some(1),
                head: None,
            },
            AttentionSelection {
                layer: None,
                head: Some(2),
            },
        ] {
            let maps = attention_maps(&attention, [2, 3], selection);
            assert_eq!(maps.dims(), [1, 4, 2, 3]);
            let sums = maps
                .sum_dim(3)
                .sum_dim(2)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        }
    }

    #[test]
    fn one_layer_and_head_selects_exactly_those_weights() {
        let device = Device::flex();
        let attention = random_attention(&device);
        let selection = AttentionSelection {
            layer: Some(0),
            head: Some(1),
        };
        let maps = attention_maps(&attention, [2, 3], selection)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let expected = attention[0]
            .clone()
            .narrow(1, 1, 1)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(maps, expected);
    }
    #[test]
    fn peak_over_even_share_is_one_for_an_even_map_and_positions_for_a_point() {
        let device = Device::flex();
        let even = Tensor::<4>::full([1, 1, 2, 3], 1.0 / 6.0, &device);
        let point = Tensor::<4>::from_floats([[[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]], &device);
        let half = Tensor::<4>::from_floats([[[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]]], &device);
        let focus = peak_over_even_share(Tensor::cat(vec![even, point, half], 1))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(focus.len(), 3);
        for (got, want) in focus.iter().zip([1.0, 6.0, 3.0]) {
            assert!((got - want).abs() < 1e-5, "{focus:?}");
        }
    }
}
