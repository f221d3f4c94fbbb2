//! The WASM variant in a Python host process: the bundle's own `loader.py` under wasmtime-py,
//! timed by `templates/python-host/measure.py` in a child process (`measure --python-host`).

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

const MEASURE_SCRIPT: &str = include_str!("../../templates/python-host/measure.py");

/// The wasmtime-py release `loader.py` is written and tested against (its `WASMTIME_TESTED`).
pub const WASMTIME_PY_VERSION: &str = "51.0.0";

/// A Python that imports wasmtime.
#[derive(Debug, Clone)]
pub struct PythonHost {
    pub python: PathBuf,
    /// wasmtime-py's version there.
    pub wasmtime: String,
}

/// The Python `--python-host` runs: `explicit`, else `$WPI_PYTHON_HOST`, else the venv
/// `python-host` in the tool's cache; it must import wasmtime.
pub fn find_python_host(explicit: Option<&Path>) -> Result<PythonHost> {
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
        Ok(output) if output.status.success() => Ok(PythonHost {
            wasmtime: String::from_utf8_lossy(&output.stdout).trim().to_string(),
            python,
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

/// How much of each thing to time.
#[derive(Debug, Clone, Serialize)]
pub struct PythonHostPlan {
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

impl PythonHostPlan {
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

/// What the script reports: raw timings in µs.
#[derive(Deserialize)]
struct ScriptReport {
    wasmtime: String,
    python: String,
    arrays: String,
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

/// The Python host's figures, and its outputs for every sample (to compare with wasmtime's).
pub struct PythonHostRun {
    pub runtime: String,
    pub variant: SimdLevel,
    pub load: Distribution,
    pub first_inference: Distribution,
    pub steady: Vec<Steady>,
    pub outputs: Vec<u8>,
}

/// Runs the bundle in `bundle_dir` through its `loader.py` in `host`.
pub fn measure_kernel(
    host: &PythonHost,
    bundle_dir: &Path,
    samples_file: &str,
    sample_count: usize,
    plan: &PythonHostPlan,
) -> Result<PythonHostRun> {
    let work = tempfile::tempdir().context("creating a directory for the Python host run")?;
    let script = work.path().join("measure.py");
    std::fs::write(&script, MEASURE_SCRIPT)?;
    let mut spec = serde_json::to_value(plan)?;
    spec["samples"] = bundle_dir.join(samples_file).display().to_string().into();
    spec["count"] = sample_count.into();
    let spec_path = work.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string())?;
    let out = work.path().join("out.json");
    let mut command = Command::new(&host.python);
    command
        .arg(&script)
        .arg(bundle_dir)
        .arg(&spec_path)
        .arg(&out)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    crate::tools::run_logged(
        command,
        work.path(),
        &format!("{} (loader.py under wasmtime-py)", host.python.display()),
        plan.timeout,
    )?;
    let report: ScriptReport = serde_json::from_slice(&crate::fsx::read(&out)?)
        .context("reading the Python host's timings")?;
    if report.steady.len() != plan.batches.len() {
        bail!(
            "the Python host timed {} batch sizes of {}",
            report.steady.len(),
            plan.batches.len()
        );
    }
    let steady = report.steady.iter().map(steady_of).collect();
    Ok(PythonHostRun {
        runtime: format!(
            "wasmtime-py {}, CPython {}, {} arrays",
            report.wasmtime,
            report.python,
            if report.arrays == "numpy" {
                "NumPy"
            } else {
                "array.array"
            }
        ),
        variant: report.variant,
        load: distribution_us(report.load_us.iter().copied()),
        first_inference: distribution_us(report.first_inference_us.iter().copied()),
        steady,
        outputs: base64::engine::general_purpose::STANDARD
            .decode(&report.outputs)
            .context("decoding the Python host's outputs")?,
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
