//! A linear layer applied to every token of a batch as one matrix product.
//!
//! Burn's `Linear` keeps a `[batch, tokens, d]` input batched when the tokens fill its matmul
//! tiles (80 label queries do), multiplying by the weight broadcast over the batch. Under
//! autodiff, the weight's gradient of such a product is first built per photo, a
//! `[batch, d_in, d_out]` tensor (64 MiB for a 256 → 1024 layer at batch 64), and then summed.
//! Folding the batch into the rows first makes the gradient one `[d_in, d_out]` product.

use burn::nn::Linear;
use burn::tensor::Tensor;

/// `linear` applied to each of the `[batch, tokens, d_in]` input's tokens: `[batch, tokens,
/// d_out]`, as `Linear::forward` gives, computed on the flattened rows.
pub fn linear_over_tokens(linear: &Linear, tokens: Tensor<3>) -> Tensor<3> {
    let [batch, count, d_in] = tokens.dims();
    let rows = linear.forward(tokens.reshape([batch * count, d_in]));
    let [_, d_out] = rows.dims();
    rows.reshape([batch, count, d_out])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution, Tolerance};

    #[test]
    fn matches_burns_linear_and_its_weight_gradient() {
        let device = Device::flex().autodiff();
        let linear = LinearConfig::new(6, 5).init(&device);
        // 16 tokens fill a tile: the case where Burn's own forward keeps the batch.
        let tokens = Tensor::<3>::random([3, 16, 6], Distribution::Default, &device);

        let ours = linear_over_tokens(&linear, tokens.clone());
        let burns = linear.forward(tokens);
        ours.clone()
            .into_data()
            .assert_approx_eq::<f32>(&burns.clone().into_data(), Tolerance::default());

        let ours_grad = ours.sum().backward();
        let burns_grad = burns.sum().backward();
        let weight = linear.weight.val();
        weight
            .grad(&ours_grad)
            .expect("a gradient for the weight")
            .into_data()
            .assert_approx_eq::<f32>(
                &weight.grad(&burns_grad).expect("a gradient").into_data(),
                Tolerance::default(),
            );
    }
}
