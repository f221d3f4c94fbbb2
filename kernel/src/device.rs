//! Which device a kernel runs on, and what the host asked for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static CPU_FORCED: AtomicBool = AtomicBool::new(false);
/// 0: every core.
static THREAD_LIMIT: AtomicUsize = AtomicUsize::new(0);

/// Makes kernels initialised after this call use the CPU even when an accelerator is present, so
/// the host can measure the CPU path of an accelerated build (`wpi_force_cpu`).
pub fn force_cpu() {
    CPU_FORCED.store(true, Ordering::Relaxed);
}

pub fn cpu_forced() -> bool {
    CPU_FORCED.load(Ordering::Relaxed)
}

/// Caps the CPU threads later `infer` calls may use (`wpi_set_threads`; 0 lifts the cap) and
/// returns the cap now in effect.
pub fn limit_threads(limit: usize) -> usize {
    THREAD_LIMIT.store(limit, Ordering::Relaxed);
    max_threads()
}

/// How many CPU threads a call may use: every core unless the host set a cap; one in WASM.
pub fn max_threads() -> usize {
    if cfg!(target_arch = "wasm32") {
        return 1;
    }
    let cores = cores();
    match THREAD_LIMIT.load(Ordering::Relaxed) {
        0 => cores,
        limit => limit.min(cores),
    }
}

/// The cores this process may run on. Not rayon's pool size: asking for that starts the pool,
/// which a kernel that never splits a call should not pay for (about 150 µs on its first call).
#[cfg(not(target_arch = "wasm32"))]
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(target_arch = "wasm32")]
fn cores() -> usize {
    1
}

/// Where the last `infer` call spent its time on an accelerator, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallBreakdown {
    /// Host → device copy of the input.
    pub upload_ns: u64,
    /// Kernels, from the input being on the device to the output being ready there.
    pub compute_ns: u64,
    /// Device → host copy of the output.
    pub download_ns: u64,
}

impl CallBreakdown {
    pub fn to_array(self) -> [u64; 3] {
        [self.upload_ns, self.compute_ns, self.download_ns]
    }
}

/// The description of a CPU run, with the reason an accelerator was not used when there is one.
pub fn cpu_description(reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("cpu ({reason})"),
        None => "cpu".into(),
    }
}
