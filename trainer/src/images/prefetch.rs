//! Preparing the next batches on a background thread while the caller trains on the current one,
//! so the backend does not wait for image decoding.
//!
//! ```ignore
//! let batches = prefetch(plan.into_iter().map(move |requests| loader.load_batch(&requests, seed)), 1);
//! for batch in batches { /* train */ }
//! ```
//!
//! The work is whatever the wrapped iterator does in `next`; with [`ImageLoader::load_batch`]
//! that fans out over the rayon pool.
//!
//! [`ImageLoader::load_batch`]: super::loader::ImageLoader::load_batch

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// An iterator whose items are produced ahead of time on a background thread.
///
/// Dropping it stops production after the item in progress. A panic in the wrapped iterator is
/// re-raised in the consumer rather than ending the iteration early, so an epoch is never
/// silently cut short.
pub struct Prefetched<T> {
    items: Option<Receiver<T>>,
    producer: Option<JoinHandle<()>>,
}

/// Runs `source` on a background thread, keeping up to `ahead` items (at least one) ready or in
/// preparation beyond the one the caller holds. Items arrive in `source`'s order.
pub fn prefetch<T, I>(source: I, ahead: usize) -> Prefetched<T>
where
    T: Send + 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: Send + 'static,
{
    // A zero-capacity channel is a hand-over: one item in preparation, none waiting. Each extra
    // slot lets one more finished item wait.
    let (sender, receiver) = sync_channel(ahead.max(1) - 1);
    let source = source.into_iter();
    let producer = std::thread::Builder::new()
        .name("image-prefetch".into())
        .spawn(move || produce(source, sender))
        .expect("cannot start the image prefetch thread");
    Prefetched {
        items: Some(receiver),
        producer: Some(producer),
    }
}

fn produce<T>(source: impl Iterator<Item = T>, sender: SyncSender<T>) {
    for item in source {
        if sender.send(item).is_err() {
            // The consumer is gone.
            return;
        }
    }
}

impl<T> Iterator for Prefetched<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let item = self.items.as_ref()?.recv().ok();
        if item.is_none() {
            // The producer has finished or panicked; surface a panic here.
            self.items = None;
            if let Some(producer) = self.producer.take()
                && let Err(panic) = producer.join()
            {
                std::panic::resume_unwind(panic);
            }
        }
        item
    }
}

impl<T> Drop for Prefetched<T> {
    fn drop(&mut self) {
        // Closing the channel first makes the producer's next send fail, so it stops.
        self.items = None;
        if let Some(producer) = self.producer.take() {
            let _ = producer.join();
        }
    }
}
