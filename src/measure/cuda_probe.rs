//! Whether this machine can run CUDA, asked of the driver itself: `libcuda` is opened at run time
//! (so the tool builds and runs without a CUDA toolkit) and `cuInit` plus `cuDeviceGetCount` say
//! whether a device is there. Recorded for native siblings whose accelerated libraries (torch,
//! cupy) would use one; the kernel path reports its device from the kernel instead.

use crate::manifest::CudaPresence;

#[cfg(target_os = "windows")]
const DRIVER: &str = "nvcuda.dll";
#[cfg(not(target_os = "windows"))]
const DRIVER: &str = "libcuda.so.1";

/// Asks the CUDA driver, if one is installed, how many devices it sees.
pub fn probe() -> CudaPresence {
    match devices() {
        Ok((count, version)) if count > 0 => CudaPresence {
            available: true,
            detail: format!(
                "{count} device{}, driver {}.{}",
                if count == 1 { "" } else { "s" },
                version / 1000,
                version % 1000 / 10
            ),
        },
        Ok(_) => CudaPresence {
            available: false,
            detail: "the CUDA driver sees no device".into(),
        },
        Err(reason) => CudaPresence {
            available: false,
            detail: reason,
        },
    }
}

/// The device count and driver version (e.g. 13000), or why the driver could not say.
fn devices() -> Result<(i32, i32), String> {
    type CuInit = unsafe extern "C" fn(u32) -> i32;
    type CuOut = unsafe extern "C" fn(*mut i32) -> i32;
    // SAFETY: libcuda's initialisers have no preconditions; the symbols are the documented
    // driver API entry points with these C signatures.
    unsafe {
        let library = libloading::Library::new(DRIVER)
            .map_err(|e| format!("{DRIVER} not found on the dynamic loader path ({e})"))?;
        let symbol = |name: &[u8]| -> Result<libloading::Symbol<CuOut>, String> {
            library
                .get::<CuOut>(name)
                .map_err(|e| format!("{DRIVER} lacks {}: {e}", String::from_utf8_lossy(name)))
        };
        let init = library
            .get::<CuInit>(b"cuInit\0")
            .map_err(|e| format!("{DRIVER} lacks cuInit: {e}"))?;
        let status = init(0);
        if status != 0 {
            return Err(format!("cuInit failed with CUDA error {status}"));
        }
        let (mut count, mut version) = (0, 0);
        let status = symbol(b"cuDeviceGetCount\0")?(&mut count);
        if status != 0 {
            return Err(format!("cuDeviceGetCount failed with CUDA error {status}"));
        }
        let status = symbol(b"cuDriverGetVersion\0")?(&mut version);
        if status != 0 {
            return Err(format!(
                "cuDriverGetVersion failed with CUDA error {status}"
            ));
        }
        Ok((count, version))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_probe_answers_either_way() {
        let found = super::probe();
        // No GPU in CI: a reason; on a GPU machine: the devices.
        assert!(!found.detail.is_empty());
        if found.available {
            assert!(found.detail.contains("device"), "{found:?}");
        }
    }
}
