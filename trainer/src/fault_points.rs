//! Named moments at which a test can kill the trainer for certain: with
//! `QUERYLABEL_PAUSE_AT=NAME:N` the process stops at the N-th time it reaches the point NAME
//! (1-based), says so on stderr, and waits to be killed. The crash test
//! (`trainer/tests/kill_and_resume.rs`) kills it there with SIGKILL and resumes. Without the
//! variable a point costs one comparison.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable that names the point and its occurrence.
pub const PAUSE_AT: &str = "QUERYLABEL_PAUSE_AT";

/// What stderr says when a point pauses the process.
pub const PAUSED: &str = "paused at fault point";

fn asked() -> Option<&'static (String, usize)> {
    static ASKED: OnceLock<Option<(String, usize)>> = OnceLock::new();
    ASKED
        .get_or_init(|| {
            let value = std::env::var(PAUSE_AT).ok()?;
            let (name, count) = value.rsplit_once(':').unwrap_or((&value, "1"));
            Some((name.to_string(), count.parse().ok()?))
        })
        .as_ref()
}

/// Pauses for good when this is the asked occurrence of `point`.
pub fn pause_if_asked(point: &str) {
    static REACHED: AtomicUsize = AtomicUsize::new(0);
    let Some((name, count)) = asked() else {
        return;
    };
    if name != point {
        return;
    }
    if REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *count {
        eprintln!("{PAUSED} {point}:{count}");
        loop {
            std::thread::park();
        }
    }
}
