//! Multi-head attention for the Query2Label transformer, Burn's `MultiHeadAttention` computed
//! with the training step's fast paths.
//!
//! Same parameters under the same names (`query`, `key`, `value`, `output`), the same
//! arithmetic (scaled dot products, softmax over the keys, dropout on the weights), so models
//! and checkpoints load as before. Two things differ in how it runs: its projections fold the
//! batch into the rows (`token_linear`), and the attention weights' dropout draws its mask on
//! the host on the CPU backend (`dropout`). Inside Burn's module both were out of reach: 40%
//! of a Query2Label head's training step went to per-photo weight gradients and to masks.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::dropout::drop_out;
use super::token_linear::linear_over_tokens;

/// Configuration of [`Attention`].
#[derive(Config, Debug)]
pub struct AttentionConfig {
    /// Width of queries, keys and values.
    pub d_model: usize,
    /// Attention heads; `d_model` splits evenly among them.
    pub heads: usize,
    /// Dropout on the attention weights.
    #[config(default = 0.1)]
    pub dropout: f64,
}

/// Multi-head attention (see the module docs).
#[derive(Module, Debug)]
pub struct Attention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub dropout: Dropout,
    pub heads: usize,
}

/// What [`Attention::forward`] gives.
pub struct AttentionOutput {
    /// `[batch, heads, queries, keys]`, each row summing to 1 (after dropout in training, as
    /// Burn's module returns them).
    pub weights: Tensor<4>,
    /// `[batch, queries, d_model]`.
    pub context: Tensor<3>,
}

impl AttentionConfig {
    /// Xavier-uniform projections with biases, as the official `_reset_parameters`.
    ///
    /// # Panics
    /// If `d_model` does not split evenly among the heads.
    pub fn init(&self, device: &Device) -> Attention {
        assert!(
            self.heads > 0 && self.d_model.is_multiple_of(self.heads),
            "attention width {} does not split among {} heads",
            self.d_model,
            self.heads
        );
        let projection = || {
            LinearConfig::new(self.d_model, self.d_model)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        Attention {
            query: projection(),
            key: projection(),
            value: projection(),
            output: projection(),
            dropout: DropoutConfig::new(self.dropout).init(),
            heads: self.heads,
        }
    }
}

impl Attention {
    /// `query`: `[batch, queries, d]`; `key`, `value`: `[batch, keys, d]`.
    pub fn forward(&self, query: Tensor<3>, key: Tensor<3>, value: Tensor<3>) -> AttentionOutput {
        let [batch, queries, d_model] = query.dims();
        let query = self.split_heads(linear_over_tokens(&self.query, query));
        let key = self.split_heads(linear_over_tokens(&self.key, key));
        let value = self.split_heads(linear_over_tokens(&self.value, value));
        let head_width = (d_model / self.heads) as f32;
        let scores = query.matmul(key.transpose()).div_scalar(head_width.sqrt());
        let weights = drop_out(&self.dropout, softmax(scores, 3));
        let context = weights
            .clone()
            .matmul(value)
            .swap_dims(1, 2)
            .reshape([batch, queries, d_model]);
        AttentionOutput {
            weights,
            context: linear_over_tokens(&self.output, context),
        }
    }

    /// `[batch, tokens, d]` → `[batch, heads, tokens, d / heads]`.
    fn split_heads(&self, tokens: Tensor<3>) -> Tensor<4> {
        let [batch, count, d_model] = tokens.dims();
        tokens
            .reshape([batch, count, self.heads, d_model / self.heads])
            .swap_dims(1, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
    use burn::store::ModuleSnapshot;
    use burn::tensor::{Distribution, Tolerance};

    /// Burn's module with this one's parameters, both in inference: the same weights and
    /// context, and the same parameter names.
    #[test]
    fn computes_what_burns_multi_head_attention_computes() {
        let device = Device::flex();
        let ours = AttentionConfig::new(8, 2).init(&device);
        let burns = MultiHeadAttentionConfig::new(8, 2).init(&device);
        let ours_names: Vec<String> = ours
            .collect(None, None, false)
            .into_iter()
            .map(|t| t.name)
            .collect();
        let burns_names: Vec<String> = burns
            .collect(None, None, false)
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(ours_names, burns_names);

        let burns = MultiHeadAttention {
            query: ours.query.clone(),
            key: ours.key.clone(),
            value: ours.value.clone(),
            output: ours.output.clone(),
            ..burns
        };
        let query = Tensor::<3>::random([3, 5, 8], Distribution::Default, &device);
        let memory = Tensor::<3>::random([3, 7, 8], Distribution::Default, &device);
        let mine = ours.forward(query.clone(), memory.clone(), memory.clone());
        let theirs = burns.forward(MhaInput::new(query, memory.clone(), memory));
        mine.weights
            .into_data()
            .assert_approx_eq::<f32>(&theirs.weights.into_data(), Tolerance::default());
        mine.context
            .into_data()
            .assert_approx_eq::<f32>(&theirs.context.into_data(), Tolerance::default());
    }
}
