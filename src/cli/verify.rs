use super::bundle_dir_of;
use cargo_wasmpack_infer::bundle::Bundle;
use cargo_wasmpack_infer::exit::BUDGET_EXCEEDED;
use cargo_wasmpack_infer::measure::wasm::WasmHost;
use cargo_wasmpack_infer::pipeline::parity_run;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check a bundle against its manifest: every file's size, sha256 and SRI, then the parity samples
/// re-run on both variants must give the recorded per-sample results. Exit 1 on any difference.
#[derive(Args)]
pub struct Opts {
    /// Bundle directory, or a file inside it.
    bundle: PathBuf,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let bundle = Bundle::open(&bundle_dir_of(&self.bundle)?)?;
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
                let first = (0..run.parity.samples)
                    .find(|&i| {
                        let (a, b) = (&run.parity.per_sample, &manifest.parity.per_sample);
                        a.argmax_wasm.get(i) != b.argmax_wasm.get(i)
                            || a.argmax_native.get(i) != b.argmax_native.get(i)
                            || a.max_abs_diff.get(i) != b.max_abs_diff.get(i)
                    })
                    .map_or("in the summary".to_string(), |i| {
                        format!("first at sample {i}")
                    });
                problems.push(format!("parity differs from the manifest ({first})"));
            }
        }
        if self.json {
            println!(
                "{}",
                serde_json::json!({ "intact": problems.is_empty(), "problems": problems })
            );
        } else if problems.is_empty() {
            println!(
                "{}: {} files match the manifest; parity reproduced on {} samples",
                bundle.dir.display(),
                bundle.manifest.files.len(),
                bundle.manifest.parity.samples
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
