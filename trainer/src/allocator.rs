//! The C allocator's settings for a trainer process: freed tensor buffers stay in the process
//! for the next operation, instead of going back to the kernel.
//!
//! Burn's CPU backend allocates a new buffer for nearly every operation's output. glibc serves a
//! large request with `mmap` and unmaps it on `free`, so every step's activations came back as
//! fresh pages, each faulted in and zeroed by the kernel: 219,000 page faults in
//! `trainer bench --work extract` (Lite0, 224 px). With the mmap threshold at glibc's largest
//! value (32 MiB) and freed memory kept at the top of the heap, the same run took 114,000 faults
//! and 22% less CPU time. The cost: a process keeps its peak memory until it exits, which a
//! training or extraction run reaches in its first steps anyway.

/// Keeps buffers up to 32 MiB in the heap and freed memory in the process. Call it first thing
/// in `main`, before other threads allocate. Nothing to do on other C libraries.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const LARGEST_HEAP_REQUEST: libc::c_int = 32 << 20;
        const KEEP_FREED: libc::c_int = 1 << 30;
        // SAFETY: mallopt only changes two of glibc's thresholds; it is called before any
        // thread but the main one exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGEST_HEAP_REQUEST);
            libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREED);
        }
    }
}
