//! The post-norm transformer layers of Query2Label (DETR's, with positional encodings added to
//! queries and keys at every attention, and decoder self-attention optional).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::attention::{Attention, AttentionConfig};
use super::dropout::drop_out;
use super::token_linear::linear_over_tokens;

/// Sizes shared by the encoder and decoder layers.
#[derive(Config, Debug)]
pub struct TransformerLayerConfig {
    /// Width of tokens and queries.
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// Hidden width of the feed-forward block.
    pub feedforward_dim: usize,
    /// Dropout after attention and in the feed-forward block.
    pub dropout: f64,
}

impl TransformerLayerConfig {
    /// Xavier-uniform weights, as the official `_reset_parameters`.
    fn attention(&self, device: &Device) -> Attention {
        AttentionConfig::new(self.d_model, self.heads)
            .with_dropout(self.dropout)
            .init(device)
    }

    fn norm(&self, device: &Device) -> LayerNorm {
        LayerNormConfig::new(self.d_model).init(device)
    }

    fn dropout(&self) -> Dropout {
        DropoutConfig::new(self.dropout).init()
    }

    fn feedforward(&self, device: &Device) -> FeedForward {
        let linear = |d_in, d_out| {
            LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        FeedForward {
            inner: linear(self.d_model, self.feedforward_dim),
            outer: linear(self.feedforward_dim, self.d_model),
            dropout: self.dropout(),
        }
    }

    /// An encoder layer (self-attention over the image tokens).
    pub fn init_encoder(&self, device: &Device) -> EncoderLayer {
        EncoderLayer {
            self_attention: self.attention(device),
            attention_norm: self.norm(device),
            attention_dropout: self.dropout(),
            feedforward: self.feedforward(device),
            feedforward_norm: self.norm(device),
            feedforward_dropout: self.dropout(),
        }
    }

    /// A decoder layer; `self_attention` keeps the attention among label queries, which
    /// Query2Label removes by default.
    pub fn init_decoder(&self, self_attention: bool, device: &Device) -> DecoderLayer {
        DecoderLayer {
            self_attention: self_attention.then(|| QuerySelfAttention {
                attention: self.attention(device),
                norm: self.norm(device),
                dropout: self.dropout(),
            }),
            cross_attention: self.attention(device),
            cross_attention_norm: self.norm(device),
            cross_attention_dropout: self.dropout(),
            feedforward: self.feedforward(device),
            feedforward_norm: self.norm(device),
            feedforward_dropout: self.dropout(),
        }
    }
}

/// Linear → ReLU → dropout → linear.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub inner: Linear,
    pub outer: Linear,
    pub dropout: Dropout,
}

impl FeedForward {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let hidden = relu(linear_over_tokens(&self.inner, x));
        linear_over_tokens(&self.outer, drop_out(&self.dropout, hidden))
    }
}

/// Self-attention over image tokens, then a feed-forward block, each followed by add & norm.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub self_attention: Attention,
    pub attention_norm: LayerNorm,
    pub attention_dropout: Dropout,
    pub feedforward: FeedForward,
    pub feedforward_norm: LayerNorm,
    pub feedforward_dropout: Dropout,
}

impl EncoderLayer {
    /// `tokens`, `position`: `[batch, hw, d_model]` (position broadcast over the batch).
    pub fn forward(&self, tokens: Tensor<3>, position: Tensor<3>) -> Tensor<3> {
        let with_position = tokens.clone() + position;
        let attended = self
            .self_attention
            .forward(with_position.clone(), with_position, tokens.clone())
            .context;
        let tokens = self
            .attention_norm
            .forward(tokens + drop_out(&self.attention_dropout, attended));
        let transformed = self.feedforward.forward(tokens.clone());
        self.feedforward_norm
            .forward(tokens + drop_out(&self.feedforward_dropout, transformed))
    }
}

/// The optional attention among label queries of a decoder layer.
#[derive(Module, Debug)]
pub struct QuerySelfAttention {
    pub attention: Attention,
    pub norm: LayerNorm,
    pub dropout: Dropout,
}

/// Label queries attend to each other (optionally), then to the image, then a feed-forward
/// block; each step followed by add & norm.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    pub self_attention: Option<QuerySelfAttention>,
    pub cross_attention: Attention,
    pub cross_attention_norm: LayerNorm,
    pub cross_attention_dropout: Dropout,
    pub feedforward: FeedForward,
    pub feedforward_norm: LayerNorm,
    pub feedforward_dropout: Dropout,
}

/// A decoder layer's updated queries and its cross-attention weights.
pub struct DecoderLayerOutput {
    /// `[batch, queries, d_model]`.
    pub queries: Tensor<3>,
    /// `[batch, heads, queries, hw]`: where each label query looked; each row sums to 1.
    pub cross_attention: Tensor<4>,
}

impl DecoderLayer {
    /// `queries`: `[batch, K, d]`; `query_position`: the label embeddings, `[batch, K, d]`;
    /// `memory`, `memory_position`: image tokens and their encoding, `[batch, hw, d]`.
    pub fn forward(
        &self,
        queries: Tensor<3>,
        query_position: Tensor<3>,
        memory: Tensor<3>,
        memory_position: Tensor<3>,
    ) -> DecoderLayerOutput {
        let queries = match &self.self_attention {
            Some(block) => {
                let with_position = queries.clone() + query_position.clone();
                let attended = block
                    .attention
                    .forward(with_position.clone(), with_position, queries.clone())
                    .context;
                block
                    .norm
                    .forward(queries + drop_out(&block.dropout, attended))
            }
            None => queries,
        };
        let attention = self.cross_attention.forward(
            queries.clone() + query_position,
            memory.clone() + memory_position,
            memory,
        );
        let queries = self
            .cross_attention_norm
            .forward(queries + drop_out(&self.cross_attention_dropout, attention.context));
        let transformed = self.feedforward.forward(queries.clone());
        let queries = self
            .feedforward_norm
            .forward(queries + drop_out(&self.feedforward_dropout, transformed));
        DecoderLayerOutput {
            queries,
            cross_attention: attention.weights,
        }
    }
}
