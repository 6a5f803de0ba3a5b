//! What one photo's prediction gives the page: per head a probability per label and, for
//! Query2Label, the raw cross-attention of every decoder layer, from which any label's map is
//! drawn on demand.

use burn::tensor::{Device, Tensor, TensorData};
use querylabel::head::attention_map::{AttentionSelection, attention_maps};

/// One photo's outputs from every head of a bundle, in head order.
#[derive(Debug)]
pub struct PhotoPredictions {
    pub heads: Vec<Prediction>,
    /// Milliseconds from the decoded bytes to every head's results read back (the backbone
    /// runs once for all of them).
    pub milliseconds: f64,
}

/// One head's outputs for one photo, read back from the device.
#[derive(Debug)]
pub struct Prediction {
    /// `sigmoid(logit)` per label.
    pub probabilities: Vec<f32>,
    /// Per decoder layer, `[heads, labels, height · width]` row-major; empty for a linear head.
    pub cross_attention: Vec<Vec<f32>>,
    /// Attention heads per decoder layer.
    pub heads: usize,
    /// `[height, width]` of the feature map the queries attended to.
    pub feature_size: [usize; 2],
}

impl Prediction {
    /// Number of labels.
    pub fn labels(&self) -> usize {
        self.probabilities.len()
    }

    /// Label indices from the most to the least probable.
    pub fn ranking(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.labels()).collect();
        order.sort_by(|&a, &b| self.probabilities[b].total_cmp(&self.probabilities[a]));
        order
    }

    /// `label`'s attention over the feature map, `[height · width]` row-major summing to 1:
    /// the mean over layers and/or heads, or one of them, as `selection` says. `None` for a
    /// linear head, or a label, layer or head that does not exist.
    pub fn attention_map(&self, label: usize, selection: AttentionSelection) -> Option<Vec<f32>> {
        let layers = self.cross_attention.len();
        if layers == 0
            || label >= self.labels()
            || selection.layer.is_some_and(|layer| layer >= layers)
            || selection.head.is_some_and(|head| head >= self.heads)
        {
            return None;
        }
        // The maps are tiny (labels × 7 × 7 per head): the CPU backend draws them at once
        // without tying up the GPU, through the same code as the trainer's overlays.
        let device = Device::flex();
        let [height, width] = self.feature_size;
        let shape = [1, self.heads, self.labels(), height * width];
        let tensors: Vec<Tensor<4>> = self
            .cross_attention
            .iter()
            .map(|values| Tensor::from_data(TensorData::new(values.clone(), shape), &device))
            .collect();
        let maps = attention_maps(&tensors, self.feature_size, selection);
        let one = maps.narrow(1, label, 1);
        Some(
            one.into_data()
                .try_to_vec::<f32>()
                .expect("attention is f32"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction() -> Prediction {
        // Two layers, two heads, three labels, a 1×2 feature map.
        Prediction {
            probabilities: vec![0.2, 0.9, 0.5],
            cross_attention: vec![
                vec![
                    1.0, 0.0, 0.5, 0.5, 0.0, 1.0, // head 0
                    0.0, 1.0, 0.5, 0.5, 1.0, 0.0, // head 1
                ],
                vec![
                    1.0, 0.0, 1.0, 0.0, 1.0, 0.0, // head 0
                    1.0, 0.0, 1.0, 0.0, 1.0, 0.0, // head 1
                ],
            ],
            heads: 2,
            feature_size: [1, 2],
        }
    }

    #[test]
    fn ranks_labels_by_probability() {
        assert_eq!(prediction().ranking(), vec![1, 2, 0]);
    }

    #[test]
    fn maps_average_or_select_layers_and_heads() {
        let p = prediction();
        let mean = p.attention_map(0, AttentionSelection::default()).unwrap();
        assert_eq!(mean, vec![0.75, 0.25]);
        let one = AttentionSelection {
            layer: Some(0),
            head: Some(1),
        };
        assert_eq!(p.attention_map(2, one).unwrap(), vec![1.0, 0.0]);
        let missing_head = AttentionSelection {
            layer: None,
            head: Some(2),
        };
        assert!(p.attention_map(0, missing_head).is_none());
        assert!(p.attention_map(3, AttentionSelection::default()).is_none());
    }
}
