//! Predicting labels for photos, and drawing where each label query looked: the photo with
//! that query's cross-attention over it as a heat map.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use burn::tensor::activation::sigmoid;
use image::{DynamicImage, Rgb, RgbImage, imageops::FilterType};
use querylabel::head::{AttentionSelection, attention_maps};
use querylabel::model::Classifier;
use querylabel::preprocess::decode_image;

use crate::checkpoint::write_atomically;
use crate::saved_model::ModelDescription;

/// One label of one photo.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LabelScore {
    pub label: String,
    pub probability: f32,
    /// Whether the probability is at or above the decision threshold.
    pub predicted: bool,
}

/// The best labels of one photo, most probable first, the labels it is predicted to have, and
/// the attention overlays written for it.
#[derive(Debug, serde::Serialize)]
pub struct Prediction {
    pub image: PathBuf,
    /// The `top` most probable labels, predicted or not.
    pub labels: Vec<LabelScore>,
    /// The decision threshold the prediction used.
    pub threshold: f32,
    /// Every label whose probability is `>= threshold`, most probable first: the prediction.
    pub predicted_labels: Vec<String>,
    pub attention_files: Vec<PathBuf>,
}

/// Predicts one photo, predicting the labels whose probability is `>= threshold` (usually the
/// model's `decision_threshold`). With `attention_dir`, writes `<photo stem>_<label>.png` for
/// each of the `top` labels (Query2Label models only).
pub fn predict_image(
    model: &Classifier,
    description: &ModelDescription,
    path: &Path,
    top: usize,
    threshold: f32,
    attention_dir: Option<&Path>,
    device: &Device,
) -> Result<Prediction> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let photo = decode_image(&bytes).with_context(|| format!("{}", path.display()))?;
    let input = description.preprocessing.image_to_chw(&photo);
    let output = model.forward(description.preprocessing.batch(&[input], device));
    let probabilities = sigmoid(output.logits)
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float probabilities");
    let mut ranked: Vec<usize> = (0..probabilities.len()).collect();
    ranked.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    let name = |k: usize| description.label_space.display_name(k).unwrap_or_default();
    let predicted_labels: Vec<String> = ranked
        .iter()
        .filter(|&&k| probabilities[k] >= threshold)
        .map(|&k| name(k))
        .collect();
    ranked.truncate(top);
    let labels: Vec<LabelScore> = ranked
        .iter()
        .map(|&k| LabelScore {
            label: name(k),
            probability: probabilities[k],
            predicted: probabilities[k] >= threshold,
        })
        .collect();

    let mut attention_files = Vec::new();
    if let Some(dir) = attention_dir {
        if output.cross_attention.is_empty() {
            bail!("this model has a linear head: it has no per-label attention to draw");
        }
        let [height, width] = output.feature_size;
        let maps = attention_maps(
            &output.cross_attention,
            output.feature_size,
            AttentionSelection::default(),
        )
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float attention");
        let stem = path
            .file_stem()
            .map_or("image".into(), |s| s.to_string_lossy());
        for &k in &ranked {
            let map = &maps[k * height * width..(k + 1) * height * width];
            let name = description.label_space.class_name(k).unwrap_or("label");
            let file = dir.join(format!("{stem}_{name}.png"));
            let overlay = overlay_attention(&photo, map, [height, width], 0.55);
            let mut png = Vec::new();
            DynamicImage::ImageRgb8(overlay)
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            write_atomically(&file, &png)?;
            attention_files.push(file);
        }
    }
    Ok(Prediction {
        image: path.to_path_buf(),
        labels,
        threshold,
        predicted_labels,
        attention_files,
    })
}

/// The photo with an attention map (`[height, width]`, any positive scale) upsampled over it
/// and coloured from blue (no attention) to red (the most), blended with `opacity`.
pub fn overlay_attention(
    photo: &DynamicImage,
    map: &[f32],
    [height, width]: [usize; 2],
    opacity: f32,
) -> RgbImage {
    let peak = map.iter().cloned().fold(f32::MIN_POSITIVE, f32::max);
    let grey: Vec<u8> = map
        .iter()
        .map(|&v| (v / peak * 255.0).round() as u8)
        .collect();
    let small = image::GrayImage::from_raw(width as u32, height as u32, grey)
        .expect("map of the feature size");
    let photo = photo.to_rgb8();
    let heat = image::imageops::resize(&small, photo.width(), photo.height(), FilterType::Triangle);
    RgbImage::from_fn(photo.width(), photo.height(), |x, y| {
        let level = heat.get_pixel(x, y)[0] as f32 / 255.0;
        let colour = heat_colour(level);
        let base = photo.get_pixel(x, y);
        Rgb(std::array::from_fn(|c| {
            (base[c] as f32 * (1.0 - opacity) + colour[c] * opacity).round() as u8
        }))
    })
}

/// A blue → cyan → yellow → red ramp.
fn heat_colour(level: f32) -> [f32; 3] {
    let t = level.clamp(0.0, 1.0);
    let red = (1.5 - (4.0 * t - 3.0).abs()).clamp(0.0, 1.0);
    let green = (1.5 - (4.0 * t - 2.0).abs()).clamp(0.0, 1.0);
    let blue = (1.5 - (4.0 * t - 1.0).abs()).clamp(0.0, 1.0);
    [red * 255.0, green * 255.0, blue * 255.0]
}
