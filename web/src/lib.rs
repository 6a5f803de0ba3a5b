//! The browser demo of querylabel, compiled to wasm32: Query2Label inference on the visitor's
//! photo (WebGPU through Burn's wgpu backend, or Burn's CPU backend where the browser has no
//! adapter) and the single-positive lesson's live training.
//!
//! Everything but [`bindings`] is plain Rust that also compiles natively, where `cargo test`
//! checks it on the CPU backend; `bindings` is the JavaScript-facing surface.

pub mod clock;
pub mod lesson;
pub mod prediction;
pub mod predictor;
pub mod read_back;

#[cfg(target_arch = "wasm32")]
pub mod bindings;
