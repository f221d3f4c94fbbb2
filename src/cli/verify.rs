use super::bundle_dir_of;
use cargo_wasmpack_infer::bundle::Bundle;
use cargo_wasmpack_infer::exit::BUDGET_EXCEEDED;
use cargo_wasmpack_infer::manifest::{AnyManifest, FILE_NAME};
use cargo_wasmpack_infer::measure::wasm::WasmHost;
use cargo_wasmpack_infer::pipeline::parity_run;
use cargo_wasmpack_infer::pyodide::verify as pyodide_verify;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Check a bundle against its manifest: every file's size, sha256 and SRI, then the parity samples
/// re-run on both variants must give the recorded per-sample results. Exit 1 on any difference.
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
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let dir = bundle_dir_of(&self.bundle)?;
        let (problems, files, samples) = match AnyManifest::read(&dir.join(FILE_NAME))? {
            AnyManifest::Pyodide(manifest) => (
                pyodide_verify::verify(&dir, &manifest, &self.python)?,
                manifest.files.len(),
                manifest.project.samples,
            ),
            AnyManifest::Kernel(_) => verify_kernel(&dir)?,
        };
        if self.json {
            println!(
                "{}",
                serde_json::json!({ "intact": problems.is_empty(), "problems": problems })
            );
        } else if problems.is_empty() {
            println!(
                "{}: {files} files match the manifest; parity reproduced on {samples} samples",
                dir.display(),
            );
        } else {
            for problem in &problems {
                println!("✗ {problem}");
            }
        }
        Ok(if problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(BUDGET_EXCEEDED)
        })
    }
}

/// A kernel bundle's problems, its file count and its sample count.
fn verify_kernel(dir: &Path) -> anyhow::Result<(Vec<String>, usize, usize)> {
    let bundle = Bundle::open(dir)?;
    let mut problems = bundle.file_problems()?;
    // Only run code whose bytes are the ones the manifest vouches for.
    if problems.is_empty() {
        let manifest = &bundle.manifest;
        let samples = bundle.read(&manifest.kernel.samples.file)?;
        let wasm = bundle.read(&manifest.wasm.file)?;
        let native_library = bundle.path_of(&manifest.native.file)?;
        let run = parity_run(
            &WasmHost::new()?,
            &bundle.variants(&wasm, &native_library, &samples),
        )?;
        if run.parity != manifest.parity {
            problems.push(format!(
                "parity differs from the manifest ({})",
                run.parity.describe_difference(&manifest.parity)
            ));
        }
    }
    Ok((
        problems,
        bundle.manifest.files.len(),
        bundle.manifest.parity.samples,
    ))
}
