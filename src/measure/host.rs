//! The WASM variant in another host process through the bundle's own loader, timed there by a
//! script of ours in a child process: `loader.py` under wasmtime-py (`measure --python-host`, the
//! sandboxed-plugin deployment; `templates/hosts/measure.py`) or `loader.mjs` in Node
//! (`measure --node`; `templates/hosts/measure.mjs`). Both scripts report the same JSON.

use crate::exit::input_error;
use crate::manifest::kernel::Steady;
use crate::manifest::variant::SimdLevel;
use crate::manifest::{Distribution, TransferBreakdown};
use crate::measure::stats::{distribution_us, samples_per_second};
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The wasmtime-py release `loader.py` is written and tested against (its `WASMTIME_TESTED`).
pub const WASMTIME_PY_VERSION: &str = "51.0.0";

/// The oldest Node `loader.mjs` runs in (global `crypto.subtle`, `fetch`).
const OLDEST_NODE: u32 = 18;

/// Which loader a host process runs the WASM variant through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// `loader.py` under wasmtime-py.
    Python,
    /// `loader.mjs` in Node.
    Node,
}

impl HostKind {
    /// How the human output names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Python => "python host",
            Self::Node => "node",
        }
    }

    /// The bundle file it loads.
    pub fn loader(self) -> &'static str {
        match self {
            Self::Python => "loader.py",
            Self::Node => "loader.mjs",
        }
    }

    fn script(self) -> (&'static str, &'static str) {
        match self {
            Self::Python => (
                "measure.py",
                include_str!("../../templates/hosts/measure.py"),
            ),
            Self::Node => (
                "measure.mjs",
                include_str!("../../templates/hosts/measure.mjs"),
            ),
        }
    }
}

/// A program that runs a bundle's loader: a Python that imports wasmtime, or Node.
#[derive(Debug, Clone)]
pub struct Host {
    pub kind: HostKind,
    pub program: PathBuf,
    /// wasmtime-py's version (Python), or Node's.
    pub version: String,
}

/// The Python `--python-host` runs: `explicit`, else `$WPI_PYTHON_HOST`, else the venv
/// `python-host` in the tool's cache; it must import wasmtime.
pub fn find_python_host(explicit: Option<&Path>) -> Result<Host> {
    let venv = crate::fsx::cache_dir().join("python-host");
    let python = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("WPI_PYTHON_HOST").map(PathBuf::from))
        .unwrap_or_else(|| venv.join("bin/python"));
    let setup = format!(
        "python3 -m venv {venv} && {venv}/bin/pip install wasmtime=={WASMTIME_PY_VERSION} \
         (add --no-index --find-links WHEELHOUSE offline), or pass --python-host PYTHON",
        venv = venv.display()
    );
    let output = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata, wasmtime; print(importlib.metadata.version('wasmtime'))",
        ])
        .output();
    match output {
        Ok(output) if output.status.success() => Ok(Host {
            kind: HostKind::Python,
            version: String::from_utf8_lossy(&output.stdout).trim().to_string(),
            program: python,
        }),
        Ok(_) => Err(input_error(format!(
            "--python-host: {} cannot import wasmtime; install it there (pip install \
             wasmtime=={WASMTIME_PY_VERSION}), or make a venv for it: {setup}",
            python.display()
        ))),
        Err(error) => Err(input_error(format!(
            "--python-host: cannot run {} ({error}); make a venv with wasmtime: {setup}",
            python.display()
        ))),
    }
}

/// The Node `--node` runs: `explicit`, else `$WPI_NODE`, else `node` on PATH; at least
/// [`OLDEST_NODE`].
pub fn find_node(explicit: Option<&Path>) -> Result<Host> {
    let node = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("WPI_NODE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("node"));
    let output = Command::new(&node).arg("--version").output();
    let version = match output {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .trim()
            .trim_start_matches('v')
            .to_string(),
        Ok(output) => {
            return Err(input_error(format!(
                "--node: `{} --version` failed: {}",
                node.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Err(error) => {
            return Err(input_error(format!(
                "--node: cannot run {} ({error}); install Node {OLDEST_NODE} or later, or pass \
                 --node PATH",
                node.display()
            )));
        }
    };
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|major| major < OLDEST_NODE) {
        return Err(input_error(format!(
            "--node: {} is Node {version}; loader.mjs needs Node {OLDEST_NODE} or later",
            node.display()
        )));
    }
    Ok(Host {
        kind: HostKind::Node,
        program: node,
        version,
    })
}

/// How much of each thing to time.
#[derive(Debug, Clone, Serialize)]
pub struct HostPlan {
    pub loads: usize,
    pub batches: Vec<usize>,
    pub warmup_runs: usize,
    pub min_runs: usize,
    pub max_runs: usize,
    #[serde(rename = "steady_budget_s", serialize_with = "seconds")]
    pub steady_budget: Duration,
    #[serde(serialize_with = "seconds")]
    pub call_time_limit: Duration,
    /// The whole run, Python's start included.
    #[serde(skip)]
    pub timeout: Duration,
}

impl HostPlan {
    /// As much as `plan` times in wasmtime: its batches, warm-up and steady runs, and ten loads.
    pub fn like(plan: &crate::measure::timing::TimingPlan) -> Self {
        Self {
            loads: 10,
            batches: plan.batches.clone(),
            warmup_runs: plan.warmup_runs,
            min_runs: 5,
            max_runs: plan.steady_runs,
            steady_budget: plan.steady_budget,
            call_time_limit: plan.call_time_limit,
            timeout: Duration::from_secs(300),
        }
    }
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// What either script reports: raw timings in µs.
#[derive(Deserialize)]
struct ScriptReport {
    runtime: String,
    variant: SimdLevel,
    load_us: Vec<f64>,
    first_inference_us: Vec<f64>,
    steady: Vec<ScriptSteady>,
    outputs: String,
}

#[derive(Deserialize)]
struct ScriptSteady {
    batch: usize,
    call_us: Vec<f64>,
    upload_us: Vec<f64>,
    compute_us: Vec<f64>,
    download_us: Vec<f64>,
}

/// A host's figures, and its outputs for every sample (to compare with wasmtime's).
pub struct HostRun {
    pub runtime: String,
    pub variant: SimdLevel,
    pub load: Distribution,
    pub first_inference: Distribution,
    pub steady: Vec<Steady>,
    pub outputs: Vec<u8>,
}

/// Runs the bundle in `bundle_dir` through its loader in `host`.
pub fn measure_kernel(
    host: &Host,
    bundle_dir: &Path,
    samples_file: &str,
    sample_count: usize,
    plan: &HostPlan,
) -> Result<HostRun> {
    let work = tempfile::tempdir().context("creating a directory for the host run")?;
    let (script_name, script_text) = host.kind.script();
    let script = work.path().join(script_name);
    std::fs::write(&script, script_text)?;
    let mut spec = serde_json::to_value(plan)?;
    spec["samples"] = bundle_dir.join(samples_file).display().to_string().into();
    spec["count"] = sample_count.into();
    let spec_path = work.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string())?;
    let out = work.path().join("out.json");
    let mut command = Command::new(&host.program);
    command
        .arg(&script)
        .arg(bundle_dir)
        .arg(&spec_path)
        .arg(&out)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    crate::tools::run_logged(
        command,
        work.path(),
        &format!("{} ({})", host.program.display(), host.kind.loader()),
        plan.timeout,
    )?;
    let report: ScriptReport = serde_json::from_slice(&crate::fsx::read(&out)?)
        .with_context(|| format!("reading the {}'s timings", host.kind.label()))?;
    if report.steady.len() != plan.batches.len() {
        bail!(
            "the {} timed {} batch sizes of {}",
            host.kind.label(),
            report.steady.len(),
            plan.batches.len()
        );
    }
    Ok(HostRun {
        runtime: report.runtime,
        variant: report.variant,
        load: distribution_us(report.load_us.iter().copied()),
        first_inference: distribution_us(report.first_inference_us.iter().copied()),
        steady: report.steady.iter().map(steady_of).collect(),
        outputs: base64::engine::general_purpose::STANDARD
            .decode(&report.outputs)
            .with_context(|| format!("decoding the {}'s outputs", host.kind.label()))?,
    })
}

fn steady_of(batch: &ScriptSteady) -> Steady {
    let latency = distribution_us(batch.call_us.iter().copied());
    Steady {
        batch: batch.batch,
        samples_per_second: samples_per_second(batch.batch, &latency),
        latency,
        transfer: Some(TransferBreakdown {
            upload_us: distribution_us(batch.upload_us.iter().copied()).median_us,
            compute_us: distribution_us(batch.compute_us.iter().copied()).median_us,
            download_us: distribution_us(batch.download_us.iter().copied()).median_us,
        }),
        threads: None,
    }
}
