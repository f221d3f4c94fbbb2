use super::{OutputOpts, TimingOpts, bundle_dir_of};
use cargo_wasmpack_infer::measure::browser::{self, BrowserPlan};
use cargo_wasmpack_infer::pipeline;
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
#[derive(Args)]
pub struct Opts {
    /// Bundle directory (dist/<crate>-<version>), its manifest.json, or its .wasm.
    bundle: PathBuf,
    /// Also measure the WASM variant in headless Chromium.
    #[arg(long)]
    browser: bool,
    /// Seconds the whole browser run may take, Chromium's start included.
    #[arg(long, value_name = "SECS", default_value_t = 120, requires = "browser")]
    browser_timeout: u64,
    #[command(flatten)]
    timing: TimingOpts,
    #[command(flatten)]
    output: OutputOpts,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let bundle_dir = bundle_dir_of(&self.bundle)?;
        let plan = self.timing.plan()?;
        let mut reporter = self.output.reporter();
        let chromium = if self.browser {
            Some(browser::find_chromium()?)
        } else {
            None
        };
        let mut manifest = pipeline::remeasure(&bundle_dir, &plan, reporter.as_mut())?;
        if let Some(chromium) = chromium {
            let browser_plan = BrowserPlan {
                loads: 10,
                batches: plan.batches.clone(),
                min_runs: 5,
                max_runs: plan.steady_runs,
                steady_budget: plan.steady_budget,
                timeout: Duration::from_secs(self.browser_timeout),
            };
            manifest = pipeline::measure_browser(
                &bundle_dir,
                &chromium,
                &browser_plan,
                plan.call_time_limit,
                reporter.as_mut(),
            )?;
        }
        self.output.print_manifest(&manifest);
        Ok(ExitCode::SUCCESS)
    }
}
