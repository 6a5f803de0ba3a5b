//! The gradients of a depthwise convolution (one group per channel), as direct loops over
//! each channel's plane on `f32` slices, channels in parallel: what
//! [`training_convolution`](super::training_convolution) runs for flex's backward pass.
//!
//! Planes are `[height, width]` row-major, tensors `[batch, channels, height, width]`, the
//! weight `[channels, 1, kernel_height, kernel_width]`. Each loop walks the kernel offsets
//! (`Tap`) and, for each, the rows of outputs that read inside the input, so that the inner
//! loops run over contiguous rows and vectorise; strided rows are read in a phase layout
//! (`Phases`) for the same reason.

use std::ops::Range;

use burn::backend::ops::ConvOptions;
use burn::tensor::Shape;
#[cfg(not(target_arch = "wasm32"))]
use rayon::prelude::*;

/// Sizes, strides and padding of one depthwise convolution, `[batch, channels, height, width]`
/// in and out, a `[channels, 1, kernel_height, kernel_width]` weight.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthwiseGeometry {
    pub channels: usize,
    pub input: [usize; 2],
    pub output: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Padding before the first row and column (the padding after follows from the sizes).
    pub padding: [usize; 2],
}

impl DepthwiseGeometry {
    pub fn new(input: &Shape, weight: &Shape, output: &Shape, options: &ConvOptions<2>) -> Self {
        Self {
            channels: input[1],
            input: [input[2], input[3]],
            output: [output[2], output[3]],
            kernel: [weight[2], weight[3]],
            stride: options.stride,
            dilation: options.dilation,
            padding: [options.padding[0].0, options.padding[1].0],
        }
    }

    /// Where kernel offset `k` along `axis` reads relative to `output · stride`:
    /// `k · dilation − padding`.
    fn offset(&self, axis: usize, k: usize) -> isize {
        (k * self.dilation[axis]) as isize - self.padding[axis] as isize
    }

    /// The outputs `o` along `axis` whose input `o·stride + offset(k)` for kernel offset `k`
    /// lies inside the input: `(first, end)`, empty when `first >= end`.
    fn valid_outputs(&self, axis: usize, k: usize) -> (usize, usize) {
        let shift = self.offset(axis, k);
        let stride = self.stride[axis] as isize;
        // o·stride + shift >= 0  and  o·stride + shift < input
        let first = if shift >= 0 {
            0
        } else {
            (-shift + stride - 1) / stride
        };
        let limit = self.input[axis] as isize - shift;
        let end = if limit <= 0 {
            0
        } else {
            (limit + stride - 1) / stride
        };
        (first as usize, (end as usize).min(self.output[axis]))
    }

    fn input_index(&self, axis: usize, output: usize, k: usize) -> usize {
        (output as isize * self.stride[axis] as isize + self.offset(axis, k)) as usize
    }

    fn input_plane(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn output_plane(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Every kernel offset that some output reads inside the input with, and those outputs.
    fn taps(&self) -> Vec<Tap> {
        let [k_h, k_w] = self.kernel;
        (0..k_h * k_w)
            .filter_map(|index| {
                let (a, b) = (index / k_w, index % k_w);
                let (row_first, row_end) = self.valid_outputs(0, a);
                let (col_first, col_end) = self.valid_outputs(1, b);
                if row_first >= row_end || col_first >= col_end {
                    return None;
                }
                let (phase, shift) = self.column_phase(b);
                Some(Tap {
                    index,
                    row: a,
                    phase,
                    rows: row_first..row_end,
                    columns: col_first..col_end,
                    first_column: (col_first as isize + shift) as usize,
                })
            })
            .collect()
    }

    /// Where, in the input plane laid out as `phases`, output row `oh`'s first column of
    /// `tap` reads; the tap's next columns read the values after it.
    fn first_input(&self, phases: Phases, tap: &Tap, oh: usize) -> usize {
        phases.row(self.input_index(0, oh, tap.row), tap.phase) + tap.first_column
    }

    /// The layout a strided input row is read in.
    fn phases(&self) -> Phases {
        Phases {
            stride: self.stride[1],
            width: self.input[1].div_ceil(self.stride[1]),
        }
    }

    /// For kernel column `b`: the phase of the input columns it reads, and the shift from an
    /// output column to its place in that phase (output `ow` reads phase index `ow + shift`).
    fn column_phase(&self, b: usize) -> (usize, isize) {
        let offset = self.offset(1, b);
        let stride = self.stride[1] as isize;
        (
            offset.rem_euclid(stride) as usize,
            offset.div_euclid(stride),
        )
    }
}

/// One kernel offset of a depthwise convolution and the outputs that read inside the input
/// with it.
struct Tap {
    /// `row · kernel width + column` of the offset.
    index: usize,
    /// The offset's kernel row.
    row: usize,
    /// The phase of the input columns it reads (`Phases`).
    phase: usize,
    /// Output rows and columns that read inside the input.
    rows: Range<usize>,
    columns: Range<usize>,
    /// The phase index the first of `columns` reads.
    first_column: usize,
}

/// A strided convolution's output column `ow` reads input column `ow·stride + offset`. Dealt
/// into `stride` phases, `[height, stride, ceil(width / stride)]` with column `j·stride + phase`
/// at `[phase][j]`, that column is `[phase][ow + shift]`: consecutive outputs then read
/// consecutive values, and the loops vectorise. (With stride 1 the plane is its own layout.)
#[derive(Clone, Copy)]
struct Phases {
    stride: usize,
    /// `ceil(width / stride)`.
    width: usize,
}

impl Phases {
    /// The start of row `row`'s phase `phase`.
    fn row(self, row: usize, phase: usize) -> usize {
        (row * self.stride + phase) * self.width
    }

    /// `plane` (`width` columns) dealt into phases.
    fn deal(self, plane: &[f32], width: usize) -> Vec<f32> {
        let mut dealt = vec![0.0; plane.len() / width * self.stride * self.width];
        for (row, values) in plane.chunks_exact(width).enumerate() {
            for phase in 0..self.stride {
                let columns = values[phase.min(width)..].iter().step_by(self.stride);
                let start = self.row(row, phase);
                for (to, from) in dealt[start..start + self.width].iter_mut().zip(columns) {
                    *to = *from;
                }
            }
        }
        dealt
    }

    /// The inverse of [`deal`](Self::deal), into `plane`.
    fn gather(self, dealt: &[f32], plane: &mut [f32], width: usize) {
        for (row, values) in plane.chunks_exact_mut(width).enumerate() {
            for phase in 0..self.stride {
                let columns = values[phase.min(width)..].iter_mut().step_by(self.stride);
                let start = self.row(row, phase);
                for (to, from) in columns.zip(&dealt[start..start + self.width]) {
                    *to = *from;
                }
            }
        }
    }
}

/// Runs `work` on each `(plane index, plane)` of `data`, in parallel where rayon is.
fn for_each_plane(data: &mut [f32], plane: usize, work: impl Fn(usize, &mut [f32]) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    data.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(i, p)| work(i, p));
    #[cfg(target_arch = "wasm32")]
    data.chunks_mut(plane)
        .enumerate()
        .for_each(|(i, p)| work(i, p));
}

/// The input's gradient: each output gradient spread back over the inputs it read, times the
/// weight it read them with (in the phase layout, `Phases`, when strided). One
/// `(photo, channel)` plane per task.
pub fn depthwise_input_gradient(
    geometry: &DepthwiseGeometry,
    output_grad: &[f32],
    weight: &[f32],
) -> Vec<f32> {
    let g = geometry;
    let (in_plane, out_plane, phases) = (g.input_plane(), g.output_plane(), g.phases());
    let taps = g.taps();
    let planes = output_grad.len() / out_plane;
    let mut input_grad = vec![0.0f32; planes * in_plane];
    for_each_plane(&mut input_grad, in_plane, |plane, grad| {
        let channel = plane % g.channels;
        let out = &output_grad[plane * out_plane..(plane + 1) * out_plane];
        let mut dealt = Vec::new();
        let target: &mut [f32] = if phases.stride == 1 {
            grad
        } else {
            dealt = vec![0.0; g.input[0] * phases.stride * phases.width];
            &mut dealt
        };
        for tap in &taps {
            let w = weight[channel * g.kernel[0] * g.kernel[1] + tap.index];
            for oh in tap.rows.clone() {
                let out_row = &out[oh * g.output[1]..][tap.columns.clone()];
                let start = g.first_input(phases, tap, oh);
                for (d, o) in target[start..start + out_row.len()].iter_mut().zip(out_row) {
                    *d += w * o;
                }
            }
        }
        if phases.stride > 1 {
            phases.gather(&dealt, grad, g.input[1]);
        }
    });
    input_grad
}

/// The weight's gradient: for each channel and kernel offset, the sum over photos and outputs
/// of the output gradient times the input it read (in the phase layout, `Phases`, when
/// strided). One channel per task.
pub fn depthwise_weight_gradient(
    geometry: &DepthwiseGeometry,
    output_grad: &[f32],
    input: &[f32],
) -> Vec<f32> {
    let g = geometry;
    let (in_plane, out_plane, phases) = (g.input_plane(), g.output_plane(), g.phases());
    let taps = g.taps();
    let batch = input.len() / (g.channels * in_plane);
    let mut weight_grad = vec![0.0f32; g.channels * g.kernel[0] * g.kernel[1]];
    for_each_plane(
        &mut weight_grad,
        g.kernel[0] * g.kernel[1],
        |channel, grad| {
            for photo in 0..batch {
                let plane = photo * g.channels + channel;
                let x = &input[plane * in_plane..(plane + 1) * in_plane];
                let dealt;
                let x = if phases.stride == 1 {
                    x
                } else {
                    dealt = phases.deal(x, g.input[1]);
                    &dealt[..]
                };
                let out = &output_grad[plane * out_plane..(plane + 1) * out_plane];
                for tap in &taps {
                    let mut sum = 0.0f32;
                    for oh in tap.rows.clone() {
                        let out_row = &out[oh * g.output[1]..][tap.columns.clone()];
                        let start = g.first_input(phases, tap, oh);
                        sum += dot(&x[start..start + out_row.len()], out_row);
                    }
                    grad[tap.index] += sum;
                }
            }
        },
    );
    weight_grad
}

/// `Σ a[i]·b[i]` in eight independent sums, which the compiler vectorises (one running sum
/// would have to add in order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut sums = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}
