//! A loaded bundle ready to predict: decodes the visitor's bytes with the shared decoder (size
//! limits, truncated-JPEG refusal), preprocesses exactly as the trainer does, runs the backbone
//! once and every head on its feature map on the page's device, and reads the results back.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use querylabel::bundle::{
    Bundle, BundleDescription, BundleError, load_bundle, parse_bundle_manifest,
};
use querylabel::model::HeadConfig;
use querylabel::preprocess::{ImageError, decode_image};

use crate::clock::now_ms;
use crate::prediction::{PhotoPredictions, Prediction};
use crate::read_back::read_back;

/// An exported bundle on a device.
pub struct Predictor {
    bundle: Bundle,
    description: BundleDescription,
    device: Device,
}

impl Predictor {
    /// Loads a bundle from its `model.json` text and `model.safetensors` bytes onto `device`.
    pub fn from_export(
        manifest_json: &str,
        weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self, BundleError> {
        let manifest = parse_bundle_manifest(manifest_json)?;
        // Never saved again, so the backbone's batch norms fold into its convolutions.
        let bundle = load_bundle(&manifest.model, weights, device)?.fold_batch_norms();
        Ok(Predictor {
            bundle,
            description: manifest.model,
            device: device.clone(),
        })
    }

    /// Classes, input size, backbone and heads of the bundle.
    pub fn description(&self) -> &BundleDescription {
        &self.description
    }

    /// Attention heads per decoder layer of head `head`, or 0 for a head without per-label
    /// attention (or no such head).
    pub fn attention_heads(&self, head: usize) -> usize {
        match self.description.heads.get(head).map(|h| &h.head) {
            Some(HeadConfig::Query2Label(config)) => config.heads,
            _ => 0,
        }
    }

    /// Decoder layers of head `head` whose attention can be shown (0 for a linear head).
    pub fn attention_layers(&self, head: usize) -> usize {
        match self.description.heads.get(head).map(|h| &h.head) {
            Some(HeadConfig::Query2Label(config)) => config.decoder_layers,
            _ => 0,
        }
    }

    /// Predicts the labels of an encoded photo (JPEG, PNG, …) with every head. With
    /// `mirror_too`, each head's probabilities are the mean over the photo and its mirror image
    /// (`trainer predict --tta-flip`: one batch of two, so about twice the time), and the
    /// attention drawn stays the photo's own.
    pub async fn predict(
        &self,
        encoded: &[u8],
        mirror_too: bool,
    ) -> Result<PhotoPredictions, ImageError> {
        let image = decode_image(encoded)?;
        let preprocessing = &self.description.preprocessing;
        let start = now_ms();
        let photo = preprocessing.batch(&[preprocessing.image_to_chw(&image)], &self.device);
        let input = if mirror_too {
            // Along the width, as the trainer's mirrored view.
            Tensor::cat(vec![photo.clone(), photo.flip([3])], 0)
        } else {
            photo
        };
        Ok(self.predict_input(input, start).await)
    }

    /// Runs the network once on a blank input, so that shader compilation and first
    /// allocations happen before the visitor's first photo. Returns its milliseconds.
    pub async fn warm_up(&self) -> f64 {
        let preprocessing = &self.description.preprocessing;
        let start = now_ms();
        let input = Tensor::<4>::zeros(
            [1, 3, preprocessing.height, preprocessing.width],
            &self.device,
        );
        self.predict_input(input, start).await.milliseconds
    }

    /// Every head's results for `input`, one photo or a photo and its mirror image: the
    /// probabilities are the mean over the batch, the attention the first image's.
    async fn predict_input(&self, input: Tensor<4>, start: f64) -> PhotoPredictions {
        let outputs = self.bundle.forward(input);
        let mut heads = Vec::with_capacity(outputs.len());
        for (index, output) in outputs.into_iter().enumerate() {
            let probabilities = read_back(sigmoid(output.logits).mean_dim(0)).await;
            let mut cross_attention = Vec::with_capacity(output.cross_attention.len());
            for layer in output.cross_attention {
                cross_attention.push(read_back(layer.narrow(0, 0, 1)).await);
            }
            heads.push(Prediction {
                probabilities,
                cross_attention,
                heads: self.attention_heads(index),
                feature_size: output.feature_size,
            });
        }
        PhotoPredictions {
            heads,
            milliseconds: now_ms() - start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_back::block_on;
    use querylabel::backbone::{BackboneConfig, BackboneKind};
    use querylabel::bundle::{BundleManifest, HeadDescription, bundle_weights};
    use querylabel::head::{AttentionSelection, LinearHeadConfig, Query2LabelConfig};
    use querylabel::labels::LabelSpace;
    use querylabel::preprocess::Preprocessing;

    /// A small random bundle, a Query2Label and a linear head, exported to bytes as
    /// `trainer export` writes them.
    fn exported_bundle() -> (String, Vec<u8>) {
        let head = |name: &str, head: HeadConfig| HeadDescription {
            name: name.into(),
            description: String::new(),
            labels: None,
            loss: None,
            head,
            decision_threshold: Default::default(),
        };
        let description = BundleDescription {
            backbone: BackboneConfig::new(BackboneKind::EfficientNetLite0),
            preprocessing: Preprocessing::imagenet(64),
            label_space: LabelSpace::coco80(),
            heads: vec![
                head(
                    "full",
                    HeadConfig::Query2Label(
                        Query2LabelConfig::new(80, 1280)
                            .with_hidden_dim(32)
                            .with_feedforward_dim(32),
                    ),
                ),
                head("wan", HeadConfig::Linear(LinearHeadConfig::new(80, 1280))),
            ],
        };
        let device = Device::flex();
        let bundle = description.init(&device).unwrap();
        let weights = bundle_weights(&bundle, &description).unwrap();
        let manifest = BundleManifest::new(description, "model.safetensors");
        (serde_json::to_string(&manifest).unwrap(), weights)
    }

    /// `image` encoded as a lossless PNG.
    fn png_of(image: image::DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        bytes
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        png_of(image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(
            width,
            height,
            |x, y| image::Rgb([x as u8, y as u8, 128]),
        )))
    }

    #[test]
    fn predicts_probabilities_and_attention_for_a_photo_with_every_head() {
        let (manifest, weights) = exported_bundle();
        let predictor = Predictor::from_export(&manifest, weights, &Device::flex()).unwrap();
        assert_eq!(
            (predictor.attention_layers(0), predictor.attention_heads(0)),
            (2, 4)
        );
        assert_eq!(
            (predictor.attention_layers(1), predictor.attention_heads(1)),
            (0, 0)
        );
        assert!(block_on(predictor.warm_up()) >= 0.0);
        let prediction = block_on(predictor.predict(&png(90, 50), false)).unwrap();
        assert_eq!(prediction.heads.len(), 2);
        for head in &prediction.heads {
            assert_eq!(head.probabilities.len(), 80);
            assert!(head.probabilities.iter().all(|p| (0.0..=1.0).contains(p)));
        }
        let q2l = &prediction.heads[0];
        // 64 px at stride 32: a 2×2 feature map, two decoder layers of four heads.
        assert_eq!(q2l.feature_size, [2, 2]);
        assert_eq!(q2l.cross_attention.len(), 2);
        let map = q2l.attention_map(5, AttentionSelection::default()).unwrap();
        assert_eq!(map.len(), 4);
        assert!((map.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        // The linear head has no attention to draw.
        let linear = &prediction.heads[1];
        assert!(
            linear
                .attention_map(5, AttentionSelection::default())
                .is_none()
        );
    }

    /// `encoded` mirrored, as a lossless PNG.
    fn mirrored(encoded: &[u8]) -> Vec<u8> {
        png_of(image::load_from_memory(encoded).unwrap().fliph())
    }

    /// The demo's own bundle and sample photo: a random network barely reacts to its input,
    /// so it could not tell a photo from its mirror.
    #[test]
    fn mirror_too_averages_the_photo_and_its_mirror_and_keeps_the_photos_attention() {
        let www = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../www");
        let manifest = std::fs::read_to_string(www.join("models/model.json")).unwrap();
        let weights = std::fs::read(www.join("models/model.safetensors")).unwrap();
        let predictor = Predictor::from_export(&manifest, weights, &Device::flex()).unwrap();
        let photo = std::fs::read(www.join("samples/COCO_val2014_000000022192.jpg")).unwrap();
        let plain = block_on(predictor.predict(&photo, false)).unwrap();
        let mirror = block_on(predictor.predict(&mirrored(&photo), false)).unwrap();
        let both = block_on(predictor.predict(&photo, true)).unwrap();
        for head in 0..plain.heads.len() {
            let (a, b, mean) = (&plain.heads[head], &mirror.heads[head], &both.heads[head]);
            let mut moved = 0f32;
            for label in 0..a.labels() {
                let expected = (a.probabilities[label] + b.probabilities[label]) / 2.0;
                // Mirroring before or after the resize rounds differently: within 2e-3, as
                // trainer predict --tta-flip's test allows.
                assert!(
                    (mean.probabilities[label] - expected).abs() < 2e-3,
                    "head {head}, label {label}: {} against {expected}",
                    mean.probabilities[label]
                );
                moved = moved.max((mean.probabilities[label] - a.probabilities[label]).abs());
            }
            // The mirror is another look, not the same one.
            assert!(moved > 1e-2, "head {head}: {moved}");
            assert_eq!(mean.cross_attention, a.cross_attention);
        }
    }

    #[test]
    fn bad_input_is_an_error_that_says_why() {
        let (manifest, weights) = exported_bundle();
        let predictor = Predictor::from_export(&manifest, weights, &Device::flex()).unwrap();
        let error = block_on(predictor.predict(b"<html>not a photo</html>", false)).unwrap_err();
        assert!(
            error.to_string().contains("not a readable image"),
            "{error}"
        );
        let whole = png(40, 40);
        let error = block_on(predictor.predict(&whole[..whole.len() / 2], true)).unwrap_err();
        assert!(
            error.to_string().contains("not a readable image"),
            "{error}"
        );
        assert!(Predictor::from_export("{}", Vec::new(), &Device::flex()).is_err());
        let (manifest, weights) = exported_bundle();
        let error = Predictor::from_export(&manifest, weights[..100].to_vec(), &Device::flex())
            .err()
            .expect("cut weights are refused");
        assert!(matches!(error, BundleError::Weights(_)), "{error}");
    }
}
