//! The 2-D sine positional encoding of DETR, as Query2Label uses it: normalised coordinates
//! scaled to 2π, temperature 10000, half the channels for y and half for x.

use burn::tensor::{Device, Tensor, TensorData};

/// Temperature of the sine frequencies, as in DETR and Query2Label.
const TEMPERATURE: f64 = 10_000.0;
/// Keeps the normalisation of the last coordinate finite; the official value.
const NORMALISATION_EPS: f64 = 1e-6;

/// Positional encoding of an `height × width` feature map with `hidden_dim` channels, laid out
/// as `[height · width, hidden_dim]` (row-major over positions, as the flattened feature map).
///
/// Channel `c < hidden_dim / 2` encodes y, the rest x. Within each half, even channels are
/// `sin(p / T^(2⌊i/2⌋/n))` and odd channels the matching cosine, where `p` is the 1-based
/// coordinate divided by its maximum and multiplied by 2π. Computed on the host: it is a few
/// thousand numbers, cheaper to build than to cache.
pub fn sine_position_encoding(
    hidden_dim: usize,
    height: usize,
    width: usize,
    device: &Device,
) -> Tensor<2> {
    assert!(
        hidden_dim.is_multiple_of(2),
        "hidden_dim must be even for the sine encoding, got {hidden_dim}"
    );
    let half = hidden_dim / 2;
    let scale = 2.0 * std::f64::consts::PI;
    let frequencies: Vec<f64> = (0..half)
        .map(|i| TEMPERATURE.powf((2 * (i / 2)) as f64 / half as f64))
        .collect();
    let encode = |position: f64, channel: usize| {
        let angle = position / frequencies[channel];
        if channel.is_multiple_of(2) {
            angle.sin()
        } else {
            angle.cos()
        }
    };

    let mut values = Vec::with_capacity(height * width * hidden_dim);
    for y in 0..height {
        let y_embed = (y + 1) as f64 / (height as f64 + NORMALISATION_EPS) * scale;
        for x in 0..width {
            let x_embed = (x + 1) as f64 / (width as f64 + NORMALISATION_EPS) * scale;
            values.extend((0..half).map(|c| encode(y_embed, c) as f32));
            values.extend((0..half).map(|c| encode(x_embed, c) as f32));
        }
    }
    Tensor::from_data(
        TensorData::new(values, [height * width, hidden_dim]),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_detr_formula_at_a_corner_and_the_far_end() {
        let device = Device::flex();
        let (h, w, d) = (3, 4, 8);
        let pe = sine_position_encoding(d, h, w, &device)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let at = |y: usize, x: usize, c: usize| pe[(y * w + x) * d + c];
        let two_pi = 2.0 * std::f64::consts::PI;
        // Position (0, 0): y = 1/3 · 2π, x = 1/4 · 2π; channel 0 is sin(y), channel 1 cos(y).
        let y0 = 1.0 / (3.0 + 1e-6) * two_pi;
        let x0 = 1.0 / (4.0 + 1e-6) * two_pi;
        assert!((at(0, 0, 0) as f64 - y0.sin()).abs() < 1e-6);
        assert!((at(0, 0, 1) as f64 - y0.cos()).abs() < 1e-6);
        assert!((at(0, 0, 4) as f64 - x0.sin()).abs() < 1e-6);
        // Channels 2 and 3 use the frequency 10000^(2/4) = 100.
        assert!((at(0, 0, 2) as f64 - (y0 / 100.0).sin()).abs() < 1e-6);
        assert!((at(0, 0, 7) as f64 - (x0 / 100.0).cos()).abs() < 1e-6);
        // The far corner is normalised to (almost exactly) 2π.
        assert!((at(2, 3, 0) as f64 - (two_pi * 3.0 / (3.0 + 1e-6)).sin()).abs() < 1e-6);
    }
}
