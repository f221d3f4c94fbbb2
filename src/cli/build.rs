use super::{HostOpts, OutputArgs, TimingOpts, check};
use cargo_wasmpack_infer::budget;
use cargo_wasmpack_infer::exit::input_error;
use cargo_wasmpack_infer::kernel::measure as kernel_measure;
use cargo_wasmpack_infer::kernel::pipeline::{self, BuildOptions};
use cargo_wasmpack_infer::kernel::project::KernelProject;
use cargo_wasmpack_infer::manifest::AnyManifest;
use cargo_wasmpack_infer::manifest::variant::SimdLevel;
use cargo_wasmpack_infer::measure::host::{HostInstall, HostPlan};
use cargo_wasmpack_infer::profile::{
    DEFAULT_NATIVE_PROFILE, DEFAULT_PROFILE, DEFAULT_PYTHON_PROFILE, NativeProfile, Profile,
    PythonProfile,
};
use cargo_wasmpack_infer::python::dist::Source;
use cargo_wasmpack_infer::python::pipeline::{self as python_pipeline, PythonBuildOptions};
use cargo_wasmpack_infer::python::project::PythonProject;
use cargo_wasmpack_infer::python::shake::Overrides;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Build a kernel crate or a Python project into `dist/<name>-<version>/`, measured, with
/// manifest.json.
///
/// A kernel crate (Cargo.toml) is a cdylib exporting kernel ABI v1 and describing itself in
/// [package.metadata.wasmpack-infer]: it becomes a shaken, optimized, validated WASM module and a
/// native library (CUDA-accelerated when it declares `cuda`).
///
/// A Python project (pyproject.toml with [tool.wasmpack-infer] entry and samples) needs
/// --pyodide: it becomes a Pyodide bundle holding only the standard library modules the app
/// imports (traced on every sample, plus its static imports), measured against stock Pyodide
/// and native CPython.
///
/// A failed build leaves the previous bundle untouched.
#[derive(Args)]
pub struct Opts {
    /// Kernel crate or Python project: a directory, Cargo.toml or pyproject.toml (default: the
    /// current directory).
    path: Option<PathBuf>,
    /// Path to the kernel's Cargo.toml (alternative to PATH).
    #[arg(long, conflicts_with = "path")]
    manifest_path: Option<PathBuf>,
    /// Workspace member to build, when PATH is a workspace.
    #[arg(short, long)]
    package: Option<String>,
    /// Target profile: a built-in name (kernels: browser (default), size, wasi; Python projects:
    /// pyodide (default: fewest bytes), pyodide-fast-boot (.pyc only, boots from the memory
    /// snapshot, taken after one call of the entry)) or a path to a profile .toml.
    #[arg(long)]
    profile: Option<String>,
    /// Native profile: a built-in name (native-cuda) or a path to a profile .toml. It turns on
    /// the kernel's `cuda` feature when the crate declares one; the CUDA libraries are loaded at
    /// run time, so the library still runs (on the CPU) where there is no GPU.
    #[arg(long, default_value = DEFAULT_NATIVE_PROFILE)]
    native_profile: String,
    /// Build the native sibling without the `cuda` feature.
    #[arg(long)]
    no_cuda: bool,
    /// Kernels: build only this feature-level variant of the profile's (baseline, simd128,
    /// relaxed-simd; repeat for several). One of them must run on every engine of the
    /// profile's floor. Default: every variant the profile lists.
    #[arg(long = "variant", value_name = "LEVEL", value_parser = parse_level)]
    variants: Vec<SimdLevel>,
    /// Kernels: let cargo read the checkout itself rather than the stage, a copy of the
    /// crate's local packages (for a crate that reads files outside them). The native library
    /// then changes with the checkout's path.
    #[arg(long)]
    in_place: bool,
    /// Python projects: the Pyodide distribution, as a directory, a .tgz from `npm pack
    /// pyodide@VERSION`, or npm:VERSION (fetched with npm once, then cached and checked).
    #[arg(long, value_name = "DIR|FILE.tgz|npm:VERSION")]
    pyodide: Option<String>,
    /// Python projects: keep this module (and its submodules) even if the trace did not see it.
    #[arg(long, value_name = "MODULE")]
    keep: Vec<String>,
    /// Python projects: leave this module out even if the trace saw it (the validation run then
    /// shows whether the app still works).
    #[arg(long, value_name = "MODULE")]
    drop: Vec<String>,
    /// Python projects: where pip finds the dependencies (pure-Python wheels; pip runs with
    /// --no-index); with --python-host, where it finds wasmtime-py for the tool's Python host
    /// venv. Without it pip uses its configured index.
    #[arg(long, value_name = "DIR")]
    wheelhouse: Option<PathBuf>,
    /// Python projects: boots per variant for the cold-start figures (stock, bundle, snapshot),
    /// interleaved in fresh Node processes; the manifest records their median, min and max.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    boots: u64,
    /// Python projects: the native interpreter to compare against.
    #[arg(long, value_name = "PATH", default_value = "python3")]
    python: PathBuf,
    /// Python projects: do not build the memory snapshot the profile asks for.
    #[arg(long)]
    no_snapshot: bool,
    /// Python projects: ship pyodide.asm.wasm whole instead of split by a profile of the samples
    /// (the split needs binaryen's wasm-split; without it the runtime ships whole anyway).
    #[arg(long)]
    no_split: bool,
    /// Python projects: ship Pyodide's JS glue as it is, which reads every slot of the runtime's
    /// function table at each boot, instead of patched to read only the slots the build planned
    /// (the Python profile's runtime.link-plan).
    #[arg(long)]
    no_link_plan: bool,
    /// Python projects: add .pyc files made by the distribution's interpreter next to the kept
    /// stdlib modules (boot skips compiling them: seconds faster, about 1 MB more brotli).
    #[arg(long)]
    precompile: bool,
    /// Python projects: ship the stdlib modules that boot and the samples import as .pyc only,
    /// without their sources: boot skips compiling them without paying for both (modules only
    /// the static walk or --keep added stay source). Tracebacks name files and lines but show no
    /// source text.
    #[arg(long)]
    bytecode_only: bool,
    /// Python projects: deflate each entry of python_stdlib.zip and app.zip, instead of storing
    /// them for the server's brotli or gzip to compress across files (the Python profile's
    /// stdlib.store-uncompressed): smaller raw, larger compressed.
    #[arg(long)]
    deflate_entries: bool,
    /// Python projects: ship the kept stdlib modules and the app with their docstrings and
    /// comments, instead of stripped (the Python profile's stdlib.strip).
    #[arg(long)]
    no_strip: bool,
    /// Python projects: steady passes over all samples in each measurement.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    passes: u64,
    /// Directory that receives the bundle directory.
    #[arg(long, default_value = "dist")]
    out_dir: PathBuf,
    /// Keep the wasm `name` section (function names for profilers); costs bytes.
    #[arg(long)]
    keep_names: bool,
    /// Do not touch the network: cargo runs with --offline, and missing targets (and
    /// --python-host's wasmtime-py, unless --wheelhouse has it) are not installed.
    #[arg(long)]
    offline: bool,
    /// Do not install a missing Rust target with rustup (or wasmtime-py for --python-host); fail
    /// with a hint instead.
    #[arg(long)]
    no_install: bool,
    /// Timestamp for archive entries, for reproducible bundles.
    #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
    source_date_epoch: u64,
    /// Also write the bundle's npm package tarball (`<name>-<version>.tgz`, what `npm pack` in the
    /// bundle would make, built deterministically) beside its package.json, ready for `npm
    /// publish` or `npm install`.
    #[arg(long)]
    npm: bool,
    /// After building, check the budgets recorded in the manifest and exit 1 if one is exceeded.
    #[arg(long)]
    check: bool,
    /// Also write index.html into the bundle: a drawing pad whose ink becomes the model's input,
    /// and the predictions shown live with each call's latency (`serve DIST` to try it). Needs a
    /// `demo` table (width, height, max, labels) in the project's wasmpack-infer metadata.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    hosts: HostOpts,
    #[command(flatten)]
    timing: TimingOpts,
    #[command(flatten)]
    output: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        self.output.human_or_json("build")?;
        let path = self
            .manifest_path
            .clone()
            .or(self.path.clone())
            .unwrap_or_else(|| PathBuf::from("."));
        if PythonProject::is_python_project(&path) {
            return self.run_python(&path);
        }
        let hosts = self.hosts.find(&HostInstall::from_flags(
            self.wheelhouse.as_deref(),
            self.offline || self.no_install,
        ))?;
        if self.pyodide.is_some() {
            return Err(input_error(format!(
                "--pyodide is for Python projects; {} has no pyproject.toml",
                path.display()
            )));
        }
        let project = KernelProject::load(&path, self.package.as_deref(), self.offline)?;
        let options = BuildOptions {
            profile: Profile::load(self.profile.as_deref().unwrap_or(DEFAULT_PROFILE))?,
            native_profile: NativeProfile::load(&self.native_profile)?,
            no_cuda: self.no_cuda,
            out_dir: self.out_dir,
            keep_names: self.keep_names,
            in_place: self.in_place,
            offline: self.offline,
            allow_install: !self.no_install,
            source_date_epoch: self.source_date_epoch,
            timing: self.timing.plan()?,
            demo: self.demo,
            variants: self.variants.clone(),
            npm_tarball: self.npm,
        };
        let mut reporter = self.output.reporter();
        let mut output = pipeline::build(&project, &options, reporter.as_mut())?;
        for host in &hosts {
            // A loader runs the bundle as shipped, so it is timed once the bundle is written.
            output.manifest = kernel_measure::measure_in_host(
                &output.bundle_dir,
                host,
                &HostPlan::like(&options.timing),
                reporter.as_mut(),
            )?;
        }
        self.output.print_manifest(&output.manifest);
        let manifest = AnyManifest::Kernel(Box::new(output.manifest));
        check_budgets(
            self.check,
            &self.output,
            &manifest,
            "[package.metadata.wasmpack-infer.budgets]",
        )
    }

    fn run_python(self, path: &std::path::Path) -> anyhow::Result<ExitCode> {
        if let Some(flag) = self.hosts.requested() {
            return Err(input_error(format!(
                "{flag} runs a kernel bundle's own loader; {} is a Python project, whose bundle \
                 runs on Pyodide",
                path.display()
            )));
        }
        if !self.variants.is_empty() {
            return Err(input_error(format!(
                "--variant is for kernel crates; {} is a Python project, whose runtime is \
                 Pyodide's own build",
                path.display()
            )));
        }
        let project = PythonProject::load(path)?;
        let Some(pyodide) = &self.pyodide else {
            return Err(input_error(format!(
                "{} is a Python project: pass --pyodide DIR|FILE.tgz|npm:VERSION (e.g. npm:{})",
                path.display(),
                cargo_wasmpack_infer::python::dist::TESTED_VERSION
            )));
        };
        let profile =
            PythonProfile::load(self.profile.as_deref().unwrap_or(DEFAULT_PYTHON_PROFILE))?;
        let mut snapshot = profile.snapshot;
        if self.no_snapshot {
            snapshot.build = false;
            snapshot.default = false;
        }
        let mut runtime = profile.runtime;
        runtime.split &= !self.no_split;
        runtime.link_plan &= !self.no_link_plan;
        let mut stdlib = profile.stdlib;
        stdlib.precompile |= self.precompile;
        stdlib.bytecode_only |= self.bytecode_only;
        stdlib.strip &= !self.no_strip;
        stdlib.store_uncompressed &= !self.deflate_entries;
        let options = PythonBuildOptions {
            snapshot,
            runtime,
            stdlib,
            runtime_fit: profile.runtime_fit,
            boots: self.boots as usize,
            pyodide: Source::parse(pyodide)?,
            out_dir: self.out_dir,
            offline: self.offline,
            overrides: Overrides {
                keep: self.keep,
                drop: self.drop,
            },
            python: self.python,
            passes: self.passes as usize,
            wheelhouse: self.wheelhouse,
            source_date_epoch: self.source_date_epoch,
            npm_tarball: self.npm,
            demo: self.demo,
        };
        let output = python_pipeline::build(&project, &options, self.output.reporter().as_mut())?;
        if self.output.is_json() {
            print!("{}", output.manifest.to_json());
        } else if self.output.is_human() {
            print!(
                "\n{}",
                cargo_wasmpack_infer::report::human::python_summary(&output.manifest)
            );
        }
        check_budgets(
            self.check,
            &self.output,
            &AnyManifest::Pyodide(Box::new(output.manifest)),
            "[tool.wasmpack-infer.budgets]",
        )
    }
}

/// With --check: the manifest's budgets, checked and printed; exit 1 when one is exceeded.
fn check_budgets(
    check: bool,
    output: &super::OutputArgs,
    manifest: &AnyManifest,
    table: &str,
) -> anyhow::Result<ExitCode> {
    if !check {
        return Ok(ExitCode::SUCCESS);
    }
    let budgets = manifest.budgets();
    if budgets.is_empty() {
        return Err(input_error(format!("--check: the project has no {table}")));
    }
    let results = budget::check(&manifest.metrics(), budgets)?;
    // With --format json stdout is the manifest alone: the exit code carries the verdict.
    if output.is_human() {
        println!();
        check::print_results(&results, output)?;
    }
    Ok(check::exit_code(&results))
}

/// A `--variant` value: one of the SIMD levels.
fn parse_level(name: &str) -> Result<SimdLevel, String> {
    SimdLevel::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = SimdLevel::ALL.iter().map(|l| l.name()).collect();
        format!("expected one of {}", names.join(", "))
    })
}
