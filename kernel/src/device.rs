//! Which device a kernel runs on, and what the host asked for.

use std::sync::atomic::{AtomicBool, Ordering};

static CPU_FORCED: AtomicBool = AtomicBool::new(false);

/// Makes kernels initialised after this call use the CPU even when an accelerator is present, so
/// the host can measure the CPU path of an accelerated build (`wpi_force_cpu`).
pub fn force_cpu() {
    CPU_FORCED.store(true, Ordering::Relaxed);
}

pub fn cpu_forced() -> bool {
    CPU_FORCED.load(Ordering::Relaxed)
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
