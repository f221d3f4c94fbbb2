use super::{OutputOpts, TimingOpts, check};
use cargo_wasmpack_infer::budget;
use cargo_wasmpack_infer::exit::input_error;
use cargo_wasmpack_infer::pipeline::{self, BuildOptions};
use cargo_wasmpack_infer::profile::{
    DEFAULT_NATIVE_PROFILE, DEFAULT_PROFILE, NativeProfile, Profile,
};
use cargo_wasmpack_infer::project::kernel::KernelProject;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Build a kernel crate into `dist/<crate>-<version>/`: a shaken, optimized, validated WASM
/// module and the native library, both measured, with manifest.json.
///
/// The crate is a cdylib exporting kernel ABI v1 and describing itself in
/// [package.metadata.wasmpack-infer]. A failed build leaves the previous bundle untouched.
#[derive(Args)]
pub struct Opts {
    /// Kernel crate directory or Cargo.toml (default: the current directory).
    path: Option<PathBuf>,
    /// Path to the kernel's Cargo.toml (alternative to PATH).
    #[arg(long, conflicts_with = "path")]
    manifest_path: Option<PathBuf>,
    /// Workspace member to build, when PATH is a workspace.
    #[arg(short, long)]
    package: Option<String>,
    /// Target profile: a built-in name (browser, size) or a path to a profile .toml.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Native profile: a built-in name (native-cuda) or a path to a profile .toml. It turns on
    /// the kernel's `cuda` feature when the crate declares one; the CUDA libraries are loaded at
    /// run time, so the library still runs (on the CPU) where there is no GPU.
    #[arg(long, default_value = DEFAULT_NATIVE_PROFILE)]
    native_profile: String,
    /// Build the native sibling without the `cuda` feature.
    #[arg(long)]
    no_cuda: bool,
    /// Directory that receives the bundle directory.
    #[arg(long, default_value = "dist")]
    out_dir: PathBuf,
    /// Keep the wasm `name` section (function names for profilers); costs bytes.
    #[arg(long)]
    keep_names: bool,
    /// Do not touch the network: cargo runs with --offline and missing targets are not installed.
    #[arg(long)]
    offline: bool,
    /// Do not install a missing Rust target with rustup; fail with a hint instead.
    #[arg(long)]
    no_install: bool,
    /// Timestamp for archive entries, for reproducible bundles.
    #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
    source_date_epoch: u64,
    /// After building, check the budgets recorded in the manifest and exit 1 if one is exceeded.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    timing: TimingOpts,
    #[command(flatten)]
    output: OutputOpts,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let path = self
            .manifest_path
            .or(self.path)
            .unwrap_or_else(|| PathBuf::from("."));
        let project = KernelProject::load(&path, self.package.as_deref(), self.offline)?;
        let options = BuildOptions {
            profile: Profile::load(&self.profile)?,
            native_profile: NativeProfile::load(&self.native_profile)?,
            no_cuda: self.no_cuda,
            out_dir: self.out_dir,
            keep_names: self.keep_names,
            offline: self.offline,
            allow_install: !self.no_install,
            source_date_epoch: self.source_date_epoch,
            timing: self.timing.plan()?,
        };
        let output = pipeline::build(&project, &options, self.output.reporter().as_mut())?;
        self.output.print_manifest(&output.manifest);
        if !self.check {
            return Ok(ExitCode::SUCCESS);
        }
        let budgets = &output.manifest.budgets;
        if budgets.is_empty() {
            return Err(input_error(format!(
                "--check: crate `{}` has no [package.metadata.wasmpack-infer.budgets]",
                project.name
            )));
        }
        let results = budget::check(&output.manifest, budgets)?;
        // With --json stdout is the manifest alone: the exit code carries the verdict.
        if !self.output.json && !self.output.quiet {
            println!();
            check::print_results(&results, super::Format::Human)?;
        }
        Ok(check::exit_code(&results))
    }
}
