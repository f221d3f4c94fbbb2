//! The WASM variant measured where it ships: headless Chromium (the system's, nothing is
//! downloaded) loads the bundle through its own `loader.mjs` from [`crate::serve::Server`], and a
//! measurement page (`templates/browser/bench.html`, served beside the bundle, never shipped)
//! POSTs its figures back. No DevTools protocol is needed, so no npm package either.

use crate::exit::input_error;
use crate::manifest::kernel::BrowserTimings;
use crate::manifest::python::PyodideBrowserTimings;
use crate::manifest::variant::SimdLevel;
use crate::manifest::{BrowserEnvironment, BrowserSteady};
use crate::measure::stats;
use crate::serve::Server;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BENCH_PAGE: &str = include_str!("../../templates/browser/bench.html");
const PLAN_SLOT: &str = "/*WPI_BENCH*/ {} /*END_WPI_BENCH*/";
const BENCH_PATH: &str = "/__wpi/bench.html";
/// Browsers looked for on PATH, in order, when `WPI_CHROMIUM` is not set.
const CANDIDATES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// What the page measures, and how long the tool waits for it.
#[derive(Debug, Clone)]
pub struct BrowserPlan {
    /// `load()` calls timed, each fetching, checking and instantiating the module again.
    pub loads: usize,
    pub batches: Vec<usize>,
    pub min_runs: usize,
    pub max_runs: usize,
    /// Steady runs per batch size stop after this long (at least `min_runs`).
    pub steady_budget: Duration,
    /// The whole page run, browser start included.
    pub timeout: Duration,
}

/// A Chromium executable: `WPI_CHROMIUM`, else the first of [`CANDIDATES`] on PATH.
pub fn find_chromium() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("WPI_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| CANDIDATES.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            input_error(format!(
                "--browser needs Chromium: none of {} is on PATH (Debian: apt-get install chromium), \
                 or set WPI_CHROMIUM to its path",
                CANDIDATES.join(", ")
            ))
        })
}

/// `chromium --version`, e.g. `Chromium 142.0.7444.175 built on Debian …`.
fn browser_version(chromium: &Path) -> Result<String> {
    let output = Command::new(chromium)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", chromium.display()))?;
    if !output.status.success() {
        bail!(
            "{} --version failed: {}",
            chromium.display(),
            crate::tools::tail_lines(&String::from_utf8_lossy(&output.stderr), 5)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// What a page POSTs (bench.html, profile.html): its figures, or the error that stopped it.
#[derive(Deserialize)]
pub(crate) struct PageResult<T> {
    ok: Option<T>,
    error: Option<PageError>,
}

impl<T: serde::de::DeserializeOwned> PageResult<T> {
    /// The figures in `body`; `what` names the page's subject in errors ("the bundle").
    pub(crate) fn read(body: &[u8], what: &str) -> Result<T> {
        let result: Self = serde_json::from_slice(body).context("reading the page's result")?;
        if let Some(error) = result.error {
            bail!(
                "in Chromium, {what} failed: {}: {}",
                error.name,
                error.message
            );
        }
        result
            .ok
            .context("the page sent neither its figures nor an error")
    }
}

#[derive(Deserialize)]
struct PageError {
    name: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageFigures {
    environment: PageEnvironment,
    load_ms: Vec<f64>,
    #[serde(default)]
    snapshot_load_ms: Option<Vec<f64>>,
    first_inference_us: f64,
    /// Base64 of the output tensor (kernel), or one JSON value per sample (Pyodide).
    outputs: serde_json::Value,
    sweep: Vec<PageSteady>,
    #[serde(default)]
    deferred_load_ms: Option<f64>,
    #[serde(default)]
    snapshot_deferred_load_ms: Option<f64>,
    /// The SIMD level the kernel loader picked.
    #[serde(default)]
    level: Option<SimdLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageEnvironment {
    user_agent: String,
    cross_origin_isolated: bool,
    timer_resolution_us: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageSteady {
    batch: usize,
    per_call_us: Vec<f64>,
    calls: usize,
    /// A kernel call's steps timed apart (empty for Pyodide, or a loader without them).
    #[serde(default)]
    upload_us: Vec<f64>,
    #[serde(default)]
    compute_us: Vec<f64>,
    #[serde(default)]
    download_us: Vec<f64>,
}

/// A kernel bundle's WASM variant in the browser: its outputs for all samples in one call, and
/// its timings (`parity` still to be filled in by the caller).
pub struct KernelBrowserRun {
    pub outputs: Vec<u8>,
    pub timings: BrowserTimings,
}

/// A Pyodide bundle in the browser: one output per sample, and its timings.
pub struct PyodideBrowserRun {
    pub outputs: Vec<serde_json::Value>,
    pub timings: PyodideBrowserTimings,
}

/// Runs a kernel bundle's WASM variant (`loader.mjs`, `samples_file`) in headless Chromium.
pub fn measure_kernel(
    chromium: &Path,
    bundle_dir: &Path,
    samples_file: &str,
    plan: &BrowserPlan,
) -> Result<KernelBrowserRun> {
    let page = json!({
        "variant": "wasm",
        "loader": "/loader.mjs",
        "samples": format!("/{samples_file}"),
        "batches": plan.batches,
    });
    let (environment, figures) = run_page(chromium, bundle_dir, page, plan)?;
    let outputs = figures
        .outputs
        .as_str()
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .context("the page sent outputs that are not base64")?;
    Ok(KernelBrowserRun {
        outputs,
        timings: BrowserTimings {
            environment,
            load: stats::distribution_us(figures.load_ms.iter().map(|ms| ms * 1000.0)),
            first_inference: stats::distribution_us([figures.first_inference_us]),
            steady: steady(&figures.sweep),
            parity: None,
            variant: figures.level,
        },
    })
}

/// Runs a Pyodide bundle (`loader`, e.g. `/pyodide/loader.mjs`, and `samples_file`) in headless
/// Chromium, booting it normally and, when `snapshot`, from its memory snapshot too.
pub fn measure_pyodide(
    chromium: &Path,
    bundle_dir: &Path,
    loader: &str,
    samples_file: &str,
    snapshot: bool,
    plan: &BrowserPlan,
) -> Result<PyodideBrowserRun> {
    let page = json!({
        "variant": "pyodide",
        "loader": loader,
        "samples": format!("/{samples_file}"),
        "snapshot": snapshot,
    });
    let (environment, figures) = run_page(chromium, bundle_dir, page, plan)?;
    let outputs: Vec<serde_json::Value> = serde_json::from_value(figures.outputs)
        .context("the page sent outputs that are not a list")?;
    let ms_to_us = |ms: &Vec<f64>| stats::distribution_us(ms.iter().map(|ms| ms * 1000.0));
    Ok(PyodideBrowserRun {
        outputs,
        timings: PyodideBrowserTimings {
            environment,
            load: ms_to_us(&figures.load_ms),
            snapshot_load: figures.snapshot_load_ms.as_ref().map(ms_to_us),
            first_inference: stats::distribution_us([figures.first_inference_us]),
            steady: steady(&figures.sweep)
                .into_iter()
                .next()
                .context("the page sent no steady timings")?,
            parity: None,
            deferred_load_ms: figures.deferred_load_ms,
            snapshot_deferred_load_ms: figures.snapshot_deferred_load_ms,
        },
    })
}

/// Serves `bundle_dir` with the measurement page configured by `page` (plus the plan's run
/// counts), runs it in headless Chromium and returns what it POSTed.
fn run_page(
    chromium: &Path,
    bundle_dir: &Path,
    mut page: serde_json::Value,
    plan: &BrowserPlan,
) -> Result<(BrowserEnvironment, PageFigures)> {
    let version = browser_version(chromium)?;
    page["loads"] = plan.loads.into();
    page["minRuns"] = plan.min_runs.into();
    page["maxRuns"] = plan.max_runs.into();
    page["budgetMs"] = (plan.steady_budget.as_secs_f64() * 1000.0).into();
    let html = BENCH_PAGE.replacen(PLAN_SLOT, &page.to_string(), 1);
    let body = run_in_chromium(chromium, bundle_dir, BENCH_PATH, html, plan.timeout)?;
    let figures: PageFigures = PageResult::read(&body, "the bundle")?;
    let environment = BrowserEnvironment {
        browser: version,
        user_agent: figures.environment.user_agent.clone(),
        cross_origin_isolated: figures.environment.cross_origin_isolated,
        timer_resolution_us: (figures.environment.timer_resolution_us * 1000.0).round() / 1000.0,
    };
    Ok((environment, figures))
}

/// Serves `dir` plus `html` at `page_path`, opens that page in headless Chromium and returns
/// what the page POSTed to the server's result path.
pub(crate) fn run_in_chromium(
    chromium: &Path,
    dir: &Path,
    page_path: &str,
    html: String,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let mut server = Server::bind(dir, 0)?;
    server.add_page(page_path, html.into_bytes());
    let profile = tempfile::tempdir().context("creating a Chromium profile directory")?;
    let mut browser = Command::new(chromium)
        .args([
            "--headless=new",
            // Root in containers and CI runners cannot use Chromium's sandbox; the page is ours.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!(
            "{}{}",
            server.url().trim_end_matches('/'),
            page_path
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", chromium.display()))?;
    let body = server.serve_until_result(timeout, || match browser.try_wait() {
        Ok(Some(status)) => Err(anyhow!(
            "Chromium exited ({status}) before the page reported"
        )),
        Ok(None) => Ok(()),
        Err(e) => Err(anyhow!("watching Chromium: {e}")),
    });
    let _ = browser.kill();
    let exited = browser.wait_with_output();
    body.map_err(|error| {
        let log = exited
            .map(|o| crate::tools::tail_lines(&String::from_utf8_lossy(&o.stderr), 8))
            .unwrap_or_default();
        anyhow!("{error:#}\nChromium's log:\n{log}")
    })
}

fn steady(sweep: &[PageSteady]) -> Vec<BrowserSteady> {
    sweep
        .iter()
        .map(|s| {
            let latency = stats::distribution_us(s.per_call_us.iter().copied());
            BrowserSteady {
                batch: s.batch,
                calls_per_run: s.calls,
                samples_per_second: stats::samples_per_second(s.batch, &latency),
                latency,
                transfer: stats::transfer_medians(&s.upload_us, &s.compute_us, &s.download_us),
            }
        })
        .collect()
}
