//! Kernel ABI v1 for `cargo wasmpack-infer`.
//!
//! A kernel implements [`Kernel`] and calls [`export_kernel!`], which generates the C-ABI exports
//! the tool loads on wasm32 (wasmtime, browsers) and natively (a host `cdylib` via `dlopen`):
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `wpi_abi_version` | `() -> u32` | always [`ABI_VERSION`] |
//! | `wpi_alloc` | `(len: usize) -> *mut u8` | a buffer the host fills with input or reads output from |
//! | `wpi_free` | `(ptr: *mut u8, len: usize)` | releases a `wpi_alloc` buffer |
//! | `wpi_init` | `() -> i32` | builds the model once; 0 = ok |
//! | `wpi_infer` | `(input, input_len, output, output_cap) -> isize` | bytes written, or an `ERR_*` code |
//!
//! Native builds also export five optional functions the tool uses when present:
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | `wpi_device_info` | `(buf, cap) -> isize` | UTF-8 description of the device, e.g. `cuda:NVIDIA H100 80GB HBM3 (sm_90, driver 13.0)` or `cpu (cuda unavailable: libcuda.so not found on the dynamic loader path)`; returns its full length (writing at most `cap` bytes) or `ERR_INIT` |
//! | `wpi_force_cpu` | `() -> i32` | the model built by the next `wpi_init` runs on the CPU; 1 if a model already exists (it keeps its device) |
//! | `wpi_last_call_ns` | `(out: *mut u64, cap) -> isize` | upload, compute and download nanoseconds of the last `wpi_infer` on an accelerator; returns how many it wrote, 0 after a CPU call |
//! | `wpi_set_threads` | `(limit: u32) -> u32` | caps the CPU threads of later calls (0 lifts the cap); returns the cap in effect |
//! | `wpi_last_call_threads` | `() -> u32` | CPU threads the last `wpi_infer` ran on (0 before any call) |
//!
//! Samples are little-endian `f32` arrays of [`Kernel::INPUT_LEN`] elements; a call carries a batch
//! of whole samples and writes [`Kernel::OUTPUT_LEN`] elements per sample.
//! Kernels may also write these exports by hand; the tool only relies on the ABI.

pub mod alloc;
pub mod conv;
pub mod cpu;
#[cfg(all(feature = "cuda", not(target_arch = "wasm32")))]
mod cuda;
pub mod device;
pub mod gemm;
pub mod mlp;
pub mod randomness;

/// The ABI version `wpi_abi_version` returns.
pub const ABI_VERSION: u32 = 1;
/// `input_len` is not a whole number of samples.
pub const ERR_INPUT_LEN: isize = -1;
/// `output_cap` is smaller than the batch's output.
pub const ERR_OUTPUT_CAP: isize = -2;
/// `wpi_init` failed, so there is no model to run.
pub const ERR_INIT: isize = -3;
/// A null pointer was passed with a non-zero length.
pub const ERR_NULL: isize = -4;

/// An inference kernel over batches of `f32` samples.
pub trait Kernel: Sized + Send + 'static {
    /// Elements in one input sample.
    const INPUT_LEN: usize;
    /// Elements in one output sample.
    const OUTPUT_LEN: usize;
    /// Builds the model (decode weights, allocate scratch); `Err(code)` is returned by `wpi_init`.
    fn init() -> Result<Self, i32>;
    /// Runs `input.len() / INPUT_LEN` samples, writing `OUTPUT_LEN` elements per sample to `output`.
    fn infer(&mut self, input: &[f32], output: &mut [f32]);
    /// Where the model runs: `cpu`, `cpu (<why not the accelerator>)` or `cuda:<device>`.
    fn device(&self) -> String {
        device::cpu_description(None)
    }
    /// Host↔device transfer and compute time of the last `infer`, when it ran on an accelerator.
    fn last_call(&self) -> Option<device::CallBreakdown> {
        None
    }
    /// CPU threads the last `infer` ran on (0 on an accelerator).
    fn last_call_threads(&self) -> usize {
        1
    }
}

/// The model plus the decode buffers it reuses across calls, so steady inference never allocates.
#[doc(hidden)]
pub struct Runner<K> {
    kernel: K,
    input: Vec<f32>,
    output: Vec<f32>,
}

#[doc(hidden)]
pub fn init_runner<K: Kernel>(slot: &mut Option<Runner<K>>) -> i32 {
    if slot.is_some() {
        return 0;
    }
    match K::init() {
        Ok(kernel) => {
            *slot = Some(Runner {
                kernel,
                input: Vec::new(),
                output: Vec::new(),
            });
            0
        }
        Err(code) => code,
    }
}

/// Alignment of host buffers: enough for any scalar the ABI carries.
const BUFFER_ALIGN: usize = 16;

#[doc(hidden)]
pub fn alloc(len: usize) -> *mut u8 {
    match std::alloc::Layout::from_size_align(len.max(1), BUFFER_ALIGN) {
        // SAFETY: the layout has a non-zero size.
        Ok(layout) => unsafe { std::alloc::alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// # Safety
/// `ptr` must come from [`alloc`] with the same `len`, and not be freed twice.
#[doc(hidden)]
pub unsafe fn free(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    if let Ok(layout) = std::alloc::Layout::from_size_align(len.max(1), BUFFER_ALIGN) {
        // SAFETY: the caller guarantees `ptr` was allocated with this layout.
        unsafe { std::alloc::dealloc(ptr, layout) }
    }
}

/// # Safety
/// `input` must be readable for `input_len` bytes and `output` writable for `output_cap` bytes.
#[doc(hidden)]
pub unsafe fn infer<K: Kernel>(
    slot: &mut Option<Runner<K>>,
    input: *const u8,
    input_len: usize,
    output: *mut u8,
    output_cap: usize,
) -> isize {
    let sample_bytes = K::INPUT_LEN * 4;
    if sample_bytes == 0 || !input_len.is_multiple_of(sample_bytes) {
        return ERR_INPUT_LEN;
    }
    let batch = input_len / sample_bytes;
    let out_bytes = batch * K::OUTPUT_LEN * 4;
    if output_cap < out_bytes {
        return ERR_OUTPUT_CAP;
    }
    if batch == 0 {
        return 0;
    }
    if input.is_null() || output.is_null() {
        return ERR_NULL;
    }
    if init_runner(slot) != 0 {
        return ERR_INIT;
    }
    let Some(runner) = slot.as_mut() else {
        return ERR_INIT;
    };
    // SAFETY: the caller guarantees both ranges are valid; lengths were checked above.
    let (input, output) = unsafe {
        (
            std::slice::from_raw_parts(input, input_len),
            std::slice::from_raw_parts_mut(output, out_bytes),
        )
    };
    runner.input.clear();
    runner.input.extend(
        input
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
    runner.output.clear();
    runner.output.resize(batch * K::OUTPUT_LEN, 0.0);
    runner.kernel.infer(&runner.input, &mut runner.output);
    for (dst, value) in output.chunks_exact_mut(4).zip(&runner.output) {
        dst.copy_from_slice(&value.to_le_bytes());
    }
    out_bytes as isize
}

/// # Safety
/// `buf` must be writable for `cap` bytes.
#[doc(hidden)]
pub unsafe fn device_info<K: Kernel>(
    slot: &mut Option<Runner<K>>,
    buf: *mut u8,
    cap: usize,
) -> isize {
    if init_runner(slot) != 0 {
        return ERR_INIT;
    }
    let Some(runner) = slot.as_ref() else {
        return ERR_INIT;
    };
    let description = runner.kernel.device();
    let written = description.len().min(cap);
    if written > 0 {
        if buf.is_null() {
            return ERR_NULL;
        }
        // SAFETY: the caller guarantees `buf` holds `cap >= written` bytes.
        unsafe { std::ptr::copy_nonoverlapping(description.as_ptr(), buf, written) };
    }
    description.len() as isize
}

#[doc(hidden)]
pub fn force_cpu<K: Kernel>(slot: &Option<Runner<K>>) -> i32 {
    device::force_cpu();
    i32::from(slot.is_some())
}

/// # Safety
/// `out` must be writable for `cap` `u64` values.
#[doc(hidden)]
pub unsafe fn last_call_ns<K: Kernel>(
    slot: &Option<Runner<K>>,
    out: *mut u64,
    cap: usize,
) -> isize {
    let Some(breakdown) = slot.as_ref().and_then(|runner| runner.kernel.last_call()) else {
        return 0;
    };
    let values = breakdown.to_array();
    let written = values.len().min(cap);
    if written > 0 && out.is_null() {
        return ERR_NULL;
    }
    for (index, value) in values.iter().take(written).enumerate() {
        // SAFETY: the caller guarantees `out` holds `cap >= written` values.
        unsafe { out.add(index).write_unaligned(*value) };
    }
    written as isize
}

#[doc(hidden)]
pub fn last_call_threads<K: Kernel>(slot: &Option<Runner<K>>) -> u32 {
    slot.as_ref().map_or(0, |runner| {
        u32::try_from(runner.kernel.last_call_threads()).unwrap_or(u32::MAX)
    })
}

#[doc(hidden)]
pub fn set_threads(limit: u32) -> u32 {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    u32::try_from(device::limit_threads(limit)).unwrap_or(u32::MAX)
}

/// Generates the ABI v1 exports for a type implementing [`Kernel`].
///
/// ```ignore
/// struct Mlp { /* weights */ }
/// impl wasmpack_infer_kernel::Kernel for Mlp { /* ... */ }
/// wasmpack_infer_kernel::export_kernel!(Mlp);
/// ```
#[macro_export]
macro_rules! export_kernel {
    ($kernel:ty) => {
        // Wasm instances are single-threaded; natively the mutex serialises concurrent hosts.
        static WPI_RUNNER: ::std::sync::Mutex<Option<$crate::Runner<$kernel>>> =
            ::std::sync::Mutex::new(None);

        fn wpi_runner() -> ::std::sync::MutexGuard<'static, Option<$crate::Runner<$kernel>>> {
            WPI_RUNNER
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn wpi_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn wpi_alloc(len: usize) -> *mut u8 {
            $crate::alloc(len)
        }

        /// # Safety
        /// `ptr` must come from `wpi_alloc(len)`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wpi_free(ptr: *mut u8, len: usize) {
            unsafe { $crate::free(ptr, len) }
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn wpi_init() -> i32 {
            $crate::init_runner::<$kernel>(&mut wpi_runner())
        }

        /// # Safety
        /// `input`/`output` must be valid for `input_len`/`output_cap` bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wpi_infer(
            input: *const u8,
            input_len: usize,
            output: *mut u8,
            output_cap: usize,
        ) -> isize {
            unsafe {
                $crate::infer::<$kernel>(&mut wpi_runner(), input, input_len, output, output_cap)
            }
        }

        // The device exports only mean something natively; the WASM variant stays lean.
        /// # Safety
        /// `buf` must be writable for `cap` bytes.
        #[cfg(not(target_arch = "wasm32"))]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wpi_device_info(buf: *mut u8, cap: usize) -> isize {
            unsafe { $crate::device_info::<$kernel>(&mut wpi_runner(), buf, cap) }
        }

        #[cfg(not(target_arch = "wasm32"))]
        #[unsafe(no_mangle)]
        pub extern "C" fn wpi_force_cpu() -> i32 {
            $crate::force_cpu::<$kernel>(&wpi_runner())
        }

        /// # Safety
        /// `out` must be writable for `cap` values.
        #[cfg(not(target_arch = "wasm32"))]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wpi_last_call_ns(out: *mut u64, cap: usize) -> isize {
            unsafe { $crate::last_call_ns::<$kernel>(&wpi_runner(), out, cap) }
        }

        #[cfg(not(target_arch = "wasm32"))]
        #[unsafe(no_mangle)]
        pub extern "C" fn wpi_set_threads(limit: u32) -> u32 {
            $crate::set_threads(limit)
        }

        #[cfg(not(target_arch = "wasm32"))]
        #[unsafe(no_mangle)]
        pub extern "C" fn wpi_last_call_threads() -> u32 {
            $crate::last_call_threads::<$kernel>(&wpi_runner())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs [sum, count of calls] per sample of two.
    struct Summer {
        calls: f32,
    }

    impl Kernel for Summer {
        const INPUT_LEN: usize = 2;
        const OUTPUT_LEN: usize = 2;
        fn init() -> Result<Self, i32> {
            Ok(Self { calls: 0.0 })
        }
        fn infer(&mut self, input: &[f32], output: &mut [f32]) {
            self.calls += 1.0;
            for (x, y) in input.chunks_exact(2).zip(output.chunks_exact_mut(2)) {
                y[0] = x[0] + x[1];
                y[1] = self.calls;
            }
        }
    }

    fn bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn run(slot: &mut Option<Runner<Summer>>, input: &[u8], cap: usize) -> (isize, Vec<u8>) {
        let mut output = vec![0u8; cap];
        let written = unsafe { infer(slot, input.as_ptr(), input.len(), output.as_mut_ptr(), cap) };
        (written, output)
    }

    #[test]
    fn batches_roundtrip_little_endian_and_reuse_the_model() {
        let mut slot = None;
        assert_eq!(init_runner(&mut slot), 0);
        let (written, output) = run(&mut slot, &bytes(&[1.0, 2.0, 3.5, -1.0]), 16);
        assert_eq!(written, 16);
        assert_eq!(output, bytes(&[3.0, 1.0, 2.5, 1.0]));
        let (_, output) = run(&mut slot, &bytes(&[0.0, 0.0]), 8);
        assert_eq!(
            output,
            bytes(&[0.0, 2.0]),
            "the same model instance serves every call"
        );
    }

    #[test]
    fn bad_lengths_return_error_codes() {
        let mut slot = None;
        assert_eq!(run(&mut slot, &[0u8; 12], 64).0, ERR_INPUT_LEN);
        assert_eq!(run(&mut slot, &[0u8; 16], 15).0, ERR_OUTPUT_CAP);
        assert_eq!(run(&mut slot, &[], 0).0, 0);
    }

    #[test]
    fn device_info_reports_the_full_length_and_truncates_to_cap() {
        let mut slot: Option<Runner<Summer>> = None;
        let mut buf = [0u8; 2];
        let len = unsafe { device_info(&mut slot, buf.as_mut_ptr(), buf.len()) };
        assert_eq!(len, 3, "\"cpu\" has three bytes");
        assert_eq!(&buf, b"cp");
        assert_eq!(unsafe { last_call_ns(&slot, std::ptr::null_mut(), 0) }, 0);
    }

    #[test]
    fn alloc_and_free_roundtrip() {
        let ptr = alloc(100);
        assert!(!ptr.is_null());
        assert_eq!(ptr as usize % BUFFER_ALIGN, 0);
        unsafe { free(ptr, 100) };
    }
}
