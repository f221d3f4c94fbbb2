//! `verify` for a kernel bundle: every file against the manifest, then the parity samples re-run
//! on the WASM and native variants must give the recorded parity.

use crate::bundle::{Bundle, Verified};
use crate::kernel::measure::parity_run;
use crate::measure::wasm::WasmHost;
use anyhow::Result;
use std::path::Path;

/// What differs between the kernel bundle in `dir` and its manifest. Runs code only when every
/// file matches the manifest's sha256.
pub fn verify(dir: &Path) -> Result<Verified> {
    let bundle = Bundle::open(dir)?;
    let manifest = &bundle.manifest;
    let mut found = Verified::files_checked(
        dir,
        &manifest.files,
        manifest.parity.samples,
        manifest.parity.tolerance,
    )?;
    if found.is_intact() {
        let samples = bundle.read(&manifest.kernel.samples.file)?;
        let wasm = bundle.read(&manifest.wasm.file)?;
        let native_library = bundle.path_of(&manifest.native.file)?;
        let run = parity_run(
            &WasmHost::new()?,
            &bundle.variants(&wasm, &native_library, &samples),
        )?;
        found.record_parity("between WASM and native", &manifest.parity, &run.parity);
    }
    Ok(found)
}
