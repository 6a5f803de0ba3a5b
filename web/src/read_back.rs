//! Reading tensors back to the host. A WebGPU buffer can only be mapped asynchronously, so the
//! browser must await; the same call works on every backend.

use burn::tensor::Tensor;

/// The values of `tensor`, row-major, as `f32`.
pub async fn read_back<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data_async()
        .await
        .expect("a tensor on a live device can be read back")
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("converted to f32")
}

/// Runs a future that never waits on anything outside this thread, as every CPU-backend
/// future does: for native tests, where there is no browser event loop.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
        std::thread::yield_now();
    }
}
