//! The JavaScript-facing surface of the demo (wasm only). In the inference worker
//! (www/js/inference-worker.js): start a backend, load the bundle's main file and further heads,
//! predict a photo with the heads chosen. On the page: read the manifest, rebuild a prediction
//! from the worker's numbers and draw its attention maps, compute the lesson's per-loss targets
//! and train its heads.
//! The page (www/js/app.js, www/js/lesson.js) owns the DOM; this module owns every number.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use burn::tensor::wgpu::WgpuInitError;
use js_sys::Promise;
use querylabel::bundle::{BundleDescription, HeadDescription, parse_bundle_manifest};
use querylabel::head::AttentionSelection;
use querylabel::labels::display_label;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::lesson::features::LessonData;
use crate::lesson::linear_run::{LESSON_EPOCHS, RunSettings};
use crate::lesson::photo_targets::{PhotoTargets, TARGET_LOSSES, photo_targets};
use crate::lesson::{LESSON_LOSSES, Lesson, validation_maps};
use crate::prediction::{PhotoPredictions, Prediction};
use crate::predictor::{Predictor, attention_shape};

/// Reports Rust panics on the console instead of an opaque `unreachable` trap.
#[wasm_bindgen(start)]
pub fn install_panic_report() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("querylabel panicked: {info}").into());
    }));
}

/// The device every model and lesson of the page runs on.
#[wasm_bindgen]
pub struct Engine {
    device: Device,
    gpu: bool,
    fallback_reason: String,
}

/// Starts WebGPU when `try_gpu` and the browser has an adapter; otherwise Burn's CPU backend,
/// with the reason in `fallbackReason`.
#[wasm_bindgen(js_name = startEngine)]
pub async fn start_engine(try_gpu: bool) -> Engine {
    if !try_gpu {
        return Engine::cpu("the CPU backend was asked for".into());
    }
    match Device::wgpu_options().init_async().await {
        Ok(device) => Engine {
            device,
            gpu: true,
            fallback_reason: String::new(),
        },
        Err(error) => {
            web_sys::console::info_1(&format!("WebGPU did not start: {error}").into());
            Engine::cpu(match error {
                WgpuInitError::AdapterUnavailable { .. } => {
                    "this browser offers no WebGPU adapter".into()
                }
                other => format!("WebGPU did not start ({other})"),
            })
        }
    }
}

#[wasm_bindgen]
impl Engine {
    fn cpu(fallback_reason: String) -> Self {
        Engine {
            device: Device::flex(),
            gpu: false,
            fallback_reason,
        }
    }

    /// Whether inference and training run on WebGPU.
    #[wasm_bindgen(getter)]
    pub fn gpu(&self) -> bool {
        self.gpu
    }

    /// `"WebGPU"` or `"CPU (wasm)"`.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        if self.gpu { "WebGPU" } else { "CPU (wasm)" }.into()
    }

    /// Why WebGPU is not used (empty when it is).
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> String {
        self.fallback_reason.clone()
    }

    /// Loads an exported bundle: its `model.json` text and main weights file's bytes (the
    /// backbone and the heads without a file of their own).
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&self, manifest_json: &str, weights: Vec<u8>) -> Result<Model, JsError> {
        let predictor = Predictor::from_export(manifest_json, weights, &self.device)
            .map_err(|e| JsError::new(&format!("cannot load the models: {e}")))?;
        Ok(Model {
            predictor: Rc::new(RefCell::new(predictor)),
        })
    }

    /// Starts the lesson's side-by-side training on the shipped features file.
    #[wasm_bindgen(js_name = startLesson)]
    pub fn start_lesson(&self, features: &[u8], seed: u32) -> Result<LessonRuns, JsError> {
        let data = LessonData::from_safetensors(features)
            .map_err(|e| JsError::new(&format!("cannot read the lesson's features: {e}")))?;
        let settings = RunSettings {
            seed: seed.into(),
            ..RunSettings::default()
        };
        let lesson = Lesson::new(data, &LESSON_LOSSES, settings, &self.device);
        Ok(LessonRuns {
            lesson: Rc::new(RefCell::new(lesson)),
        })
    }
}

/// What a bundle's `model.json` says, for the page: the labels, and every head, whether its
/// weights are loaded or not (addressed by index, in the manifest's order). Reading it needs
/// no device, so the page knows the heads while the inference worker loads them.
#[wasm_bindgen]
pub struct BundleInfo {
    description: BundleDescription,
    weights: String,
}

/// Parses and validates a bundle's `model.json` text.
#[wasm_bindgen(js_name = describeBundle)]
pub fn describe_bundle(manifest_json: &str) -> Result<BundleInfo, JsError> {
    let manifest = parse_bundle_manifest(manifest_json)
        .map_err(|e| JsError::new(&format!("cannot read the models' manifest: {e}")))?;
    Ok(BundleInfo {
        description: manifest.model,
        weights: manifest.weights,
    })
}

impl BundleInfo {
    fn head(&self, head: usize) -> Result<&HeadDescription, JsError> {
        self.description
            .heads
            .get(head)
            .ok_or_else(|| JsError::new(&format!("no head {head}")))
    }
}

#[wasm_bindgen]
impl BundleInfo {
    /// Class names in output order, for people (`traffic light`).
    #[wasm_bindgen(getter, js_name = labelNames)]
    pub fn label_names(&self) -> Vec<String> {
        let space = &self.description.label_space;
        (0..space.n_classes())
            .map(|i| space.display_name(i).unwrap_or_default())
            .collect()
    }

    /// The output index of the class named `name` (words joined by `_` or spaces, any case),
    /// or `undefined` when the bundle has no such class.
    #[wasm_bindgen(js_name = labelIndex)]
    pub fn label_index(&self, name: &str) -> Option<usize> {
        self.description.label_space.index_of(name)
    }

    /// Every head's name, in the manifest's order (`full`, `wan`, …).
    #[wasm_bindgen(getter, js_name = headNames)]
    pub fn head_names(&self) -> Vec<String> {
        self.description.head_names()
    }

    /// The main weights file, beside `model.json`: the backbone and the heads loaded first.
    #[wasm_bindgen(getter, js_name = weightsFile)]
    pub fn weights_file(&self) -> String {
        self.weights.clone()
    }

    /// The file of head `head`'s own weights, downloaded when a visitor asks for the head;
    /// `undefined` for a head in the main weights file.
    #[wasm_bindgen(js_name = headFile)]
    pub fn head_file(&self, head: usize) -> Result<Option<String>, JsError> {
        Ok(self.head(head)?.weights.clone())
    }

    /// Head `head`'s description for people ("Trained with all labels, ASL loss").
    #[wasm_bindgen(js_name = headDescription)]
    pub fn head_description(&self, head: usize) -> Result<String, JsError> {
        Ok(self.head(head)?.description.clone())
    }

    /// `"full"` or `"single-positive"`: the labels head `head` was trained with (`""` when
    /// unknown).
    #[wasm_bindgen(js_name = headLabels)]
    pub fn head_labels(&self, head: usize) -> Result<String, JsError> {
        Ok(self.head(head)?.labels.map_or("", |l| l.name()).into())
    }

    /// Head `head`'s decision threshold: labels with a probability at or above it are its
    /// prediction (0.5 for a head that records none).
    #[wasm_bindgen(js_name = decisionThreshold)]
    pub fn decision_threshold(&self, head: usize) -> Result<f32, JsError> {
        Ok(self.head(head)?.decision_threshold.value)
    }

    /// How head `head`'s decision threshold was chosen, for people (`"default"` when it was
    /// not).
    #[wasm_bindgen(js_name = thresholdRule)]
    pub fn threshold_rule(&self, head: usize) -> Result<String, JsError> {
        Ok(self.head(head)?.decision_threshold.rule.clone())
    }

    /// Mean wrong labels per photo at head `head`'s threshold on the validation split it was
    /// chosen on; `undefined` when it was not chosen on one.
    #[wasm_bindgen(js_name = thresholdWrongLabelsPerPhoto)]
    pub fn threshold_wrong_labels_per_photo(&self, head: usize) -> Result<Option<f64>, JsError> {
        Ok(self
            .head(head)?
            .decision_threshold
            .validation
            .map(|v| v.false_positives_per_image))
    }

    /// Decoder layers of head `head` with attention (0: no attention maps).
    #[wasm_bindgen(js_name = attentionLayers)]
    pub fn attention_layers(&self, head: usize) -> Result<usize, JsError> {
        Ok(attention_shape(&self.head(head)?.head).0)
    }

    /// Attention heads per layer of head `head`.
    #[wasm_bindgen(js_name = attentionHeads)]
    pub fn attention_heads(&self, head: usize) -> Result<usize, JsError> {
        Ok(attention_shape(&self.head(head)?.head).1)
    }

    /// Input side in pixels.
    #[wasm_bindgen(getter, js_name = inputSize)]
    pub fn input_size(&self) -> usize {
        self.description.preprocessing.height
    }
}

/// The loaded bundle, in the inference worker: the backbone, and the heads loaded so far,
/// addressed by name.
#[wasm_bindgen]
pub struct Model {
    predictor: Rc<RefCell<Predictor>>,
}

/// The page serialises its calls to a model (a prediction awaits its read-back): a call that
/// overlaps another is refused, never a panic.
fn busy() -> JsError {
    JsError::new("the models are busy with another call")
}

#[wasm_bindgen]
impl Model {
    /// The loaded heads' names, in the order they were loaded.
    #[wasm_bindgen(getter, js_name = loadedHeads)]
    pub fn loaded_heads(&self) -> Result<Vec<String>, JsError> {
        let predictor = self.predictor.try_borrow().map_err(|_| busy())?;
        Ok(predictor.description().head_names())
    }

    /// Loads head `name` from its own weights file's bytes (nothing happens for a loaded head).
    #[wasm_bindgen(js_name = addHead)]
    pub fn add_head(&self, name: &str, weights: Vec<u8>) -> Result<(), JsError> {
        let mut predictor = self.predictor.try_borrow_mut().map_err(|_| busy())?;
        predictor
            .add_head(name, weights)
            .map_err(|e| JsError::new(&format!("cannot load the {name} head: {e}")))
    }

    /// One run of the backbone and every loaded head on a blank input; resolves to its
    /// milliseconds.
    // The shared borrow lasts until the read-back: an `addHead` meanwhile is refused by its
    // `try_borrow_mut` (see `busy`), never a panic.
    #[allow(clippy::await_holding_refcell_ref)]
    #[wasm_bindgen(js_name = warmUp)]
    pub fn warm_up(&self) -> Promise {
        let predictor = self.predictor.clone();
        future_to_promise(async move {
            let predictor = predictor.try_borrow().map_err(|_| busy())?;
            Ok(predictor.warm_up().await.into())
        })
    }

    /// Predicts an encoded photo with the loaded heads named in `heads`, in that order (the
    /// backbone runs once, or on the photo and its mirror image with `mirror_too`); resolves to
    /// a [`PhotoPrediction`], or rejects with a message that says what is wrong with the file.
    #[allow(clippy::await_holding_refcell_ref)] // as in `warm_up`
    pub fn predict(&self, encoded: Vec<u8>, mirror_too: bool, heads: Vec<String>) -> Promise {
        let predictor = self.predictor.clone();
        future_to_promise(async move {
            let predictor = predictor.try_borrow().map_err(|_| busy())?;
            let mut positions = Vec::with_capacity(heads.len());
            for name in &heads {
                let position = predictor
                    .head_position(name)
                    .ok_or_else(|| JsError::new(&format!("the {name} head is not loaded")))?;
                positions.push(position);
            }
            match predictor.predict(&encoded, mirror_too, &positions).await {
                Ok(predictions) => Ok(PhotoPrediction { predictions }.into()),
                Err(error) => Err(JsError::new(&error.to_string()).into()),
            }
        })
    }
}

/// One photo's prediction by several heads, addressed by position: made by [`Model::predict`]
/// in the worker, and built again from its numbers on the page, which draws the maps.
#[wasm_bindgen]
pub struct PhotoPrediction {
    predictions: PhotoPredictions,
}

impl PhotoPrediction {
    fn head(&self, head: usize) -> Result<&Prediction, JsError> {
        self.predictions
            .heads
            .get(head)
            .ok_or_else(|| JsError::new(&format!("no head {head}")))
    }
}

#[wasm_bindgen]
impl PhotoPrediction {
    /// An empty prediction taking `milliseconds`, to fill with [`Self::add_head`].
    #[wasm_bindgen(constructor)]
    pub fn new(milliseconds: f64) -> PhotoPrediction {
        PhotoPrediction {
            predictions: PhotoPredictions {
                heads: Vec::new(),
                milliseconds,
            },
        }
    }

    /// Appends a head's results: its probabilities, its cross-attention (every decoder layer's
    /// `[heads, labels, height · width]` one after another; empty for a linear head), its
    /// attention heads per layer and its feature map's `height` and `width`.
    #[wasm_bindgen(js_name = addHead)]
    pub fn add_head(
        &mut self,
        probabilities: Vec<f32>,
        cross_attention: Vec<f32>,
        attention_heads: usize,
        height: usize,
        width: usize,
    ) -> Result<(), JsError> {
        let per_layer = attention_heads * probabilities.len() * height * width;
        if per_layer == 0 && !cross_attention.is_empty()
            || per_layer > 0 && !cross_attention.len().is_multiple_of(per_layer)
        {
            return Err(JsError::new(&format!(
                "{} attention values do not split into layers of {per_layer}",
                cross_attention.len()
            )));
        }
        let cross_attention = if per_layer == 0 {
            Vec::new()
        } else {
            cross_attention
                .chunks(per_layer)
                .map(<[f32]>::to_vec)
                .collect()
        };
        self.predictions.heads.push(Prediction {
            probabilities,
            cross_attention,
            heads: attention_heads,
            feature_size: [height, width],
        });
        Ok(())
    }

    /// Head `head`'s probability per label, in the label order.
    pub fn probabilities(&self, head: usize) -> Result<Vec<f32>, JsError> {
        Ok(self.head(head)?.probabilities.clone())
    }

    /// Head `head`'s cross-attention, every decoder layer's one after another (see
    /// [`Self::add_head`]).
    #[wasm_bindgen(js_name = crossAttention)]
    pub fn cross_attention(&self, head: usize) -> Result<Vec<f32>, JsError> {
        Ok(self.head(head)?.cross_attention.concat())
    }

    /// Head `head`'s attention heads per decoder layer.
    #[wasm_bindgen(js_name = attentionHeads)]
    pub fn attention_heads(&self, head: usize) -> Result<usize, JsError> {
        Ok(self.head(head)?.heads)
    }

    /// Milliseconds from preprocessing to every head's results read back.
    #[wasm_bindgen(getter)]
    pub fn milliseconds(&self) -> f64 {
        self.predictions.milliseconds
    }

    /// Feature map height and width (the attention maps' grid), the same for every head.
    #[wasm_bindgen(getter, js_name = mapHeight)]
    pub fn map_height(&self) -> usize {
        self.predictions
            .heads
            .first()
            .map_or(0, |p| p.feature_size[0])
    }

    #[wasm_bindgen(getter, js_name = mapWidth)]
    pub fn map_width(&self) -> usize {
        self.predictions
            .heads
            .first()
            .map_or(0, |p| p.feature_size[1])
    }

    /// Head `head`'s attention map of `label` (row-major, sums to 1). `layer` and
    /// `attention_head` select one decoder layer or attention head; a negative value means the
    /// mean over all of them. Empty when there is no such map.
    #[wasm_bindgen(js_name = attentionMap)]
    pub fn attention_map(
        &self,
        head: usize,
        label: usize,
        layer: i32,
        attention_head: i32,
    ) -> Result<Vec<f32>, JsError> {
        let selection = AttentionSelection {
            layer: usize::try_from(layer).ok(),
            head: usize::try_from(attention_head).ok(),
        };
        Ok(self
            .head(head)?
            .attention_map(label, selection)
            .unwrap_or_default())
    }
}

/// How many epochs the lesson's live runs last: the length of the schedules of the losses that
/// follow one, such as GR's.
#[wasm_bindgen(js_name = lessonEpochs)]
pub fn lesson_epochs() -> usize {
    LESSON_EPOCHS
}

/// A class name as people read it (`dining_table` → `dining table`), as the models show it.
#[wasm_bindgen(js_name = displayLabel)]
pub fn display_label_for_people(name: &str) -> String {
    display_label(name)
}

/// The losses the lesson's targets table shows, by name, in its column order.
#[wasm_bindgen(js_name = targetLosses)]
pub fn target_losses() -> Vec<String> {
    TARGET_LOSSES.iter().map(|l| l.name().to_string()).collect()
}

/// Every loss's target and weight for each label of one photo (see [`photo_targets`]).
#[wasm_bindgen]
pub struct LossTargets(PhotoTargets);

#[wasm_bindgen]
impl LossTargets {
    /// The probability loss `loss` (its [`target_losses`] index) pulls label `label` towards;
    /// `undefined` where the loss ignores it.
    pub fn target(&self, loss: usize, label: usize) -> Option<f32> {
        self.0.entry(loss, label).and_then(|entry| entry.target)
    }

    /// How strongly, relative to a plain cross-entropy term (1).
    pub fn weight(&self, loss: usize, label: usize) -> f32 {
        self.0.entry(loss, label).map_or(0.0, |entry| entry.weight)
    }
}

/// The targets for a photo with full labels `labels` (0/1 per class) of which only `kept`
/// stays observed, read at `classifier_probabilities`, the single-positive head's prediction.
#[wasm_bindgen(js_name = lossTargets)]
pub fn loss_targets_for_photo(
    labels: Vec<f32>,
    kept: usize,
    classifier_probabilities: Vec<f32>,
) -> Result<LossTargets, JsError> {
    photo_targets(&labels, kept, &classifier_probabilities)
        .map(LossTargets)
        .map_err(|why| JsError::new(&why))
}

/// The lesson's runs, trained a few steps at a time between frames.
#[wasm_bindgen]
pub struct LessonRuns {
    lesson: Rc<RefCell<Lesson>>,
}

#[wasm_bindgen]
impl LessonRuns {
    /// Loss names of the runs, in order.
    #[wasm_bindgen(getter)]
    pub fn losses(&self) -> Vec<String> {
        self.lesson
            .borrow()
            .losses()
            .iter()
            .map(|l| l.name().to_string())
            .collect()
    }

    /// Passes over the training features so far.
    #[wasm_bindgen(getter)]
    pub fn epochs(&self) -> f64 {
        self.lesson.borrow().epochs()
    }

    /// Images in the training part.
    #[wasm_bindgen(getter, js_name = trainImages)]
    pub fn train_images(&self) -> usize {
        self.lesson.borrow().train_images()
    }

    /// Images per training step.
    #[wasm_bindgen(getter, js_name = batchSize)]
    pub fn batch_size(&self) -> usize {
        self.lesson.borrow().batch_size()
    }

    /// `steps` optimisation steps of every run (queued on the device).
    pub fn train(&self, steps: usize) {
        self.lesson.borrow_mut().train(steps);
    }

    /// Resolves to every run's validation mAP (percent), in order.
    pub fn validate(&self) -> Promise {
        let lesson = self.lesson.clone();
        future_to_promise(async move {
            // No borrow is held across the wait, so training may be queued meanwhile.
            let scores = lesson.borrow().validation_scores();
            let (labels, classes) = {
                let borrowed = lesson.borrow();
                let data = borrowed.device_data();
                (data.validation_labels.clone(), data.classes)
            };
            let maps = validation_maps(scores, &labels, classes).await;
            Ok(js_sys::Float64Array::from(maps.as_slice()).into())
        })
    }
}
