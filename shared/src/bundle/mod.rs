//! The export format the trainer writes and the browser reads: one frozen backbone and any
//! number of named heads trained on it, so that a photo goes through the backbone once and the
//! backbone's weights are stored (and downloaded) once.
//!
//! On disk a bundle is a manifest ([`BundleManifest`], `model.json`) and a safetensors file of
//! half-precision or int8 weights: the backbone's tensors under `backbone.`, each head's under
//! `heads.<name>.`. A head may instead have a file of its own (its description's `weights`),
//! named the same way, so that the page downloads it only when a visitor asks for it. Everything here works on bytes already in memory, so the native trainer and
//! the wasm demo share it; reading and writing files is the caller's business.
//!
//! - [`description`]: what a bundle holds (backbone, input, labels, heads), validated by `init`;
//! - [`manifest`]: the manifest's JSON and its version;
//! - [`model`]: the network, running the backbone once for every head;
//! - [`weights`]: its tensors to and from the safetensors bytes;
//! - [`assemble`]: a bundle from separately trained models that share one backbone;
//! - [`error`]: why a bundle cannot be read or made.

pub mod assemble;
pub mod description;
pub mod error;
pub mod format_version;
pub mod manifest;
pub mod model;
pub mod weights;

#[cfg(test)]
pub(crate) mod fixtures;

pub use assemble::{BundlePart, assemble};
pub use description::{BundleDescription, HeadDescription, TrainingLabels};
pub use error::BundleError;
pub use format_version::BUNDLE_FORMAT_VERSION;
pub use manifest::{BundleManifest, WEIGHTS_PRECISION, parse_bundle_manifest};
pub use model::Bundle;
pub use weights::{bundle_weights, head_weights, load_bundle, load_head};
