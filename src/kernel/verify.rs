//! `verify` for a kernel bundle: every file against the manifest, then the parity samples re-run
//! on the WASM and native variants must give the recorded parity, and each feature-level variant
//! must still agree with the lowest as the build recorded.

use crate::bundle::{Bundle, Verified};
use crate::kernel::measure::parity_run;
use crate::kernel::validate;
use crate::measure::timing::SampleSet;
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
        for problem in variant_problems(&bundle, &samples)? {
            found.record_problem(problem);
        }
    }
    Ok(found)
}

/// Each further feature-level variant against the reference level, as the build compared them:
/// still within tolerance, and still bit-exact where it was (a variant whose results may differ
/// between engines, relaxed SIMD, only within tolerance).
fn variant_problems(bundle: &Bundle, data: &[u8]) -> Result<Vec<String>> {
    let manifest = &bundle.manifest;
    let Some(reference) = manifest
        .wasm
        .variants
        .iter()
        .find(|v| v.agreement.is_none())
    else {
        return Ok(Vec::new());
    };
    let host = WasmHost::new()?;
    let samples = SampleSet {
        data,
        input_bytes: manifest.kernel.input.bytes(),
        output_bytes: manifest.kernel.output.bytes(),
    };
    let expected = validate::outputs(&host, &bundle.read(&reference.file)?, &samples)?;
    let mut problems = Vec::new();
    for variant in &manifest.wasm.variants {
        let Some(recorded) = &variant.agreement else {
            continue;
        };
        let rerun = validate::agreement(
            &host,
            (reference.level, &expected),
            (variant.level, &bundle.read(&variant.file)?),
            &samples,
            &manifest.kernel.output,
            manifest.kernel.tolerance,
        );
        match rerun {
            Err(error) => problems.push(format!("{error:#}")),
            Ok(rerun)
                if recorded.bit_exact
                    && !rerun.bit_exact
                    && !variant.level.is_nondeterministic() =>
            {
                problems.push(format!(
                    "the {} variant was bit-exact with {} and now differs by up to {:.3e}",
                    variant.level, reference.level, rerun.max_abs_diff
                ))
            }
            Ok(_) => {}
        }
    }
    Ok(problems)
}
