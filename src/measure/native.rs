//! Loading the native sibling (a host cdylib) through the same ABI, with libloading.

use crate::abi;
use crate::manifest::kernel::Accelerator;
use crate::measure::runner::KernelRunner;
use anyhow::{Context, Result, bail};
use libloading::{Library, Symbol};
use std::path::{Path, PathBuf};

type AbiVersionFn = unsafe extern "C" fn() -> u32;
type InitFn = unsafe extern "C" fn() -> i32;
type InferFn = unsafe extern "C" fn(*const u8, usize, *mut u8, usize) -> isize;
type DeviceInfoFn = unsafe extern "C" fn(*mut u8, usize) -> isize;
type ForceCpuFn = unsafe extern "C" fn() -> i32;
type LastCallFn = unsafe extern "C" fn(*mut u64, usize) -> isize;
type SetThreadsFn = unsafe extern "C" fn(u32) -> u32;
type LastCallThreadsFn = unsafe extern "C" fn() -> u32;

/// Keeps the error paths of kernels loaded into this process at their production cost: call at
/// the start of `main`, before any thread starts.
///
/// A kernel links its own std, and its `Backtrace::capture` (anyhow calls it for every error)
/// walks the stack whenever RUST_BACKTRACE is set, as it often is on a developer's machine.
/// tract's plan makes and drops errors on every run: measured on a RandomForest from ONNX, the
/// native variant took 145 µs a sample with RUST_BACKTRACE=1 and 25 µs without, so WASM (42 µs,
/// where nothing is captured) read as 3.5 times faster than native. RUST_LIB_BACKTRACE=0 turns that
/// capture off, before any kernel reads it, and leaves panics' backtraces (RUST_BACKTRACE) alone;
/// a RUST_LIB_BACKTRACE the user set is kept.
///
/// # Safety
/// It edits the environment: no other thread may be running.
pub unsafe fn keep_kernel_errors_cheap() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the caller's (single-threaded).
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

/// Which device a native run asks the kernel for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// Whatever the kernel picks, as it would for a user.
    Auto,
    /// The CPU path, through `wpi_force_cpu` when the kernel exports it.
    Cpu,
}

/// A loaded native kernel. Its functions point into `_library`, which must outlive them.
pub struct NativeKernel {
    path: PathBuf,
    infer: InferFn,
    init: Option<InitFn>,
    device_info: Option<DeviceInfoFn>,
    force_cpu: Option<ForceCpuFn>,
    last_call: Option<LastCallFn>,
    set_threads: Option<SetThreadsFn>,
    last_call_threads: Option<LastCallThreadsFn>,
    _library: Library,
}

impl NativeKernel {
    /// Loads the library and checks its ABI version. A kernel's initialisers run in this process:
    /// load only kernels you would run anyway.
    pub fn load(path: &Path) -> Result<Self> {
        // SAFETY: loading runs the library's initialisers; the kernel is the user's own code
        // that this build just compiled.
        let library = unsafe { Library::new(path) }
            .with_context(|| format!("loading the native library {}", path.display()))?;
        // SAFETY: the symbol types are those ABI v1 defines; a library built from a kernel crate
        // that passed the wasm ABI check exports them with these signatures.
        unsafe {
            let version = symbol::<AbiVersionFn>(&library, abi::ABI_VERSION_EXPORT, path)?;
            let got = version();
            if got != abi::ABI_VERSION {
                bail!(
                    "{}: wpi_abi_version returned {got}, expected {}",
                    path.display(),
                    abi::ABI_VERSION
                );
            }
            Ok(Self {
                path: path.to_path_buf(),
                infer: symbol::<InferFn>(&library, abi::INFER_EXPORT, path)?,
                init: symbol::<InitFn>(&library, abi::INIT_EXPORT, path).ok(),
                device_info: symbol::<DeviceInfoFn>(&library, abi::DEVICE_INFO_EXPORT, path).ok(),
                force_cpu: symbol::<ForceCpuFn>(&library, abi::FORCE_CPU_EXPORT, path).ok(),
                last_call: symbol::<LastCallFn>(&library, abi::LAST_CALL_EXPORT, path).ok(),
                set_threads: symbol::<SetThreadsFn>(&library, abi::SET_THREADS_EXPORT, path).ok(),
                last_call_threads: symbol::<LastCallThreadsFn>(
                    &library,
                    abi::LAST_CALL_THREADS_EXPORT,
                    path,
                )
                .ok(),
                _library: library,
            })
        }
    }

    /// Asks the kernel for `choice` before `init`. A kernel without `wpi_force_cpu` has only
    /// its own choice, which [`NativeKernel::accelerator`] then reveals.
    fn choose(&mut self, choice: DeviceChoice) {
        if let (DeviceChoice::Cpu, Some(force_cpu)) = (choice, self.force_cpu) {
            // SAFETY: `wpi_force_cpu` takes no arguments.
            unsafe { force_cpu() };
        }
    }

    /// The kernel's description of its device (`wpi_device_info`), initialising it if needed;
    /// `None` when it does not export one.
    pub fn device(&mut self) -> Result<Option<String>> {
        let Some(device_info) = self.device_info else {
            return Ok(None);
        };
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: `buf` is writable for its length.
            let len = unsafe { device_info(buf.as_mut_ptr(), buf.len()) };
            if len < 0 {
                bail!(
                    "{}: wpi_device_info returned error {len} ({})",
                    self.path.display(),
                    abi::describe_error_code(len as i64)
                );
            }
            let len = len as usize;
            if len <= buf.len() {
                buf.truncate(len);
                return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
            }
            buf.resize(len, 0);
        }
    }

    /// Caps the CPU threads of later calls (0 lifts the cap) and returns the cap in effect;
    /// `None` when the kernel does not export `wpi_set_threads`.
    pub fn limit_threads(&mut self, limit: u32) -> Option<u32> {
        let set_threads = self.set_threads?;
        // SAFETY: `wpi_set_threads` takes and returns a u32.
        Some(unsafe { set_threads(limit) })
    }

    /// The device the kernel runs on, and its description.
    pub fn accelerator(&mut self) -> Result<(Accelerator, Option<String>)> {
        let device = self.device()?;
        let accelerator = match &device {
            Some(d) if d.starts_with("cuda:") => Accelerator::Cuda,
            _ => Accelerator::Cpu,
        };
        Ok((accelerator, device))
    }
}

/// # Safety
/// `T` must be the symbol's real type.
unsafe fn symbol<T: Copy>(library: &Library, name: &str, path: &Path) -> Result<T> {
    // SAFETY: forwarded to the caller.
    let found: Symbol<T> = unsafe { library.get(name.as_bytes()) }
        .with_context(|| format!("{} does not export `{name}`", path.display()))?;
    Ok(*found)
}

impl KernelRunner for NativeKernel {
    fn init(&mut self) -> Result<()> {
        let Some(init) = self.init else { return Ok(()) };
        // SAFETY: ABI v1 `wpi_init` takes no arguments.
        let code = unsafe { init() };
        abi::check_init(code)
    }

    fn infer_into(&mut self, input: &[u8], output: &mut [u8]) -> Result<()> {
        // SAFETY: both slices are valid for their lengths for the duration of the call.
        let written = unsafe {
            (self.infer)(
                input.as_ptr(),
                input.len(),
                output.as_mut_ptr(),
                output.len(),
            )
        };
        abi::check_written(written as i64, output.len(), output.len())
    }

    fn last_call_ns(&mut self) -> Option<[u64; 3]> {
        let last_call = self.last_call?;
        let mut values = [0u64; 3];
        // SAFETY: `values` is writable for three u64.
        let written = unsafe { last_call(values.as_mut_ptr(), values.len()) };
        (written == 3).then_some(values)
    }

    fn last_call_threads(&mut self) -> Option<u32> {
        let last_call_threads = self.last_call_threads?;
        // SAFETY: `wpi_last_call_threads` takes no arguments.
        let threads = unsafe { last_call_threads() };
        // 0: the call ran on an accelerator, where CPU threads say nothing.
        (threads > 0).then_some(threads)
    }
}

/// Fresh copies of one native library. The dynamic loader hands back the already-loaded library
/// (with its initialised state and device choice) for a path it has open, so every cold start and
/// every device choice gets its own copy.
pub struct LibraryCopies {
    bytes: Vec<u8>,
    dir: tempfile::TempDir,
    extension: String,
    loaded: usize,
}

impl LibraryCopies {
    pub fn new(library: &Path) -> Result<Self> {
        Ok(Self {
            bytes: crate::fsx::read(library)?,
            dir: tempfile::tempdir().context("creating a directory for library copies")?,
            extension: library
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("so")
                .to_string(),
            loaded: 0,
        })
    }

    /// Writes and loads a fresh copy, set up for `choice` but not yet initialised.
    pub fn load(&mut self, choice: DeviceChoice) -> Result<NativeKernel> {
        self.loaded += 1;
        let copy = self
            .dir
            .path()
            .join(format!("kernel-{}.{}", self.loaded, self.extension));
        crate::fsx::write(&copy, &self.bytes)?;
        let mut kernel = NativeKernel::load(&copy)?;
        kernel.choose(choice);
        Ok(kernel)
    }

    /// A fresh copy on the CPU path, initialised; an error if the kernel still picks CUDA.
    pub fn load_cpu(&mut self) -> Result<NativeKernel> {
        let mut kernel = self.load(DeviceChoice::Cpu)?;
        kernel.init().context("native variant")?;
        if let (Accelerator::Cuda, device) = kernel.accelerator()? {
            bail!(
                "the native library runs on {} even when asked for the CPU: export \
                 `wpi_force_cpu` (export_kernel! does) so its CPU path can be measured",
                device.unwrap_or_default()
            );
        }
        Ok(kernel)
    }
}
