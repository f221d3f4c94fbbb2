//! Running the app: inside a Pyodide distribution under Node (`templates/pyodide/runner.mjs`),
//! or in a native CPython (`templates/python/runner.py`). Both write one result shape.

use crate::manifest::python::{BootPhases, FreeHeapZeroed, SnapshotStaticData};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NODE_RUNNER: &str = include_str!("../../templates/pyodide/runner.mjs");
const CALL_ENTRY: &str = include_str!("../../templates/pyodide/call-entry.js");
const RUNTIME_HOOKS: &str = include_str!("../../templates/pyodide/runtime-hooks.js");
/// Where `templates/pyodide/call-entry.js` goes in the runner and the loader.
pub const CALL_ENTRY_SLOT: &str = "// {{CALL_ENTRY}}";
/// Where `templates/pyodide/runtime-hooks.js` goes in the runner and the loader.
pub const RUNTIME_HOOKS_SLOT: &str = "// {{RUNTIME_HOOKS}}";

/// `template` with the JS that the runner and the loader share in its slots.
pub fn with_shared_js(template: &str) -> String {
    template
        .replace(CALL_ENTRY_SLOT, CALL_ENTRY.trim_end())
        .replace(RUNTIME_HOOKS_SLOT, RUNTIME_HOOKS.trim_end())
}
const PYTHON_RUNNER: &str = include_str!("../../templates/python/runner.py");
/// Strips docstrings and comments; run by the distribution's interpreter (`strip` mode).
pub const STRIP_SOURCE: &str = include_str!("../../templates/pyodide/strip_source.py");

/// How long one run may take before it is killed: a stock Pyodide boots in ~3.5 s here.
pub const RUN_TIME_LIMIT: Duration = Duration::from_secs(300);

/// What one run measured and produced.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRun {
    /// `loadPyodide` (0 for native CPython, whose start-up is timed separately).
    pub boot_ms: f64,
    /// Unpacking the app and importing the entry module.
    pub import_ms: f64,
    pub first_inference_ms: f64,
    /// One call per sample per pass, after the first pass.
    pub steady_us: Vec<f64>,
    /// The entry's result for every sample, in order.
    pub outputs: Vec<serde_json::Value>,
    /// A split runtime: how long loading its secondary module took, if anything loaded it.
    #[serde(default)]
    pub secondary_ms: Option<f64>,
    /// Native runs: the watched modules the app imported.
    #[serde(default)]
    pub imported: Vec<String>,
    /// Native runs: the interpreter's version.
    #[serde(default)]
    pub python: Option<String>,
    /// Pyodide runs: medians of one more pass's calls in parts, µs: the sample converted to
    /// Python, the entry, the result converted back.
    #[serde(default)]
    pub boundary_us: Option<[f64; 3]>,
    /// Native runs: where one more pass over the samples spent its time.
    #[serde(default)]
    pub attribution: Option<RunAttribution>,
    /// Pyodide runs: the boot in phases (null where the runner could not time them).
    #[serde(default)]
    pub boot_phases: Option<BootPhases>,
    #[serde(flatten)]
    pub trace: Option<Trace>,
}

/// `runner.py`'s profile of one pass (see [`crate::manifest::python::TimeAttribution`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAttribution {
    pub calls: usize,
    pub python_share: f64,
    pub c_share: f64,
    pub boundary_share: f64,
    pub hottest: Vec<RunHotFunction>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunHotFunction {
    pub function: String,
    pub share: f64,
}

/// What a trace run saw the interpreter import, and the static import closure of the app.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// Modules imported by `loadPyodide` alone.
    pub boot_modules: Vec<String>,
    /// Every module in `sys.modules` after the app ran all samples and formatted an error, with
    /// its origin (a path, `built-in`, `frozen` or none).
    pub loaded: BTreeMap<String, Option<String>>,
    /// The app's static import closure: every import in its own code (lazy, conditional and
    /// `importlib.import_module("…")` included) and what importing those runs.
    #[serde(rename = "static")]
    pub static_modules: BTreeMap<String, Option<String>>,
    /// Files opened through Python's `open` audit event.
    pub opened: Vec<String>,
    /// The interpreter's `sys.path`.
    pub path: Vec<String>,
    /// Module → the module whose import pulled it in: seen by the `import` audit event while the
    /// app ran, else found in the static walk.
    #[serde(default)]
    pub importers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Trace,
    Measure,
}

/// One app run's inputs.
pub struct RunConfig<'a> {
    pub entry: &'a str,
    pub samples: &'a Path,
    /// Steady passes over all samples.
    pub passes: usize,
    /// Packages of the distribution's lock to load after boot.
    pub packages: &'a [String],
}

/// How a run boots Pyodide.
#[derive(Debug, Default, Clone, Copy)]
pub struct Boot<'a> {
    /// From this memory snapshot.
    pub snapshot: Option<&'a Path>,
    /// A split runtime: load its secondary module right after boot, so every sample runs on it.
    pub load_secondary: bool,
    /// A runtime instrumented by `wasm-split --instrument`: write its profile here at the end.
    pub profile_out: Option<&'a Path>,
    /// A runtime instrumented by [`crate::python::static_reads`]: which bytes below the address
    /// given were read, one byte each, written to the path at the end.
    pub static_reads: Option<(usize, &'a Path)>,
    /// A runtime whose linking is planned ([`crate::python::link_plan`]): fail the boot if the
    /// plan left out a table slot that Emscripten's glue looked up.
    pub check_link_plan: bool,
    /// Boot as stock Pyodide boots, by `loadPyodide` alone; otherwise as a bundle's loader.mjs
    /// does, the runtime compiled from the start of the boot (`compileEarly`).
    pub stock: bool,
}

/// Runs the app in the Pyodide distribution at `index_dir` (split or not), with the app unpacked
/// from `app_zip`.
pub fn pyodide(
    index_dir: &Path,
    app_zip: &Path,
    mode: Mode,
    run: &RunConfig,
    boot: &Boot,
) -> Result<AppRun> {
    let work = tempfile::tempdir().context("creating a directory for the Node runner")?;
    let out = work.path().join("result.json");
    let mut config = node_config(index_dir, app_zip, run, &out)?;
    config["mode"] = match mode {
        Mode::Trace => "trace",
        Mode::Measure => "measure",
    }
    .into();
    if let Some(snapshot) = boot.snapshot {
        config["snapshot"] = serde_json::to_value(absolute(snapshot)?)?;
        // The runner checks it as loader.mjs does, inside the timed boot.
        config["snapshotIntegrity"] = crate::fsx::sri_sha256(&crate::fsx::read(snapshot)?).into();
    }
    if let Some(profile) = boot.profile_out {
        config["profileOut"] = serde_json::to_value(absolute(profile)?)?;
    }
    if let Some((end, out)) = boot.static_reads {
        config["staticReads"] = serde_json::json!({ "end": end, "out": absolute(out)? });
    }
    config["loadSecondary"] = boot.load_secondary.into();
    config["checkLinkPlan"] = boot.check_link_plan.into();
    config["compileEarly"] = (!boot.stock).into();
    run_node(&config, work.path())?;
    read_result(&out)
}

/// Pyodide's memory after boot and the entry module's import, as a bundle ships it
/// ([`crate::python::snapshot`]), and what was done to make it compress.
pub struct MemorySnapshot {
    pub bytes: Vec<u8>,
    pub free_heap_zeroed: FreeHeapZeroed,
    pub static_data: SnapshotStaticData,
}

/// Boots the distribution at `index_dir`, imports the app's entry module (and with `warm` calls
/// the entry on the first sample), collects garbage, zeroes the free heap, takes Pyodide's memory
/// snapshot and takes the static data of the runtime it ran (`index_dir/pyodide.asm.wasm`) out
/// of it.
pub fn make_snapshot(
    index_dir: &Path,
    app_zip: &Path,
    run: &RunConfig,
    warm: bool,
) -> Result<MemorySnapshot> {
    let work = tempfile::tempdir().context("creating a directory for the Node runner")?;
    let out = work.path().join("snapshot.bin");
    let mut config = node_config(index_dir, app_zip, run, &out)?;
    config["mode"] = "snapshot".into();
    config["warm"] = warm.into();
    run_node(&config, work.path())?;
    let zeroed = work.path().join("snapshot.bin.json");
    let encoded = crate::python::snapshot::encode(
        &crate::fsx::read(&out)?,
        &crate::fsx::read(&index_dir.join("pyodide.asm.wasm"))?,
    )
    .context("taking the runtime's static data out of the memory snapshot")?;
    Ok(MemorySnapshot {
        bytes: encoded.bytes,
        free_heap_zeroed: serde_json::from_slice(&crate::fsx::read(&zeroed)?)
            .with_context(|| format!("reading {}", zeroed.display()))?,
        static_data: encoded.static_data,
    })
}

/// `.pyc` bytes (by zip entry name, `x/y.pyc`) for every `.py` in the stdlib `zip`, compiled by
/// the interpreter of the distribution at `index_dir`.
pub fn compile_stdlib(index_dir: &Path, zip: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let work = tempfile::tempdir().context("creating a directory for the Node runner")?;
    let zip_path = work.path().join("stdlib.zip");
    crate::fsx::write(&zip_path, zip)?;
    let out = work.path().join("compiled.json");
    let config = serde_json::json!({
        "mode": "compile",
        "indexURL": absolute(index_dir)?,
        "zip": zip_path,
        "out": out,
    });
    run_node(&config, work.path())?;
    let compiled = crate::fsx::read(&out)?;
    let mut deserializer = serde_json::Deserializer::from_slice(&compiled);
    base64_map(&mut deserializer).context("reading the compiled modules")
}

/// The runner's `{name: base64}` maps, as `{name: bytes}`.
fn base64_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<BTreeMap<String, Vec<u8>>, D::Error> {
    use base64::Engine as _;
    let encoded = BTreeMap::<String, String>::deserialize(deserializer)?;
    encoded
        .into_iter()
        .map(|(name, text)| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(|bytes| (name.clone(), bytes))
                .map_err(|e| serde::de::Error::custom(format!("{name}: not base64: {e}")))
        })
        .collect()
}

/// Sources stripped of docstrings and comments by [`strip_sources`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrippedSources {
    /// The files that changed, by name; the others ship as they are.
    #[serde(deserialize_with = "base64_map")]
    pub stripped: BTreeMap<String, Vec<u8>>,
    /// Files that keep their docstrings (and lose only comments, if anything), and why.
    pub docstrings_kept: BTreeMap<String, String>,
}

/// Strips docstrings and comments from the `.py` files of `zip` with the distribution's own
/// interpreter (`templates/pyodide/strip_source.py`): every line keeps its number, and a file
/// changes only if its stripped source parses to the same code.
pub fn strip_sources(index_dir: &Path, zip: &[u8]) -> Result<StrippedSources> {
    let work = tempfile::tempdir().context("creating a directory for the Node runner")?;
    let zip_path = work.path().join("sources.zip");
    crate::fsx::write(&zip_path, zip)?;
    let script = work.path().join("strip_source.py");
    crate::fsx::write(&script, STRIP_SOURCE.as_bytes())?;
    let out = work.path().join("stripped.json");
    let config = serde_json::json!({
        "mode": "strip",
        "indexURL": absolute(index_dir)?,
        "zip": zip_path,
        "script": script,
        "out": out,
    });
    run_node(&config, work.path())?;
    serde_json::from_slice(&crate::fsx::read(&out)?).context("reading the stripped sources")
}

fn node_config(
    index_dir: &Path,
    app_zip: &Path,
    run: &RunConfig,
    out: &Path,
) -> Result<serde_json::Value> {
    let secondary = index_dir.join(crate::python::split::SECONDARY_FILE);
    Ok(serde_json::json!({
        "indexURL": absolute(index_dir)?,
        "secondary": if secondary.exists() { Some(absolute(&secondary)?) } else { None },
        "app": absolute(app_zip)?,
        "entry": run.entry,
        "samples": absolute(run.samples)?,
        "passes": run.passes,
        "packages": run.packages,
        "out": out,
    }))
}

fn run_node(config: &serde_json::Value, work: &Path) -> Result<()> {
    let runner = work.join("runner.mjs");
    crate::fsx::write(&runner, with_shared_js(NODE_RUNNER).as_bytes())?;
    let config_path = work.join("config.json");
    crate::fsx::write(&config_path, config.to_string().as_bytes())?;
    let mut command = Command::new("node");
    command.arg(&runner).arg(&config_path);
    crate::tools::run_logged(command, work, "node (Pyodide)", RUN_TIME_LIMIT).map_err(|error| {
        match app_failure(config) {
            // Stock Pyodide runs the app first: what fails there is the project's to fix. Once
            // stock has run every sample, a bundle that fails them is the build's failure.
            Some(failure) if config["mode"] == "trace" => crate::exit::input_error(failure),
            Some(failure) => anyhow::anyhow!(failure),
            None => error,
        }
    })
}

/// Runs the app in a native CPython, importing it (and its dependencies) from `paths`; reports
/// which of the top-level modules in `watch` the app imported.
pub fn native(python: &Path, paths: &[&Path], run: &RunConfig, watch: &[String]) -> Result<AppRun> {
    let work = tempfile::tempdir().context("creating a directory for the Python runner")?;
    let runner = work.path().join("runner.py");
    crate::fsx::write(&runner, PYTHON_RUNNER.as_bytes())?;
    let out = work.path().join("result.json");
    let config = serde_json::json!({
        "paths": paths.iter().map(|p| absolute(p)).collect::<Result<Vec<_>>>()?,
        "entry": run.entry,
        "samples": absolute(run.samples)?,
        "passes": run.passes,
        "watch": watch,
        "out": out,
    });
    let config_path = work.path().join("config.json");
    crate::fsx::write(&config_path, config.to_string().as_bytes())?;
    let mut command = Command::new(python);
    // No bytecode written into the user's project.
    command
        .arg("-B")
        .arg(&runner)
        .arg(&config_path)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    crate::tools::run_logged(
        command,
        work.path(),
        &python.display().to_string(),
        RUN_TIME_LIMIT,
    )
    .map_err(|error| app_failure(&config).map_or(error, crate::exit::input_error))?;
    read_result(&out)
}

/// Wall time of `python -c pass`: what a native process pays before importing anything.
pub fn python_startup(python: &Path) -> Result<Duration> {
    let started = Instant::now();
    let status = Command::new(python)
        .args(["-c", "pass"])
        .status()
        .with_context(|| format!("running {}", python.display()))?;
    if !status.success() {
        bail!("{} -c pass failed ({status})", python.display());
    }
    Ok(started.elapsed())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// What a runner writes to `<out>.app-error.json` when the app failed.
#[derive(Debug, Deserialize)]
struct AppFailure {
    /// "import" (importing the entry's module or finding its function), "sample" (the entry
    /// raised), "output" (it returned what JSON cannot hold) or "nondeterministic" (two calls
    /// on one sample returned different outputs).
    stage: String,
    sample: Option<usize>,
    /// Python's traceback, ending in the exception's line; for "output", what was returned; for
    /// "nondeterministic", both outputs.
    message: String,
}

/// What the app did wrong, if the runner with `config` wrote it down: the sample, and Python's
/// traceback or what the output held.
fn app_failure(config: &serde_json::Value) -> Option<String> {
    let out = Path::new(config["out"].as_str()?);
    let file = out.with_file_name(format!("{}.app-error.json", out.file_name()?.to_str()?));
    let failure: AppFailure = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    let entry = config["entry"].as_str().unwrap_or("the entry");
    let traceback = failure.message.trim_end();
    let with_traceback = |what: String| {
        if traceback == exception_line(traceback) {
            what
        } else {
            format!("{what}\n{traceback}")
        }
    };
    let sample = |index: usize| {
        format!(
            "sample {index} of {} (counting from 0)",
            config["samples"].as_str().unwrap_or("the samples")
        )
    };
    let message = match (failure.stage.as_str(), failure.sample) {
        ("sample", Some(index)) => with_traceback(format!(
            "{}: `{entry}` raised {}",
            sample(index),
            exception_line(traceback)
        )),
        ("output", Some(index)) => format!(
            "{}: `{entry}` returned {traceback}, which JSON cannot hold: outputs are compared \
             and stored as JSON (dicts, lists, strings, finite numbers, booleans, None)",
            sample(index)
        ),
        ("nondeterministic", Some(index)) => format!(
            "{}: `{entry}` returned different outputs for the same input ({traceback}): the \
             shaken bundle is checked by returning exactly what stock Pyodide returns; make the \
             entry deterministic (seed its random numbers, leave the clock out of outputs)",
            sample(index)
        ),
        _ => with_traceback(format!(
            "importing `{entry}` raised {}",
            exception_line(traceback)
        )),
    };
    Some(message)
}

/// A traceback's exception line: the first unindented line after the last frame (Pyodide may
/// add lines of advice after it), else the first line.
fn exception_line(traceback: &str) -> &str {
    let lines: Vec<&str> = traceback.lines().collect();
    let after_frames = lines
        .iter()
        .rposition(|line| line.starts_with("  File "))
        .map_or(0, |frame| frame + 1);
    lines[after_frames..]
        .iter()
        .find(|line| !line.is_empty() && !line.starts_with(char::is_whitespace))
        .or(lines.first())
        .copied()
        .unwrap_or_default()
}

fn read_result(path: &Path) -> Result<AppRun> {
    let bytes = crate::fsx::read(path)?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("reading the runner's result {}", path.display()))
}

/// The first sample whose outputs differ, comparing the JSON values exactly.
pub fn first_difference(a: &[serde_json::Value], b: &[serde_json::Value]) -> Option<usize> {
    (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))
}

/// Runs the ES module `script` with Node in `dir` (tests): it must succeed; returns its stdout.
#[cfg(test)]
pub(crate) fn node_script_in(dir: &Path, script: &str) -> String {
    crate::fsx::write(&dir.join("script.mjs"), script.as_bytes()).unwrap();
    let output = Command::new("node")
        .arg("script.mjs")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_and_loader_both_get_the_shared_js() {
        let loader = include_str!("../../templates/pyodide/loader.mjs");
        for template in [NODE_RUNNER, loader] {
            assert_eq!(template.matches(CALL_ENTRY_SLOT).count(), 1);
            assert_eq!(template.matches(RUNTIME_HOOKS_SLOT).count(), 1);
            let filled = with_shared_js(template);
            assert!(filled.contains("function callEntry(pyodide, entry, input, parts)"));
            assert!(filled.contains("function splitRuntime(readSecondary)"));
            assert!(filled.contains("function shippedSnapshot(file)"));
            assert!(!filled.contains(CALL_ENTRY_SLOT) && !filled.contains(RUNTIME_HOOKS_SLOT));
        }
    }

    /// JSON's null goes into the app as None and comes back as null, with its key, as Pyodide's
    /// own conversions would not (null → jsnull, None → undefined): run on a stand-in for
    /// Pyodide that converts as it does, the caller's input untouched.
    #[test]
    fn null_is_none_both_ways_through_call_entry() {
        let work = tempfile::tempdir().unwrap();
        let script = format!(
            "{CALL_ENTRY}\n{}",
            r#"
const pyodide = { toPy: (value) => value };
let received;
const entry = (argument) => {
  received = argument;
  return { toJs: () => ({ largest: undefined, values: [undefined, 1], nested: { gone: undefined } }), destroy() {} };
};
const input = { values: [null, 3], nested: { none: null, list: [1, 2] }, kept: [4, 5] };
const output = callEntry(pyodide, entry, input);
console.log(JSON.stringify({
  received: [received.values[0] === undefined, received.nested.none === undefined, received.kept === input.kept],
  unchanged: input.values[0] === null && input.nested.none === null,
  output,
  bare: callEntry(pyodide, () => undefined, null),
}));
"#
        );
        let stdout = node_script_in(work.path(), &script);
        let seen: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            seen,
            serde_json::json!({
                "received": [true, true, true],
                "unchanged": true,
                "output": {"largest": null, "values": [null, 1], "nested": {"gone": null}},
                "bare": null,
            })
        );
    }

    /// The text of runtime-hooks.js's ZERO_SCAN_WASM.
    const ZERO_SCAN_WAT: &str = r#"
(module
  (import "m" "memory" (memory 0))
  (func (export "nonzero") (param $from i32) (param $to i32) (result i32)
    (local $acc i64)
    (loop $words
      (local.set $acc (i64.or (local.get $acc) (i64.load (local.get $from))))
      (local.set $from (i32.add (local.get $from) (i32.const 8)))
      (br_if $words (i32.lt_u (local.get $from) (local.get $to))))
    (i64.ne (local.get $acc) (i64.const 0))))
"#;

    /// The bytes in runtime-hooks.js are ZERO_SCAN_WAT's (its name section aside), and the
    /// module finds one non-zero byte among zeros, run in Node on a memory of its own.
    #[test]
    fn the_zero_scan_module_is_its_wat() {
        let start = RUNTIME_HOOKS.find("const ZERO_SCAN_WASM").unwrap();
        let array = &RUNTIME_HOOKS[start..];
        let array = &array[array.find('[').unwrap() + 1..array.find(']').unwrap()];
        let shipped: Vec<u8> = array
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.trim().parse().unwrap())
            .collect();
        let sections = |bytes: &[u8]| -> Vec<Vec<u8>> {
            wasmparser::Parser::new(0)
                .parse_all(bytes)
                .filter_map(|payload| match payload.unwrap() {
                    wasmparser::Payload::CustomSection(_) => None,
                    other => other.as_section().map(|(_, range)| bytes[range].to_vec()),
                })
                .collect()
        };
        assert_eq!(
            sections(&shipped),
            sections(&wat::parse_str(ZERO_SCAN_WAT).unwrap())
        );
        let work = tempfile::tempdir().unwrap();
        let script = format!(
            "{RUNTIME_HOOKS}\n{}",
            r#"
const memory = new WebAssembly.Memory({ initial: 1 });
const { nonzero } = new WebAssembly.Instance(new WebAssembly.Module(ZERO_SCAN_WASM), { m: { memory } }).exports;
const before = [nonzero(0, 4096), nonzero(4096, 65536)];
new Uint8Array(memory.buffer)[4101] = 1;
console.log(JSON.stringify([...before, nonzero(0, 4096), nonzero(4096, 8192), nonzero(8192, 65536)]));
"#
        );
        let stdout = node_script_in(work.path(), &script);
        assert_eq!(stdout.trim(), "[0,0,0,1,0]");
    }

    /// The native runner reports the app's exception as Pyodide's runner does: an input error
    /// naming the sample, with the traceback from the app's frames on.
    #[test]
    fn an_exception_in_the_native_run_names_the_sample() {
        let app = tempfile::tempdir().unwrap();
        std::fs::write(
            app.path().join("halves.py"),
            "def half(x):\n    return 1 / x if x else 1 / 0\n",
        )
        .unwrap();
        let samples = app.path().join("samples.json");
        std::fs::write(&samples, "[2, 4, 0, 8]").unwrap();
        let run = RunConfig {
            entry: "halves:half",
            samples: &samples,
            passes: 1,
            packages: &[],
        };
        let error = native(Path::new("python3"), &[app.path()], &run, &[]).unwrap_err();
        assert!(crate::exit::code_for(&error) == std::process::ExitCode::from(crate::exit::USAGE));
        let message = format!("{error:#}");
        assert!(
            message.contains("sample 2 of ")
                && message.contains("`halves:half` raised ZeroDivisionError: division by zero"),
            "{message}"
        );
        assert!(
            message.contains("halves.py\", line 2, in half"),
            "{message}"
        );
        assert!(!message.contains("runner.py"), "{message}");

        std::fs::write(
            app.path().join("halves.py"),
            "def half(x):\n    return {x / 2}\n",
        )
        .unwrap();
        let message = format!(
            "{:#}",
            native(Path::new("python3"), &[app.path()], &run, &[]).unwrap_err()
        );
        assert!(
            message.contains("sample 0 of ")
                && message.contains("`halves:half` returned what json.dumps refused (TypeError: Object of type set is not JSON serializable), which JSON cannot hold"),
            "{message}"
        );

        std::fs::write(app.path().join("halves.py"), "import no_such_module\n").unwrap();
        let error = native(Path::new("python3"), &[app.path()], &run, &[]).unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains(
                "importing `halves:half` raised ModuleNotFoundError: No module named 'no_such_module'"
            ),
            "{message}"
        );
    }

    #[test]
    fn the_exception_line_is_found_after_the_frames_and_before_advice() {
        let traceback = "Traceback (most recent call last):\n  File \"/app/m.py\", line 3, in <module>\n    import numpy\nModuleNotFoundError: No module named 'numpy'\nThe module 'numpy' is included in the Pyodide distribution, but it is not installed.\nYou can install it by calling:\n  await micropip.install(\"numpy\") in Python";
        assert_eq!(
            exception_line(traceback),
            "ModuleNotFoundError: No module named 'numpy'"
        );
        let one_line = "AttributeError: module 'm' has no attribute 'f'";
        assert_eq!(exception_line(one_line), one_line);
    }

    /// `compileEarly` hands the module it compiled to an instantiation of the same file, read
    /// from disk (Node) or fetched (browsers: Pyodide's own fetch gets the stand-in, so the file
    /// is fetched once), compiles anything else as usual, and puts everything back.
    #[test]
    fn the_runtime_compiled_early_is_the_one_instantiated() {
        let work = tempfile::tempdir().unwrap();
        let runtime = wat::parse_str(r#"(module (func (export "f") (result i32) i32.const 7))"#);
        let other = wat::parse_str(r#"(module (func (export "f") (result i32) i32.const 8))"#);
        std::fs::write(work.path().join("runtime.wasm"), runtime.unwrap()).unwrap();
        std::fs::write(work.path().join("other.wasm"), other.unwrap()).unwrap();
        let script = format!(
            "{RUNTIME_HOOKS}\n{}",
            r#"
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { Buffer } from "node:buffer";
import { pathToFileURL } from "node:url";
const url = pathToFileURL("runtime.wasm");
const originals = [WebAssembly.compile, WebAssembly.instantiate, WebAssembly.compileStreaming, globalThis.fetch];
const same = () => originals.every((f, i) => f === [WebAssembly.compile, WebAssembly.instantiate, WebAssembly.compileStreaming, globalThis.fetch][i]);

// Counted under the hooks: what is really compiled. (Node's compileStreaming calls compile.)
let compiles = 0;
let streamed = 0;
const { compile, compileStreaming } = WebAssembly;
WebAssembly.compile = (...args) => (compiles++, compile(...args));
WebAssembly.compileStreaming = (...args) => (streamed++, compileStreaming(...args));
originals[0] = WebAssembly.compile;
originals[2] = WebAssembly.compileStreaming;

// Node: the file read twice, the runtime compiled once.
let restoreEarly = compileEarly(url, { readFile, Buffer });
const fromDisk = await WebAssembly.instantiate(readFileSync("runtime.wasm"), {});
const otherOne = await WebAssembly.instantiate(readFileSync("other.wasm"), {});
restoreEarly();
console.log("node:", fromDisk.instance.exports.f(), otherOne.instance.exports.f(), compiles, "restored", same());

// Browsers: Pyodide's fetch of the URL gets the stand-in; other URLs are fetched.
const fetched = [];
globalThis.fetch = async (input) => {
  fetched.push(String(input));
  return new Response(readFileSync(new URL(String(input))), { headers: { "content-type": "application/wasm" } });
};
originals[3] = globalThis.fetch;
restoreEarly = compileEarly(url, null);
const response = fetch(new URL(url.href));
const fetchedRuntime = await WebAssembly.instantiateStreaming(response, {});
const otherStreamed = await WebAssembly.instantiateStreaming(fetch(pathToFileURL("other.wasm")), {});
restoreEarly();
console.log("browser:", fetchedRuntime.instance.exports.f(), otherStreamed.instance.exports.f(), streamed, fetched.length, "restored", same());
"#
        );
        let stdout = node_script_in(work.path(), &script);
        // Two compiles each: the runtime once (early), the other module once.
        assert!(stdout.contains("node: 7 8 2 restored true"), "{stdout}");
        // And the runtime fetched once (by compileEarly), the other module once.
        assert!(
            stdout.contains("browser: 7 8 2 2 restored true"),
            "{stdout}"
        );
    }
}
