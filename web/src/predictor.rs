//! A loaded export ready to predict: decodes the visitor's bytes with the shared decoder (size
//! limits, truncated-JPEG refusal), preprocesses exactly as the trainer does, runs the network on
//! the page's device and reads the results back.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use querylabel::exported::{ExportError, ModelDescription, load_exported_model, parse_manifest};
use querylabel::model::{Classifier, HeadConfig};
use querylabel::preprocess::{ImageError, decode_image};

use crate::clock::now_ms;
use crate::prediction::Prediction;
use crate::read_back::read_back;

/// An exported model on a device.
pub struct Predictor {
    model: Classifier,
    description: ModelDescription,
    device: Device,
}

impl Predictor {
    /// Loads an export from its `model.json` text and `model.safetensors` bytes onto `device`.
    pub fn from_export(
        manifest_json: &str,
        weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self, ExportError> {
        let manifest = parse_manifest(manifest_json)?;
        let model = load_exported_model(&manifest, weights, device)?;
        Ok(Predictor {
            model,
            description: manifest.model,
            device: device.clone(),
        })
    }

    /// Classes, input size and network of the model.
    pub fn description(&self) -> &ModelDescription {
        &self.description
    }

    /// Attention heads per decoder layer, or 0 for a head without per-label attention.
    pub fn attention_heads(&self) -> usize {
        match &self.description.classifier.head {
            HeadConfig::Query2Label(config) => config.heads,
            HeadConfig::Linear(_) => 0,
        }
    }

    /// Decoder layers whose attention can be shown (0 for a linear head).
    pub fn attention_layers(&self) -> usize {
        match &self.description.classifier.head {
            HeadConfig::Query2Label(config) => config.decoder_layers,
            HeadConfig::Linear(_) => 0,
        }
    }

    /// Predicts the labels of an encoded photo (JPEG, PNG, …).
    pub async fn predict(&self, encoded: &[u8]) -> Result<Prediction, ImageError> {
        let image = decode_image(encoded)?;
        let preprocessing = &self.description.preprocessing;
        let start = now_ms();
        let input = preprocessing.batch(&[preprocessing.image_to_chw(&image)], &self.device);
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

    async fn predict_input(&self, input: Tensor<4>, start: f64) -> Prediction {
        let output = self.model.forward(input);
        let probabilities = read_back(sigmoid(output.logits)).await;
        let mut cross_attention = Vec::with_capacity(output.cross_attention.len());
        for layer in output.cross_attention {
            cross_attention.push(read_back(layer).await);
        }
        Prediction {
            probabilities,
            cross_attention,
            heads: self.attention_heads(),
            feature_size: output.feature_size,
            milliseconds: now_ms() - start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_back::block_on;
    use querylabel::backbone::{BackboneConfig, BackboneKind};
    use querylabel::exported::{EXPORT_FORMAT_VERSION, ExportManifest, export_weights};
    use querylabel::head::{AttentionSelection, Query2LabelConfig};
    use querylabel::labels::LabelSpace;
    use querylabel::model::ClassifierConfig;
    use querylabel::preprocess::Preprocessing;

    /// A small random Query2Label model exported to bytes, as `trainer export` writes them.
    fn exported_model() -> (String, Vec<u8>) {
        let description = ModelDescription {
            classifier: ClassifierConfig::new(
                BackboneConfig::new(BackboneKind::EfficientNetLite0),
                HeadConfig::Query2Label(
                    Query2LabelConfig::new(80, 1280)
                        .with_hidden_dim(32)
                        .with_feedforward_dim(32),
                ),
            ),
            label_space: LabelSpace::coco80(),
            preprocessing: Preprocessing::imagenet(64),
            decision_threshold: Default::default(),
        };
        let device = Device::flex();
        let weights = export_weights(&description.classifier.init(&device)).unwrap();
        let manifest = ExportManifest {
            format_version: EXPORT_FORMAT_VERSION,
            weights: "model.safetensors".into(),
            weights_precision: "f16".into(),
            model: description,
        };
        (serde_json::to_string(&manifest).unwrap(), weights)
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([x as u8, y as u8, 128])
        }))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
        bytes
    }

    #[test]
    fn predicts_probabilities_and_attention_for_a_photo() {
        let (manifest, weights) = exported_model();
        let predictor = Predictor::from_export(&manifest, weights, &Device::flex()).unwrap();
        assert!(block_on(predictor.warm_up()) >= 0.0);
        let prediction = block_on(predictor.predict(&png(90, 50))).unwrap();
        assert_eq!(prediction.probabilities.len(), 80);
        assert!(
            prediction
                .probabilities
                .iter()
                .all(|p| (0.0..=1.0).contains(p))
        );
        // 64 px at stride 32: a 2×2 feature map, two decoder layers of four heads.
        assert_eq!(prediction.feature_size, [2, 2]);
        assert_eq!(prediction.cross_attention.len(), 2);
        let map = prediction
            .attention_map(5, AttentionSelection::default())
            .unwrap();
        assert_eq!(map.len(), 4);
        assert!((map.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn bad_input_is_an_error_that_says_why() {
        let (manifest, weights) = exported_model();
        let predictor = Predictor::from_export(&manifest, weights, &Device::flex()).unwrap();
        let error = block_on(predictor.predict(b"<html>not a photo</html>")).unwrap_err();
        assert!(
            error.to_string().contains("not a readable image"),
            "{error}"
        );
        let whole = png(40, 40);
        let error = block_on(predictor.predict(&whole[..whole.len() / 2])).unwrap_err();
        assert!(
            error.to_string().contains("not a readable image"),
            "{error}"
        );
        assert!(Predictor::from_export("{}", Vec::new(), &Device::flex()).is_err());
    }
}
