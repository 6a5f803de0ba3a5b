//! The backbone's convolutions under autodiff, in forms whose backward pass Burn's CPU backend
//! (flex) runs fast. Inference, and any other backend, runs [`Conv2d::forward`] unchanged.
//!
//! Burn 0.22 computes every convolution's gradients with generic code. For a depthwise
//! convolution (one group per channel, most of an EfficientNet's convolutions) its weight
//! gradient runs one convolution per channel, each copied into the whole gradient, and its input
//! gradient a general transposed convolution: a third of a Lite0 fine-tuning step on flex. The
//! input gradient of a 1×1 convolution also goes through that transposed convolution. Here:
//!
//! - a **1×1 convolution** is written as the matrix product it is, whose gradients are matrix
//!   products too;
//! - a **depthwise convolution** on flex is one autodiff operation whose forward pass is flex's
//!   own convolution and whose backward pass is
//!   [`depthwise_gradients`](super::depthwise_gradients)' direct loops over each channel's
//!   plane, channels in parallel (Burn's backend-extension API: `Tensor::try_into_primitive` and
//!   `burn_autodiff`'s `Backward`).
//!
//! Both give Burn's gradients to rounding; the tests compare them.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::{DispatchDevice, TensorMetadata};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, Shape, Tensor, TensorData};

use super::depthwise_gradients::{
    DepthwiseGeometry, depthwise_input_gradient, depthwise_weight_gradient,
};

/// Flex under autodiff, as `Device::flex().autodiff()` makes it (no gradient checkpointing).
type TrackedFlex = Autodiff<Flex, NoCheckpointing>;

/// `conv` applied to `input`, in the form that trains fastest on flex under autodiff (see the
/// module docs); elsewhere `conv.forward(input)`.
pub fn convolve(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    if !on_flex_under_autodiff(&input.device()) {
        return conv.forward(input);
    }
    let [
        channels_out,
        channels_per_group,
        kernel_height,
        kernel_width,
    ] = conv.weight.dims();
    let output = if kernel_height == 1 && kernel_width == 1 && plain_pointwise(conv) {
        pointwise(conv, input)
    } else if channels_per_group == 1 && conv.groups == channels_out {
        match depthwise_options(conv).and_then(|options| depthwise(conv, &input, options)) {
            Some(output) => output,
            None => return conv.forward(input),
        }
    } else {
        return conv.forward(input);
    };
    match &conv.bias {
        Some(bias) => output + bias.val().reshape([1, channels_out, 1, 1]),
        None => output,
    }
}

/// Whether `device` is flex under autodiff. (Matched, not compared with
/// `Device::flex().autodiff()`: building that device for each convolution cost inference 8%.)
fn on_flex_under_autodiff(device: &Device) -> bool {
    match device.as_dispatch() {
        DispatchDevice::Autodiff(inner) => matches!(**inner, DispatchDevice::Flex(_)),
        _ => false,
    }
}

/// A 1×1 convolution without stride, dilation, groups or padding: a matrix product.
fn plain_pointwise(conv: &Conv2d) -> bool {
    conv.groups == 1
        && conv.stride == [1, 1]
        && matches!(
            conv.padding,
            PaddingConfig2d::Valid | PaddingConfig2d::Same | PaddingConfig2d::Explicit(0, 0, 0, 0)
        )
}

/// `[batch, in, h, w]` → `[batch, out, h, w]` as `weight [out, in]` times each photo's
/// `[in, h·w]`, without the bias.
fn pointwise(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    let [batch, channels_in, height, width] = input.dims();
    let [channels_out, ..] = conv.weight.dims();
    let weight = conv.weight.val().reshape([1, channels_out, channels_in]);
    weight
        .matmul(input.reshape([batch, channels_in, height * width]))
        .reshape([batch, channels_out, height, width])
}

/// The options of a depthwise convolution with explicit padding (the backbones' only kind).
fn depthwise_options(conv: &Conv2d) -> Option<ConvOptions<2>> {
    match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some(ConvOptions::new_with_padding(
            conv.stride,
            [(top, bottom), (left, right)],
            conv.dilation,
            conv.groups,
        )),
        _ => None,
    }
}

/// The depthwise convolution, without the bias, as one flex autodiff operation; `None` when
/// the tensors are not float32 flex tensors under autodiff.
fn depthwise(conv: &Conv2d, input: &Tensor<4>, options: ConvOptions<2>) -> Option<Tensor<4>> {
    let weight = conv.weight.val();
    if input.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return None;
    }
    let x = input.clone().try_into_primitive::<TrackedFlex>().ok()?;
    let w = weight.try_into_primitive::<TrackedFlex>().ok()?;
    let output = match DepthwiseBackward
        .prepare::<NoCheckpointing>([x.node(), w.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let w_state = prep.checkpoint(&w);
            let output = Flex::conv2d(
                x.into_primitive(),
                w.into_primitive(),
                None,
                options.clone(),
            );
            prep.finish((x_state, w_state, options), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(Flex::conv2d(
            x.into_primitive(),
            w.into_primitive(),
            None,
            options,
        )),
    };
    Some(Tensor::from_primitive::<TrackedFlex>(output))
}

/// The backward step of [`depthwise`]: the input's and the weight's gradients, each only when
/// its parent asks for it (a frozen weight does not).
#[derive(Debug)]
struct DepthwiseBackward;

impl Backward<Flex, 2> for DepthwiseBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [input_node, weight_node] = ops.parents;
        let output_grad = grads.consume::<Flex>(&ops.node);
        let (input_state, weight_state, options) = ops.state;
        let input = checkpointer.retrieve_node_output::<FlexTensor>(input_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        let geometry = DepthwiseGeometry::new(
            &input.shape(),
            &weight.shape(),
            &output_grad.shape(),
            &options,
        );
        let output_grad = output_grad.to_contiguous();
        if let Some(node) = input_node {
            let weight = weight.to_contiguous();
            let grad = depthwise_input_gradient(&geometry, values(&output_grad), values(&weight));
            grads.register::<Flex>(node.id, flex_tensor(grad, input.shape()));
        }
        if let Some(node) = weight_node {
            let input = input.to_contiguous();
            let grad = depthwise_weight_gradient(&geometry, values(&output_grad), values(&input));
            grads.register::<Flex>(node.id, flex_tensor(grad, weight.shape()));
        }
    }
}

/// The values of a contiguous float32 flex tensor, in row-major order.
fn values(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("a contiguous float32 tensor (made so, and checked before the forward pass)")
}

fn flex_tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, Tolerance};

    /// A convolution's output and gradients (input, weight, bias) for a fixed upstream gradient.
    fn gradients(
        conv: &Conv2d,
        input: &Tensor<4>,
        upstream: &Tensor<4>,
        ours: bool,
    ) -> [TensorData; 4] {
        let input = input.clone().require_grad();
        let output = if ours {
            convolve(conv, input.clone())
        } else {
            conv.forward(input.clone())
        };
        let grads = (output.clone() * upstream.clone()).sum().backward();
        let bias = conv
            .bias
            .as_ref()
            .map(|b| b.grad(&grads).unwrap().into_data())
            .unwrap_or_else(|| TensorData::from([0.0f32]));
        [
            output.into_data(),
            input.grad(&grads).unwrap().into_data(),
            conv.weight.grad(&grads).unwrap().into_data(),
            bias,
        ]
    }

    /// Burn's own convolution (`Conv2d::forward`) is the reference for each geometry the
    /// backbones use (depthwise 3×3 and 5×5, strides 1 and 2, TensorFlow's asymmetric SAME
    /// padding, odd and even sizes, a non-square input) and for 1×1 convolutions with a bias.
    #[test]
    fn gradients_match_burns_convolution() {
        let device = Device::flex().autodiff();
        // (channels in, channels out, groups, kernel, stride, padding (top, left, bottom, right), input h, w)
        let cases = [
            (6, 6, 6, 3, 1, (1, 1, 1, 1), 9, 7),
            (5, 5, 5, 5, 2, (1, 1, 2, 2), 13, 13),
            (4, 4, 4, 3, 2, (0, 0, 1, 1), 8, 10),
            (3, 3, 3, 5, 1, (2, 2, 2, 2), 5, 6),
            (3, 3, 3, 3, 2, (1, 0, 1, 1), 4, 3),
            (7, 5, 1, 1, 1, (0, 0, 0, 0), 6, 5),
        ];
        for (i, &(c_in, c_out, groups, k, s, (t, l, b, r), h, w)) in cases.iter().enumerate() {
            let conv = Conv2dConfig::new([c_in, c_out], [k, k])
                .with_stride([s, s])
                .with_groups(groups)
                .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
                .with_bias(groups == 1)
                .init(&device);
            let input =
                Tensor::<4>::random([2, c_in, h, w], Distribution::Normal(0.0, 1.0), &device);
            let output_shape = conv.forward(input.clone()).dims();
            let upstream =
                Tensor::<4>::random(output_shape, Distribution::Normal(0.0, 1.0), &device);
            let expected = gradients(&conv, &input, &upstream, false);
            let measured = gradients(&conv, &input, &upstream, true);
            for (what, (m, e)) in [
                "output",
                "input gradient",
                "weight gradient",
                "bias gradient",
            ]
            .iter()
            .zip(measured.iter().zip(&expected))
            {
                assert_eq!(m.shape(), e.shape(), "case {i}: {what}");
                m.assert_approx_eq::<f32>(e, Tolerance::absolute(1e-4));
            }
        }
    }

    /// A frozen weight (no gradient asked) still passes the input's gradient back.
    #[test]
    fn a_frozen_weight_asks_for_no_gradient() {
        let device = Device::flex().autodiff();
        let mut conv = Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(4)
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(&device);
        conv.weight = conv.weight.set_require_grad(false);
        let input = Tensor::<4>::random([1, 4, 5, 5], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let grads = convolve(&conv, input.clone()).sum().backward();
        assert!(conv.weight.grad(&grads).is_none());
        let expected_grads = conv.forward(input.clone()).sum().backward();
        input
            .grad(&grads)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(
                &input.grad(&expected_grads).unwrap().into_data(),
                Tolerance::absolute(1e-5),
            );
    }
}
