//! The Query2Label head (Liu et al., 2021): every label is a learnable query of a transformer
//! decoder that cross-attends to the backbone's feature map; a group-wise linear layer turns
//! each query's output into that label's logit.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Tensor};

use super::group_wise_linear::{GroupWiseLinear, GroupWiseLinearConfig};
use super::position_encoding::sine_position_encoding;
use super::transformer::{DecoderLayer, EncoderLayer, TransformerLayerConfig};

/// DETR's and the paper's transformer dropout.
pub const DEFAULT_Q2L_DROPOUT: f64 = 0.1;

/// Configuration of a [`Query2Label`] head. Defaults suit a small backbone at 224–448 px; the
/// paper's ResNet-101 setting is `hidden_dim 2048, feedforward_dim 8192, heads 4, encoder 1,
/// decoder 2`.
#[derive(Config, Debug)]
pub struct Query2LabelConfig {
    /// Number of labels, hence of queries.
    pub num_classes: usize,
    /// Channels of the backbone's feature map.
    pub in_channels: usize,
    /// Width of the transformer.
    #[config(default = 256)]
    pub hidden_dim: usize,
    /// Attention heads.
    #[config(default = 4)]
    pub heads: usize,
    /// Encoder layers over the image tokens (the paper uses 1).
    #[config(default = 1)]
    pub encoder_layers: usize,
    /// Decoder layers (the paper uses 2).
    #[config(default = 2)]
    pub decoder_layers: usize,
    /// Hidden width of the feed-forward blocks.
    #[config(default = 1024)]
    pub feedforward_dim: usize,
    /// Dropout inside the transformer.
    #[config(default = "DEFAULT_Q2L_DROPOUT")]
    pub dropout: f64,
    /// Keep self-attention among label queries in the decoder (off in the paper).
    #[config(default = false)]
    pub decoder_self_attention: bool,
}

/// Query2Label head over a feature map.
#[derive(Module, Debug)]
pub struct Query2Label {
    /// 1×1 convolution from the backbone's channels to `hidden_dim`.
    pub input_projection: Conv2d,
    pub encoder: Vec<EncoderLayer>,
    pub decoder: Vec<DecoderLayer>,
    pub decoder_norm: LayerNorm,
    /// One learnable embedding per label, `[num_classes, hidden_dim]`, entering every decoder
    /// layer as the query position.
    pub label_embeddings: Param<Tensor<2>>,
    pub classifier: GroupWiseLinear,
}

/// What a forward pass gives: the logits, and where each label query looked.
pub struct Query2LabelOutput {
    /// `[batch, num_classes]`.
    pub logits: Tensor<2>,
    /// One tensor per decoder layer, `[batch, heads, num_classes, height · width]`; each
    /// query's weights over the feature-map positions sum to 1.
    pub cross_attention: Vec<Tensor<4>>,
    /// `[height, width]` of the feature map the attention is over.
    pub feature_size: [usize; 2],
}

impl Query2LabelConfig {
    /// Why these sizes cannot make a transformer, if they cannot (Burn's attention asserts on
    /// them instead).
    pub fn check(&self) -> Result<(), String> {
        let sizes = [
            ("hidden_dim", self.hidden_dim),
            ("heads", self.heads),
            ("decoder_layers", self.decoder_layers),
            ("feedforward_dim", self.feedforward_dim),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, size)| *size == 0) {
            return Err(format!("Query2Label {name} is 0; it must be at least 1"));
        }
        if !self.hidden_dim.is_multiple_of(self.heads) {
            return Err(format!(
                "Query2Label hidden_dim {} does not split into {} heads; it must be a multiple \
                 of them",
                self.hidden_dim, self.heads
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "Query2Label dropout {} is not in [0, 1)",
                self.dropout
            ));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Query2Label {
        let layer = TransformerLayerConfig::new(
            self.hidden_dim,
            self.heads,
            self.feedforward_dim,
            self.dropout,
        );
        Query2Label {
            input_projection: Conv2dConfig::new([self.in_channels, self.hidden_dim], [1, 1])
                .init(device),
            encoder: (0..self.encoder_layers)
                .map(|_| layer.init_encoder(device))
                .collect(),
            decoder: (0..self.decoder_layers)
                .map(|_| layer.init_decoder(self.decoder_self_attention, device))
                .collect(),
            decoder_norm: LayerNormConfig::new(self.hidden_dim).init(device),
            // nn.Embedding's default: standard normal.
            label_embeddings: Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([self.num_classes, self.hidden_dim], device),
            classifier: GroupWiseLinearConfig::new(self.num_classes, self.hidden_dim).init(device),
        }
    }
}

impl Query2Label {
    /// `features`: `[batch, in_channels, height, width]`.
    pub fn forward(&self, features: Tensor<4>) -> Query2LabelOutput {
        let device = features.device();
        let projected = self.input_projection.forward(features);
        let [batch, hidden_dim, height, width] = projected.dims();
        let [num_classes, _] = self.label_embeddings.dims();

        // [batch, d, h, w] → [batch, h·w, d]: one token per feature-map position.
        let mut memory = projected
            .reshape([batch, hidden_dim, height * width])
            .swap_dims(1, 2);
        let memory_position = sine_position_encoding(hidden_dim, height, width, &device)
            .unsqueeze_dim::<3>(0)
            .expand([batch, height * width, hidden_dim]);
        for layer in &self.encoder {
            memory = layer.forward(memory, memory_position.clone());
        }

        let query_position = self.label_embeddings.val().unsqueeze_dim::<3>(0).expand([
            batch,
            num_classes,
            hidden_dim,
        ]);
        // The queries start at zero; the label embeddings enter as their positions.
        let mut queries = Tensor::zeros([batch, num_classes, hidden_dim], &device);
        let mut cross_attention = Vec::with_capacity(self.decoder.len());
        for layer in &self.decoder {
            let output = layer.forward(
                queries,
                query_position.clone(),
                memory.clone(),
                memory_position.clone(),
            );
            queries = output.queries;
            cross_attention.push(output.cross_attention);
        }
        let logits = self.classifier.forward(self.decoder_norm.forward(queries));
        Query2LabelOutput {
            logits,
            cross_attention,
            feature_size: [height, width],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn small_config() -> Query2LabelConfig {
        Query2LabelConfig::new(5, 12)
            .with_hidden_dim(16)
            .with_heads(2)
            .with_feedforward_dim(32)
    }

    #[test]
    fn gives_logits_and_one_normalised_attention_map_per_layer_and_head() {
        let device = Device::flex();
        let head = small_config().init(&device);
        let features = Tensor::<4>::random([3, 12, 4, 6], Distribution::Default, &device);
        let output = head.forward(features);

        assert_eq!(output.logits.dims(), [3, 5]);
        assert_eq!(output.feature_size, [4, 6]);
        assert_eq!(output.cross_attention.len(), 2);
        for attention in output.cross_attention {
            assert_eq!(attention.dims(), [3, 2, 5, 24]);
            let sums = attention
                .sum_dim(3)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        }
    }

    #[test]
    fn decoder_self_attention_is_off_by_default_and_can_be_enabled() {
        let device = Device::flex();
        assert!(
            small_config()
                .init(&device)
                .decoder
                .iter()
                .all(|l| l.self_attention.is_none())
        );
        let with = small_config()
            .with_decoder_self_attention(true)
            .init(&device);
        assert!(with.decoder.iter().all(|l| l.self_attention.is_some()));
    }

    #[test]
    fn each_logit_depends_only_on_its_own_query_through_the_group_wise_classifier() {
        let device = Device::flex();
        let classifier = GroupWiseLinearConfig::new(3, 4).init(&device);
        let queries = Tensor::<3>::random([2, 3, 4], Distribution::Default, &device);
        let logits = classifier
            .forward(queries.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let w = classifier
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let b = classifier
            .bias
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let q = queries.into_data().try_to_vec::<f32>().unwrap();
        for batch in 0..2 {
            for k in 0..3 {
                let expected: f32 = (0..4)
                    .map(|d| w[k * 4 + d] * q[(batch * 3 + k) * 4 + d])
                    .sum::<f32>()
                    + b[k];
                assert!((logits[batch * 3 + k] - expected).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = small_config().with_encoder_layers(0);
        let json = serde_json::to_string(&config).unwrap();
        let back: Query2LabelConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.encoder_layers, 0);
        assert_eq!(back.hidden_dim, 16);
    }
}
