//! The WASM variant measured where it ships: headless Chromium (the system's, nothing is
//! downloaded) loads the bundle through its own `loader.mjs` from [`crate::serve::Server`], and a
//! measurement page (`templates/browser/bench.html`, served beside the bundle, never shipped)
//! POSTs its figures back. No DevTools protocol is needed, so no npm package either.

use crate::exit::input_error;
use crate::manifest::{BrowserSteady, BrowserTimings, Distribution};
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

/// What the page POSTs (see bench.html).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageResult {
    ok: Option<PageFigures>,
    error: Option<PageError>,
}

#[derive(Deserialize)]
struct PageError {
    name: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageFigures {
    user_agent: String,
    cross_origin_isolated: bool,
    timer_resolution_us: f64,
    load_ms: Vec<f64>,
    first_inference_us: f64,
    outputs: String,
    sweep: Vec<PageSteady>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageSteady {
    batch: usize,
    per_call_us: Vec<f64>,
    calls: usize,
}

/// The bundle's outputs in the browser (all samples in one call) and its timings.
pub struct BrowserRun {
    pub outputs: Vec<u8>,
    pub timings: BrowserTimings,
}

/// Serves `bundle_dir` (its `loader.mjs` and `samples_file`), runs the measurement page in
/// headless `chromium` and returns what it measured.
pub fn measure(
    chromium: &Path,
    bundle_dir: &Path,
    samples_file: &str,
    plan: &BrowserPlan,
) -> Result<BrowserRun> {
    let version = browser_version(chromium)?;
    let mut server = Server::bind(bundle_dir, 0)?;
    let page_plan = json!({
        "loader": "/loader.mjs",
        "samples": format!("/{samples_file}"),
        "loads": plan.loads,
        "batches": plan.batches,
        "minRuns": plan.min_runs,
        "maxRuns": plan.max_runs,
        "budgetMs": plan.steady_budget.as_secs_f64() * 1000.0,
    });
    server.add_page(
        BENCH_PATH,
        BENCH_PAGE
            .replacen(PLAN_SLOT, &page_plan.to_string(), 1)
            .into_bytes(),
    );
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
            BENCH_PATH
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", chromium.display()))?;
    let body = server.serve_until_result(plan.timeout, || match browser.try_wait() {
        Ok(Some(status)) => Err(anyhow!(
            "Chromium exited ({status}) before the page reported"
        )),
        Ok(None) => Ok(()),
        Err(e) => Err(anyhow!("watching Chromium: {e}")),
    });
    let _ = browser.kill();
    let exited = browser.wait_with_output();
    let body = body.map_err(|error| {
        let log = exited
            .map(|o| crate::tools::tail_lines(&String::from_utf8_lossy(&o.stderr), 8))
            .unwrap_or_default();
        anyhow!("{error:#}\nChromium's log:\n{log}")
    })?;
    let result: PageResult =
        serde_json::from_slice(&body).context("reading the measurement page's result")?;
    if let Some(error) = result.error {
        bail!(
            "in Chromium, the bundle failed: {}: {}",
            error.name,
            error.message
        );
    }
    let figures = result
        .ok
        .context("the measurement page sent neither figures nor an error")?;
    into_run(figures, version)
}

fn into_run(figures: PageFigures, version: String) -> Result<BrowserRun> {
    let micros = |values: &[f64]| -> Distribution {
        let durations: Vec<Duration> = values
            .iter()
            .map(|us| Duration::from_secs_f64(us.max(0.0) / 1e6))
            .collect();
        stats::distribution(&durations)
    };
    let load_us: Vec<f64> = figures.load_ms.iter().map(|ms| ms * 1000.0).collect();
    let steady = figures
        .sweep
        .iter()
        .map(|s| {
            let latency = micros(&s.per_call_us);
            BrowserSteady {
                batch: s.batch,
                calls_per_run: s.calls,
                samples_per_second: if latency.median_us > 0.0 {
                    (s.batch as f64 * 1e6 / latency.median_us).round()
                } else {
                    0.0
                },
                latency,
            }
        })
        .collect();
    let outputs = base64::engine::general_purpose::STANDARD
        .decode(&figures.outputs)
        .context("decoding the outputs the page sent")?;
    Ok(BrowserRun {
        outputs,
        timings: BrowserTimings {
            browser: version,
            user_agent: figures.user_agent,
            cross_origin_isolated: figures.cross_origin_isolated,
            timer_resolution_us: (figures.timer_resolution_us * 1000.0).round() / 1000.0,
            load: micros(&load_us),
            first_inference: micros(&[figures.first_inference_us]),
            steady,
            parity: None,
        },
    })
}
