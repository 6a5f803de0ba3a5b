//! querylabel: multi-label image classification on Burn.
//!
//! Query2Label heads and linear heads over CNN backbones, the single-positive-label losses of
//! "Multi-label learning from single positive labels" (AN, AN-LS, WAN, EPR, ROLE), the asymmetric
//! loss, multi-label metrics, label spaces, image preprocessing and the single-positive protocol.
//! This crate does no file or network I/O, so it compiles for native targets and for
//! `wasm32-unknown-unknown` alike.

pub mod backbone;
pub mod bundle;
pub mod damaged_jpeg;
pub mod export_tensors;
pub mod exported;
pub mod head;
pub mod int8_weights;
pub mod labels;
pub mod load_problems;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod pooling;
pub mod preprocess;
pub mod single_positive;
pub mod sorted_header;
pub mod weight_values;
