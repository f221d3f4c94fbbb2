//! The WASM variant in another host process through the bundle's own loader, timed there by a
//! script of ours in a child process: `loader.py` under wasmtime-py (`measure --python-host`, the
//! sandboxed-plugin deployment; `templates/hosts/measure.py`) or `loader.mjs` in Node
//! (`measure --node`; `templates/hosts/measure.mjs`). Both scripts report the same JSON.

use crate::exit::input_error;
use crate::manifest::Distribution;
use crate::manifest::kernel::Steady;
use crate::manifest::variant::SimdLevel;
use crate::measure::stats::{distribution_us, samples_per_second, transfer_medians};
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

/// sha256 of every platform wheel of wasmtime-py [`WASMTIME_PY_VERSION`] on PyPI (its
/// platform-independent wheel ships no engine, so it is left out): what the tool installs into its
/// cache is checked against them.
const WASMTIME_PY_WHEELS: [&str; 8] = [
    "cb4a48bae3de3c0ca99a67e05debbe4bfe48bea7f25ac71ee42fb3fd681ef93c", // manylinux1_x86_64
    "4c1ea115c98b1b0fe6dca5f7feb72691ec570fd153a6f9402920233118cacadb", // manylinux2014_aarch64
    "86f7e0d10facc02230a91531ecf09705a0ef81ef17cc96f5880d0655b9e95621", // musllinux_1_2_x86_64
    "e830918bde48ba39c514de5e8fe4662ce2810ac9d82dc421daaf550fe7a7dd54", // musllinux_1_2_aarch64
    "caa082345cef1a9d70d493a105f620e3c881b9e9a515b153b1d4a5e5bc14e5aa", // macosx_10_13_x86_64
    "ace48412f269c8f29eb9f160b5259c7895720f986f99a8e84a625bba2d457913", // macosx_11_0_arm64
    "ee0f1c5da515e1b8caaeb755102421a610704777830771d06290fb1e37a9cc49", // win_amd64
    "7f5e0f67a886fcf5d5bc218ae7052b34ee52c688d5db11dd5f0fa2d5e39c79fd", // win_arm64
];

/// Whether the tool may install wasmtime-py into its cache venv when that lacks it, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostInstall {
    /// `--offline` or `--no-install`: name the commands instead.
    Never,
    /// pip's configured index (PyPI).
    FromIndex,
    /// Only this directory of wheels (`--wheelhouse DIR`), offline.
    FromWheelhouse(PathBuf),
}

impl HostInstall {
    /// What `--wheelhouse DIR` and `--offline` (or `--no-install`) allow: the wheelhouse when
    /// given, else nothing offline, else pip's index.
    pub fn from_flags(wheelhouse: Option<&Path>, offline: bool) -> Self {
        match wheelhouse {
            Some(dir) => Self::FromWheelhouse(dir.to_path_buf()),
            None if offline => Self::Never,
            None => Self::FromIndex,
        }
    }
}

/// The Python `--python-host` runs: `explicit`, else `$WPI_PYTHON_HOST`, else the venv
/// `python-host` in the tool's cache, which gets wasmtime-py (hash-checked) as `install` allows
/// when it lacks it. It must import wasmtime.
pub fn find_python_host(explicit: Option<&Path>, install: &HostInstall) -> Result<Host> {
    let venv = crate::fsx::cache_dir().join("python-host");
    let chosen = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("WPI_PYTHON_HOST").map(PathBuf::from));
    let python = chosen.clone().unwrap_or_else(|| venv.join("bin/python"));
    if chosen.is_none() && *install != HostInstall::Never && wasmtime_version(&python).is_err() {
        install_cache_venv(&venv, install)?;
    }
    let setup = format!(
        "python3 -m venv {venv} && {venv}/bin/pip install wasmtime=={WASMTIME_PY_VERSION} \
         (add --no-index --find-links WHEELHOUSE offline), let the tool do it (without \
         --offline, or with --wheelhouse DIR), or pass --python-host PYTHON",
        venv = venv.display()
    );
    match wasmtime_version(&python) {
        Ok(Some(version)) => Ok(Host {
            kind: HostKind::Python,
            version,
            program: python,
        }),
        Ok(None) => Err(input_error(format!(
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

/// wasmtime-py's version in `python`; `None` when it does not import there.
fn wasmtime_version(python: &Path) -> std::io::Result<Option<String>> {
    let output = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata, wasmtime; print(importlib.metadata.version('wasmtime'))",
        ])
        .output()?;
    Ok(output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
}

/// Makes the cache venv `venv` with wasmtime-py [`WASMTIME_PY_VERSION`], every wheel checked
/// against [`WASMTIME_PY_WHEELS`]: built beside it and renamed into place, so a failed or
/// concurrent install never leaves a half-made one there.
fn install_cache_venv(venv: &Path, install: &HostInstall) -> Result<()> {
    let parent = venv
        .parent()
        .context("the cache venv has no parent directory")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix("python-host.")
        .tempdir_in(parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(staging.path())
        .status()
        .context("running python3 -m venv for the Python host (is python3 on PATH?)")?;
    if !status.success() {
        bail!(
            "python3 -m venv {} failed ({status})",
            staging.path().display()
        );
    }
    let hashes: Vec<String> = WASMTIME_PY_WHEELS
        .iter()
        .map(|sha| format!("--hash=sha256:{sha}"))
        .collect();
    let requirements = staging.path().join("requirements.txt");
    std::fs::write(
        &requirements,
        format!("wasmtime=={WASMTIME_PY_VERSION} {}\n", hashes.join(" ")),
    )?;
    let mut command = Command::new(staging.path().join("bin/python"));
    command.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--require-hashes",
        "-r",
    ]);
    command.arg(&requirements);
    if let HostInstall::FromWheelhouse(dir) = install {
        if !dir.is_dir() {
            return Err(input_error(format!(
                "--wheelhouse {}: not a directory",
                dir.display()
            )));
        }
        command.arg("--no-index").arg("--find-links").arg(dir);
    }
    let output = command
        .output()
        .context("running pip in the Python host's venv")?;
    if !output.status.success() {
        return Err(input_error(format!(
            "installing wasmtime-py {WASMTIME_PY_VERSION} into the Python host's venv failed{}: \
             {}\nOffline, pass --wheelhouse DIR holding its wheel for this platform \
             (pip download wasmtime=={WASMTIME_PY_VERSION} --no-deps --only-binary=:all:), or \
             --python-host PYTHON",
            match install {
                HostInstall::FromWheelhouse(_) => " (from --wheelhouse only)",
                _ => "",
            },
            crate::tools::tail_lines(&String::from_utf8_lossy(&output.stderr), 8)
        )));
    }
    if venv.exists() {
        // A venv there without wasmtime: replaced whole.
        std::fs::remove_dir_all(venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    let made = staging.keep();
    if let Err(error) = std::fs::rename(&made, venv) {
        let _ = std::fs::remove_dir_all(&made);
        // Another run put one there first: that one serves.
        if wasmtime_version(&venv.join("bin/python"))
            .ok()
            .flatten()
            .is_none()
        {
            return Err(error).with_context(|| format!("moving the venv to {}", venv.display()));
        }
    }
    Ok(())
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
        transfer: transfer_medians(&batch.upload_us, &batch.compute_us, &batch.download_us),
        threads: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.ci/run` installs the Python host the tests use from `.ci/python-host.txt`: the same
    /// wasmtime-py release, and only wheels whose hashes the tool itself would accept.
    #[test]
    fn the_ci_pin_is_the_release_and_wheels_the_tool_installs() {
        let pins = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/python-host.txt"),
        )
        .unwrap();
        let block = pins
            .split("wasmtime==")
            .nth(1)
            .expect(".ci/python-host.txt pins wasmtime");
        let block = block.split("numpy==").next().unwrap();
        assert!(
            block.starts_with(&format!("{WASMTIME_PY_VERSION} ")),
            "{block}"
        );
        let hashes: Vec<&str> = block
            .split("--hash=sha256:")
            .skip(1)
            .map(|h| &h[..64])
            .collect();
        assert!(!hashes.is_empty());
        for hash in hashes {
            assert!(WASMTIME_PY_WHEELS.contains(&hash), "{hash} is not pinned");
        }
    }

    #[test]
    fn installing_follows_the_flags() {
        let dir = Path::new("/wheels");
        assert_eq!(
            HostInstall::from_flags(Some(dir), true),
            HostInstall::FromWheelhouse(dir.into())
        );
        assert_eq!(HostInstall::from_flags(None, true), HostInstall::Never);
        assert_eq!(HostInstall::from_flags(None, false), HostInstall::FromIndex);
    }
}
