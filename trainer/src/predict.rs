//! Predicting labels for photos with the heads of a bundle (the backbone runs once per photo),
//! and drawing where each label query looked: the photo with that query's cross-attention over
//! it as a heat map.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use burn::tensor::activation::sigmoid;
use image::{DynamicImage, Rgb, RgbImage, imageops::FilterType};
use querylabel::bundle::{Bundle, BundleDescription};
use querylabel::head::{AttentionSelection, attention_maps};
use querylabel::model::ClassifierOutput;
use querylabel::preprocess::decode_image;

use crate::atomic_files::write_atomically;
use crate::error::{Context, Locate, Result, TrainerError};
use crate::flip_tta::{averaged, probabilities_of};
use crate::images::read_photo_file;

/// One label of one photo.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LabelScore {
    pub label: String,
    pub probability: f32,
    /// Whether the probability is at or above the decision threshold.
    pub predicted: bool,
}

/// What one head predicts for one photo: its best labels, most probable first, the labels it
/// predicts, and the attention overlays written for it.
#[derive(Debug, serde::Serialize)]
pub struct HeadPrediction {
    /// The head's name in its bundle.
    pub head: String,
    /// The `top` most probable labels, predicted or not.
    pub labels: Vec<LabelScore>,
    /// The decision threshold the prediction used.
    pub threshold: f32,
    /// Every label whose probability is `>= threshold`, most probable first: the prediction.
    pub predicted_labels: Vec<String>,
    pub attention_files: Vec<PathBuf>,
}

/// Every chosen head's prediction for one photo.
#[derive(Debug, serde::Serialize)]
pub struct Prediction {
    pub image: PathBuf,
    pub heads: Vec<HeadPrediction>,
}

/// A head of the bundle to predict with, and the threshold it predicts at (usually its own
/// `decision_threshold`).
#[derive(Clone, Copy, Debug)]
pub struct HeadChoice {
    pub index: usize,
    pub threshold: f32,
}

/// What to predict and write for each photo.
#[derive(Clone, Copy, Debug, Default)]
pub struct PredictOptions<'a> {
    /// How many of each head's most probable labels to report.
    pub top: usize,
    /// Where to write attention overlays, if anywhere.
    pub attention_dir: Option<&'a Path>,
    /// Average each head's probabilities over the photo and its mirror image
    /// ([`crate::flip_tta`]); the attention drawn stays the photo's own.
    pub flip_averaged: bool,
}

/// Predicts one photo with the chosen heads of `bundle`, running its backbone once (twice when
/// flip-averaged). With an attention directory, writes `<photo stem>_<head>_<label>.png` for each
/// head's `top` labels (Query2Label heads only).
pub fn predict_image(
    bundle: &Bundle,
    description: &BundleDescription,
    heads: &[HeadChoice],
    path: &Path,
    options: PredictOptions,
    device: &Device,
) -> Result<Prediction> {
    let bytes = read_photo_file(path)
        .map_err(|reason| TrainerError::new(reason.to_string()).in_file(path))?;
    let photo = decode_image(&bytes).in_file(path)?;
    let input = description.preprocessing.image_to_chw(&photo);
    let input = description.preprocessing.batch(&[input], device);
    let mirrored = options
        .flip_averaged
        .then(|| bundle.backbone.forward_features(input.clone().flip([3])));
    let features = bundle.backbone.forward_features(input);
    let heads = heads
        .iter()
        .map(|choice| {
            let head = &bundle.heads[choice.index];
            let output = head.forward(features.clone());
            let probabilities = match &mirrored {
                Some(mirrored) => averaged(
                    sigmoid(output.logits.clone()),
                    sigmoid(head.forward(mirrored.clone()).logits),
                ),
                None => probabilities_of(sigmoid(output.logits.clone())),
            };
            let name = &description.heads[choice.index].name;
            let files = Overlays {
                photo: &photo,
                path,
                dir: options.attention_dir,
            };
            let scores = HeadScores {
                output: &output,
                probabilities,
                threshold: choice.threshold,
            };
            head_prediction(scores, description, name, options.top, files)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Prediction {
        image: path.to_path_buf(),
        heads,
    })
}

/// Where one head's attention overlays go, if anywhere.
struct Overlays<'a> {
    photo: &'a DynamicImage,
    path: &'a Path,
    dir: Option<&'a Path>,
}

/// One head's output for a photo, the probabilities it predicts with, and its threshold.
struct HeadScores<'a> {
    output: &'a ClassifierOutput,
    probabilities: Vec<f32>,
    threshold: f32,
}

fn head_prediction(
    scores: HeadScores,
    description: &BundleDescription,
    head: &str,
    top: usize,
    overlays: Overlays,
) -> Result<HeadPrediction> {
    let HeadScores {
        output,
        probabilities,
        threshold,
    } = scores;
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
    // A linear head has no maps to draw; the command says so once, before the photos.
    if let Some(dir) = overlays.dir.filter(|_| !output.cross_attention.is_empty()) {
        let [height, width] = output.feature_size;
        let maps = attention_maps(
            &output.cross_attention,
            output.feature_size,
            AttentionSelection::default(),
        )
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float attention");
        let stem = overlays
            .path
            .file_stem()
            .map_or("image".into(), |s| s.to_string_lossy());
        for &k in &ranked {
            let map = &maps[k * height * width..(k + 1) * height * width];
            let name = description.label_space.class_name(k).unwrap_or("label");
            let file = dir.join(format!("{stem}_{head}_{name}.png"));
            let overlay = overlay_attention(overlays.photo, map, [height, width], 0.55);
            let mut png = Vec::new();
            DynamicImage::ImageRgb8(overlay)
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .context_in(&file, "cannot encode as PNG")?;
            write_atomically(&file, &png)?;
            attention_files.push(file);
        }
    }
    Ok(HeadPrediction {
        head: head.into(),
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
