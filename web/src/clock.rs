//! Milliseconds for timing predictions: `performance.now()` in the browser (where
//! `std::time::Instant` panics), a monotonic clock natively.

/// Milliseconds since an arbitrary fixed start: the page's or the inference worker's clock.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    use wasm_bindgen::JsCast;
    let global = js_sys::global();
    let performance = match global.dyn_ref::<web_sys::Window>() {
        Some(window) => window.performance(),
        None => global
            .dyn_ref::<web_sys::WorkerGlobalScope>()
            .and_then(|worker| worker.performance()),
    };
    performance.map_or_else(js_sys::Date::now, |performance| performance.now())
}

/// Milliseconds since an arbitrary fixed start.
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}
