//! Loading the native sibling (a host cdylib) through the same ABI, with libloading.

use crate::abi;
use crate::measure::runner::KernelRunner;
use anyhow::{Context, Result, bail};
use libloading::{Library, Symbol};
use std::path::Path;

type AbiVersionFn = unsafe extern "C" fn() -> u32;
type InitFn = unsafe extern "C" fn() -> i32;
type InferFn = unsafe extern "C" fn(*const u8, usize, *mut u8, usize) -> isize;

/// A loaded native kernel. Its functions point into `_library`, which must outlive them.
pub struct NativeKernel {
    infer: InferFn,
    init: Option<InitFn>,
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
            let infer = symbol::<InferFn>(&library, abi::INFER_EXPORT, path)?;
            let init = symbol::<InitFn>(&library, abi::INIT_EXPORT, path).ok();
            Ok(Self {
                infer,
                init,
                _library: library,
            })
        }
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
}
