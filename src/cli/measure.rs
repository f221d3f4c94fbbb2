use super::{OutputOpts, TimingOpts};
use cargo_wasmpack_infer::exit::input_error;
use cargo_wasmpack_infer::pipeline;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Re-measure a bundle written by `build`: parity and timings of both variants, on this machine,
/// rewriting the bundle's manifest.json. Files are checked against their sha256 first.
#[derive(Args)]
pub struct Opts {
    /// Bundle directory (dist/<crate>-<version>), its manifest.json, or its .wasm.
    bundle: PathBuf,
    #[command(flatten)]
    timing: TimingOpts,
    #[command(flatten)]
    output: OutputOpts,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let bundle_dir = if self.bundle.is_dir() {
            self.bundle.clone()
        } else if self.bundle.is_file() {
            self.bundle
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
        } else {
            return Err(input_error(format!(
                "{} does not exist",
                self.bundle.display()
            )));
        };
        let plan = self.timing.plan();
        let manifest = pipeline::remeasure(&bundle_dir, &plan, self.output.reporter().as_mut())?;
        self.output.print_manifest(&manifest);
        Ok(ExitCode::SUCCESS)
    }
}
