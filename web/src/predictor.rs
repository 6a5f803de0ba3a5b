//! A loaded bundle ready to predict: decodes the visitor's bytes with the shared decoder (size
//! limits, truncated-JPEG refusal), preprocesses exactly as the trainer does, runs the backbone
//! once and the chosen heads on its feature map on the page's device, and reads the results
//! back. The heads of the bundle's main file load with it; a head in a file of its own is added
//! when the visitor asks for it.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use querylabel::bundle::{
    Bundle, BundleDescription, BundleError, load_bundle, load_head, parse_bundle_manifest,
};
use querylabel::model::HeadConfig;
use querylabel::preprocess::{ImageError, decode_image};

use crate::clock::now_ms;
use crate::prediction::{PhotoPredictions, Prediction};
use crate::read_back::read_back;

/// The decoder layers and attention heads per layer whose maps a head can show: `(0, 0)` for
/// a head without per-label attention.
pub fn attention_shape(head: &HeadConfig) -> (usize, usize) {
    match head {
        HeadConfig::Query2Label(config) => (config.decoder_layers, config.heads),
        _ => (0, 0),
    }
}

/// An exported bundle on a device.
pub struct Predictor {
    bundle: Bundle,
    /// The loaded heads, in `bundle`'s order.
    description: BundleDescription,
    /// Every head of the bundle, loaded or not.
    manifest: BundleDescription,
    device: Device,
}

impl Predictor {
    /// Loads a bundle from its `model.json` text and main weights file's bytes onto `device`:
    /// the backbone and the heads of that file.
    pub fn from_export(
        manifest_json: &str,
        weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self, BundleError> {
        let manifest = parse_bundle_manifest(manifest_json)?;
        let description = manifest.model.in_main_file();
        // Never saved again, so the backbone's batch norms fold into its convolutions.
        let bundle = load_bundle(&description, weights, Vec::new(), device)?.fold_batch_norms();
        Ok(Predictor {
            bundle,
            description,
            manifest: manifest.model,
            device: device.clone(),
        })
    }

    /// Adds the head `name`, whose weights are a file of its own (`weights`, its bytes), after
    /// the loaded ones. Adding a loaded head again changes nothing.
    pub fn add_head(&mut self, name: &str, weights: Vec<u8>) -> Result<(), BundleError> {
        if self.head_position(name).is_some() {
            return Ok(());
        }
        let head = &self.manifest.heads[self.manifest.head_index(name)?];
        self.bundle
            .heads
            .push(load_head(head, weights, &self.device)?);
        self.description.heads.push(head.clone());
        Ok(())
    }

    /// Classes, input size, backbone and the loaded heads, in the order [`Self::predict`]
    /// addresses them.
    pub fn description(&self) -> &BundleDescription {
        &self.description
    }

    /// The position of the loaded head `name`.
    pub fn head_position(&self, name: &str) -> Option<usize> {
        self.description.heads.iter().position(|h| h.name == name)
    }

    /// Attention heads per decoder layer of loaded head `head`, or 0 for a head without
    /// per-label attention (or no such head).
    pub fn attention_heads(&self, head: usize) -> usize {
        self.description
            .heads
            .get(head)
            .map_or(0, |h| attention_shape(&h.head).1)
    }

    /// Decoder layers of loaded head `head` whose attention can be shown (0 for a linear head).
    pub fn attention_layers(&self, head: usize) -> usize {
        self.description
            .heads
            .get(head)
            .map_or(0, |h| attention_shape(&h.head).0)
    }

    /// Predicts the labels of an encoded photo (JPEG, PNG, …) with the loaded heads at positions
    /// `heads`, in that order. With `mirror_too`, each head's probabilities are the mean over
    /// the photo and its mirror image (`trainer predict --tta-flip`: one batch of two, so about
    /// twice the time), and the attention drawn stays the photo's own.
    ///
    /// # Panics
    /// If a position is not a loaded head's.
    pub async fn predict(
        &self,
        encoded: &[u8],
        mirror_too: bool,
        heads: &[usize],
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
        Ok(self.predict_input(input, heads, start).await)
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
        let all: Vec<usize> = (0..self.bundle.heads.len()).collect();
        self.predict_input(input, &all, start).await.milliseconds
    }

    /// The results of the heads at positions `heads` for `input`, one photo or a photo and its
    /// mirror image: the probabilities are the mean over the batch, the attention the first
    /// image's.
    async fn predict_input(
        &self,
        input: Tensor<4>,
        heads: &[usize],
        start: f64,
    ) -> PhotoPredictions {
        let outputs = self.bundle.forward_heads(input, heads);
        let chosen = heads;
        let mut heads = Vec::with_capacity(outputs.len());
        for (&index, output) in chosen.iter().zip(outputs) {
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
    use querylabel::bundle::{BundleManifest, HeadDescription, bundle_weights, head_weights};
    use querylabel::head::{AttentionSelection, LinearHeadConfig, Query2LabelConfig};
    use querylabel::labels::LabelSpace;
    use querylabel::preprocess::Preprocessing;

    /// A small random bundle, a Query2Label and a linear head, exported to bytes as
    /// `trainer export` writes them.
    fn exported_bundle() -> (String, Vec<u8>) {
        let (manifest, weights, _) = exported_with_on_demand(false);
        (manifest, weights)
    }

    /// [`exported_bundle`], with the linear head "wan" in a file of its own when `on_demand`
    /// (its bytes third).
    fn exported_with_on_demand(on_demand: bool) -> (String, Vec<u8>, Vec<u8>) {
        let head = |name: &str, head: HeadConfig| HeadDescription {
            name: name.into(),
            description: String::new(),
            labels: None,
            loss: None,
            head,
            decision_threshold: Default::default(),
            weights: None,
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
        let mut description = description;
        if on_demand {
            description.heads[1].weights = Some("head-wan.safetensors".into());
        }
        let device = Device::flex();
        let bundle = description.init(&device).unwrap();
        let weights = bundle_weights(&bundle, &description).unwrap();
        let head = if on_demand {
            head_weights(&bundle, &description, 1).unwrap()
        } else {
            Vec::new()
        };
        let manifest = BundleManifest::new(description, "model.safetensors");
        (serde_json::to_string(&manifest).unwrap(), weights, head)
    }

    #[test]
    fn a_head_in_its_own_file_is_added_when_asked_for_and_heads_run_as_chosen() {
        let (manifest, weights, wan) = exported_with_on_demand(true);
        let mut predictor = Predictor::from_export(&manifest, weights, &Device::flex()).unwrap();
        assert_eq!(predictor.description().head_names(), ["full"]);
        assert_eq!(predictor.head_position("wan"), None);
        let error = predictor.add_head("role", wan.clone()).unwrap_err();
        assert!(matches!(error, BundleError::UnknownHead { .. }), "{error}");
        predictor.add_head("wan", wan.clone()).unwrap();
        predictor.add_head("wan", wan).unwrap();
        assert_eq!(predictor.description().head_names(), ["full", "wan"]);
        assert_eq!(predictor.head_position("wan"), Some(1));
        // The heads asked for, in the order asked: the linear head first.
        let photo = png(90, 50);
        let both = block_on(predictor.predict(&photo, false, &[1, 0])).unwrap();
        assert_eq!(both.heads.len(), 2);
        assert!(both.heads[0].cross_attention.is_empty());
        assert_eq!(both.heads[1].cross_attention.len(), 2);
        let alone = block_on(predictor.predict(&photo, false, &[0])).unwrap();
        assert_eq!(alone.heads.len(), 1);
        assert_eq!(alone.heads[0].probabilities, both.heads[1].probabilities);
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
        let prediction = block_on(predictor.predict(&png(90, 50), false, &[0, 1])).unwrap();
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
        let heads: Vec<usize> = (0..predictor.description().heads.len()).collect();
        let plain = block_on(predictor.predict(&photo, false, &heads)).unwrap();
        let mirror = block_on(predictor.predict(&mirrored(&photo), false, &heads)).unwrap();
        let both = block_on(predictor.predict(&photo, true, &heads)).unwrap();
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
        let error =
            block_on(predictor.predict(b"<html>not a photo</html>", false, &[0])).unwrap_err();
        assert!(
            error.to_string().contains("not a readable image"),
            "{error}"
        );
        let whole = png(40, 40);
        let error = block_on(predictor.predict(&whole[..whole.len() / 2], true, &[0])).unwrap_err();
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
