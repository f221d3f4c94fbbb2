use super::{OutputArgs, bundle_dir_of};
use cargo_wasmpack_infer::bundle::{Bundle, Verified};
use cargo_wasmpack_infer::exit::CHECK_FAILED;
use cargo_wasmpack_infer::kernel::pipeline::parity_run;
use cargo_wasmpack_infer::manifest::{AnyManifest, FILE_NAME, Reproduction};
use cargo_wasmpack_infer::measure::wasm::WasmHost;
use cargo_wasmpack_infer::python::verify as pyodide_verify;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Check a bundle against its manifest: every file's size, sha256 and SRI, then the parity samples
/// re-run on both variants must reproduce the recorded parity: each sample's argmax as recorded,
/// the distance between the variants exactly or, where the native variant rounds differently
/// here, still within the tolerance. Exit 1 on any other difference.
///
/// A Python bundle runs its samples in Node on every way it boots (normally, with a split
/// runtime's deferred half loaded, from its memory snapshot), which must agree, and on its native
/// sibling in a fresh venv of `--python`: the parity between them must be the recorded one.
#[derive(Args)]
pub struct Opts {
    /// Bundle directory, or a file inside it.
    bundle: PathBuf,
    /// Python bundles: the native interpreter that runs the native sibling.
    #[arg(long, value_name = "PATH", default_value = "python3")]
    python: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        self.output.human_or_json("verify")?;
        let dir = bundle_dir_of(&self.bundle)?;
        let (found, files, samples, tolerance) = match AnyManifest::read(&dir.join(FILE_NAME))? {
            AnyManifest::Pyodide(manifest) => (
                pyodide_verify::verify(&dir, &manifest, &self.python)?,
                manifest.files.len(),
                manifest.project.samples,
                manifest.project.tolerance,
            ),
            AnyManifest::Kernel(_) => verify_kernel(&dir)?,
        };
        let intact = found.problems.is_empty();
        let (parity, max_abs_diff) = match &found.parity {
            Some(Reproduction::Exact) => (Some("exact"), None),
            Some(Reproduction::WithinTolerance { max_abs_diff }) => {
                (Some("within_tolerance"), Some(*max_abs_diff))
            }
            _ => (None, None),
        };
        if self.output.is_json() {
            println!(
                "{}",
                serde_json::json!({
                    "intact": intact,
                    "problems": found.problems,
                    "parity": parity,
                    "max_abs_diff": max_abs_diff,
                })
            );
        } else if self.output.is_human() {
            if intact {
                let how = match max_abs_diff {
                    Some(diff) => format!(
                        " within tolerance {tolerance:e} (max |Δ| now {diff:.3e}; the variants \
                         may round differently from run to run or machine to machine)"
                    ),
                    None => " exactly".into(),
                };
                println!(
                    "{}: {files} files match the manifest; parity reproduced on {samples} samples{how}",
                    dir.display(),
                );
            } else {
                for problem in &found.problems {
                    println!("✗ {problem}");
                }
            }
        }
        Ok(if intact {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(CHECK_FAILED)
        })
    }
}

/// A kernel bundle's findings, its file count, sample count and tolerance.
fn verify_kernel(dir: &Path) -> anyhow::Result<(Verified, usize, usize, f64)> {
    let bundle = Bundle::open(dir)?;
    let mut found = Verified {
        problems: bundle.file_problems()?,
        parity: None,
    };
    let manifest = &bundle.manifest;
    // Only run code whose bytes are the ones the manifest vouches for.
    if found.problems.is_empty() {
        let samples = bundle.read(&manifest.kernel.samples.file)?;
        let wasm = bundle.read(&manifest.wasm.file)?;
        let native_library = bundle.path_of(&manifest.native.file)?;
        let run = parity_run(
            &WasmHost::new()?,
            &bundle.variants(&wasm, &native_library, &samples),
        )?;
        found.record_parity("between WASM and native", &manifest.parity, &run.parity);
    }
    Ok((
        found,
        manifest.files.len(),
        manifest.parity.samples,
        manifest.parity.tolerance,
    ))
}
