use super::{HostOpts, OutputArgs, TimingOpts, bundle_dir_of};
use cargo_wasmpack_infer::exit::input_error;
use cargo_wasmpack_infer::kernel::measure as kernel_measure;
use cargo_wasmpack_infer::manifest::{self, AnyManifest};
use cargo_wasmpack_infer::measure::browser::{self, BrowserPlan};
use cargo_wasmpack_infer::measure::host::{HostInstall, HostPlan};
use cargo_wasmpack_infer::python::measure as python_measure;
use cargo_wasmpack_infer::report::human;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Re-measure a bundle written by `build`: parity and timings of both variants, on this machine,
/// rewriting the bundle's manifest.json. Files are checked against their sha256 first.
///
/// With --browser, the WASM variant is also measured in headless Chromium (the system's:
/// `chromium` on PATH or WPI_CHROMIUM), loaded by its own loader.mjs from a server on 127.0.0.1:
/// load time (download, SRI check, compile, instantiate), first inference, steady latency per
/// batch size, and its outputs against wasmtime's. They land in `timings.browser`.
///
/// With --python-host, the WASM variant is also run by the bundle's own loader.py under
/// wasmtime-py in a Python process (the sandboxed-plugin deployment): load, first inference,
/// steady latency per batch with the copies in and out timed apart, and its outputs against
/// wasmtime's. They land in `timings.plugin_host`, and the plugin verdict judges them. The
/// Python is PYTHON, else WPI_PYTHON_HOST, else the venv `python-host` in the tool's cache.
///
/// With --node, the same through the bundle's loader.mjs in Node (the server-side JavaScript
/// host): the copies between JavaScript arrays and linear memory are timed apart from
/// `wpi_infer`. They land in `timings.node`.
///
/// A Python (Pyodide) bundle is measured in the browser only, so it needs --browser: boots
/// (normal, and from the memory snapshot when the bundle has one), first inference, steady
/// latency per sample, and its outputs against the same bundle run in Node.
#[derive(Args)]
pub struct Opts {
    /// Bundle directory (dist/<crate>-<version>), its manifest.json, or its .wasm.
    bundle: PathBuf,
    /// Also measure the WASM variant in headless Chromium.
    #[arg(long)]
    browser: bool,
    /// Seconds the whole browser run may take, Chromium's start included.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "browser")]
    browser_timeout: u64,
    #[command(flatten)]
    hosts: HostOpts,
    /// With --python-host: where pip finds wasmtime-py for the tool's Python host venv
    /// (--no-index), when that venv lacks it.
    #[arg(long, value_name = "DIR")]
    wheelhouse: Option<PathBuf>,
    /// With --python-host: install nothing; a Python host venv without wasmtime-py is an error
    /// naming how to make one.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    timing: TimingOpts,
    #[command(flatten)]
    output: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        self.output.human_or_json("measure")?;
        let bundle_dir = bundle_dir_of(&self.bundle)?;
        let plan = self.timing.plan()?;
        let mut reporter = self.output.reporter();
        let chromium = if self.browser {
            Some(browser::find_chromium()?)
        } else {
            None
        };
        let hosts = self.hosts.find(&HostInstall::from_flags(
            self.wheelhouse.as_deref(),
            self.offline,
        ))?;
        let is_python = matches!(
            AnyManifest::read(&bundle_dir.join(manifest::FILE_NAME)),
            Ok(AnyManifest::Pyodide(_))
        );
        let browser_plan = BrowserPlan {
            // A Pyodide boot takes seconds; a module's load, milliseconds.
            loads: if is_python { 3 } else { 10 },
            batches: plan.batches.clone(),
            min_runs: 5,
            max_runs: plan.steady_runs,
            steady_budget: plan.steady_budget,
            timeout: Duration::from_secs(self.browser_timeout),
        };
        if let Some(flag) = self.hosts.requested().filter(|_| is_python) {
            return Err(input_error(format!(
                "{} is a Python (Pyodide) bundle: {flag} runs a kernel bundle's own loader",
                bundle_dir.display()
            )));
        }
        if is_python {
            let chromium = chromium.ok_or_else(|| {
                input_error(format!(
                    "{} is a Python (Pyodide) bundle: `measure` runs it in the browser only, so pass --browser",
                    bundle_dir.display()
                ))
            })?;
            let manifest = python_measure::measure_browser(
                &bundle_dir,
                &chromium,
                &browser_plan,
                reporter.as_mut(),
            )?;
            if self.output.is_json() {
                print!("{}", manifest.to_json());
            } else if self.output.is_human() {
                print!("\n{}", human::python_summary(&manifest));
            }
            return Ok(ExitCode::SUCCESS);
        }
        let mut manifest = kernel_measure::remeasure(&bundle_dir, &plan, reporter.as_mut())?;
        if let Some(chromium) = chromium {
            manifest = kernel_measure::measure_browser(
                &bundle_dir,
                &chromium,
                &browser_plan,
                plan.call_time_limit,
                reporter.as_mut(),
            )?;
        }
        for host in &hosts {
            manifest = kernel_measure::measure_in_host(
                &bundle_dir,
                host,
                &HostPlan::like(&plan),
                reporter.as_mut(),
            )?;
        }
        self.output.print_manifest(&manifest);
        Ok(ExitCode::SUCCESS)
    }
}
