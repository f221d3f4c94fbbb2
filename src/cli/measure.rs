use super::{OutputOpts, TimingOpts, bundle_dir_of};
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
        let bundle_dir = bundle_dir_of(&self.bundle)?;
        let plan = self.timing.plan()?;
        let manifest = pipeline::remeasure(&bundle_dir, &plan, self.output.reporter().as_mut())?;
        self.output.print_manifest(&manifest);
        Ok(ExitCode::SUCCESS)
    }
}
