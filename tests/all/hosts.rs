//! The WASM variant in the hosts its loaders serve. `loader.py` as a plugin host uses it: the
//! kernels of fixture `hostile`, built for wasm32 as a third party would ship them (hashes
//! consistent, code hostile), are stopped with a clear exception within the configured limits,
//! and the host process goes on to run a kernel that behaves. `build` and `measure` time a
//! bundle through `loader.py` and through `loader.mjs` in Node, and budgets limit those figures.

use crate::common::*;
use cargo_wasmpack_infer::kernel::loader::{
    KernelName, LoaderConfig, WasmFile, python_loader_file,
};
use cargo_wasmpack_infer::manifest::variant::SimdLevel;
use cargo_wasmpack_infer::manifest::{Dtype, TensorSpec};
use std::path::Path;
use std::process::Command;

/// The hostile fixture built for wasm32 in `mode` (`None`: it behaves), as a bundle directory
/// holding the module and a loader.py for it.
fn hostile_bundle(mode: Option<&str>, target_dir: &Path, into: &Path) {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cargo
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .current_dir(fixture("hostile"))
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("WPI_HOSTILE");
    if let Some(mode) = mode {
        cargo.env("WPI_HOSTILE", mode);
    }
    let output = cargo.output().unwrap();
    assert_exit(&output, 0);
    let wasm =
        std::fs::read(target_dir.join("wasm32-unknown-unknown/release/hostile.wasm")).unwrap();
    std::fs::create_dir_all(into).unwrap();
    std::fs::write(into.join("hostile.wasm"), &wasm).unwrap();
    let variant = WasmFile::new(SimdLevel::Baseline, "hostile.wasm", &wasm, &[]);
    let (input, output) = (
        TensorSpec {
            dtype: Dtype::F32,
            shape: vec![4],
        },
        TensorSpec {
            dtype: Dtype::F32,
            shape: vec![2],
        },
    );
    let loader = python_loader_file(&LoaderConfig {
        abi_version: 1,
        kernel: KernelName {
            name: "hostile",
            version: "0.1.0",
        },
        wasm: &variant,
        variants: vec![&variant],
        input: &input,
        output: &output,
        imports: &[],
    });
    std::fs::write(into.join(&loader.path), &loader.bytes).unwrap();
}

/// Loads each hostile bundle in one host process with a 0.5 s call limit and a 64 MiB memory
/// cap, reports the exception each raised, what a second call on the failed model says, and the
/// outputs of the well-behaved kernel loaded afterwards.
const HOST: &str = r#"
import array, importlib, json, sys, time
report = {}
for mode, bundle in zip(sys.argv[1::2], sys.argv[2::2]):
    sys.path.insert(0, bundle)
    sys.modules.pop("loader", None)
    loader = importlib.import_module("loader")
    sys.path.remove(bundle)
    model = loader.load(bundle, time_limit=0.5, memory_limit=64 << 20)
    started = time.monotonic()
    try:
        output = model.infer(array.array("f", [1.5, -2.0, 3.0, 4.0]))
        report[mode] = {"output": output.tolist()}
    except loader.KernelError as error:
        report[mode] = {"error": type(error).__name__, "message": str(error)}
        try:
            model.infer(array.array("f", [0.0] * 4))
        except loader.KernelError as again:
            report[mode]["again"] = str(again)
    report[mode]["seconds"] = time.monotonic() - started
print(json.dumps(report))
"#;

#[test]
fn hostile_kernels_raise_clear_exceptions_and_the_python_host_goes_on() {
    let Some(python) = host_python() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let target_dir = scratch.path().join("target");
    let modes = ["loop", "grow", "trap", "behaves"];
    let mut command = Command::new(python);
    command.arg("-c").arg(HOST);
    for mode in modes {
        let bundle = scratch.path().join(mode);
        hostile_bundle((mode != "behaves").then_some(mode), &target_dir, &bundle);
        command.arg(mode).arg(&bundle);
    }
    let output = command.output().unwrap();
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let expect = |mode: &str, error: &str, message: &str| {
        let case = &report[mode];
        assert_eq!(case["error"], error, "{mode}: {case}");
        assert!(
            case["message"].as_str().unwrap().contains(message),
            "{mode}: {case}"
        );
        assert!(
            case["again"]
                .as_str()
                .unwrap()
                .contains("the kernel failed earlier"),
            "{mode}: a failed model refuses further calls: {case}"
        );
    };
    expect(
        "loop",
        "KernelTimeout",
        "the kernel ran longer than 0.5 s and was stopped",
    );
    let seconds = report["loop"]["seconds"].as_f64().unwrap();
    assert!(
        seconds < 2.0,
        "stopped near its 0.5 s limit, took {seconds} s"
    );
    expect("grow", "KernelMemoryError", "of the 64 MiB it may use");
    expect(
        "trap",
        "KernelError",
        "the kernel trapped: wasm trap: wasm `unreachable` instruction executed",
    );
    assert!(
        !report["trap"]["message"].as_str().unwrap().contains('\n'),
        "one line; the backtrace is the exception's wasm_backtrace"
    );
    assert_eq!(
        report["behaves"]["output"],
        serde_json::json!([1.5, -2.0]),
        "the host goes on: {report}"
    );
}

/// `build --python-host --node` and `measure` with both time a bundle through its own loader.py
/// and loader.mjs and record them as the plugin host and Node; the sandboxed-plugin verdict then
/// judges the boundary as Python pays it, and budgets on the hosts' figures are checked once
/// they are measured.
#[test]
fn measure_in_hosts_records_python_and_node_and_budgets_limit_them() {
    let Some(python) = host_python() else {
        return;
    };
    let python = python.to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let crate_dir = copy_crate(&fixture("handwritten"), work.path());
    // Budgets on figures only the hosts measure: the build must not refuse them before it has
    // measured them, and --check then checks them.
    let mut cargo_toml = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    cargo_toml.push_str(
        "\n[package.metadata.wasmpack-infer.budgets.node]\nsteady_batch1_us = \"50 ms\"\n\
         \n[package.metadata.wasmpack-infer.budgets.plugin_host]\nload_us = \"30 s\"\n",
    );
    std::fs::write(crate_dir.join("Cargo.toml"), cargo_toml).unwrap();
    let out = work.path().join("dist");
    let output = build(
        &crate_dir,
        &out,
        &[
            "--steady-runs",
            "5",
            "--batches",
            "1,16",
            "--python-host",
            python,
            "--node",
            "--check",
        ],
    );
    assert_exit(&output, 0);
    for expected in [
        "python host: wasmtime-py",
        "node: Node ",
        "node.steady_batch1_us",
        "plugin_host.load_us",
    ] {
        assert!(
            stdout(&output).contains(expected),
            "build measures both hosts and checks their budgets ({expected}): {}",
            stdout(&output)
        );
    }
    let bundle = only_bundle(&out);
    let bundle = bundle.to_str().unwrap();
    let output = wpi(&[
        "measure",
        bundle,
        "--python-host",
        python,
        "--node",
        "--steady-runs",
        "20",
        "--batches",
        "1,16",
        "--json",
    ]);
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    for (field, runtime) in [
        ("plugin_host", "wasmtime-py 51.0.0, CPython 3."),
        ("node", "Node "),
    ] {
        let host = &manifest["timings"][field];
        assert!(
            host["runtime"].as_str().unwrap().starts_with(runtime),
            "{host}"
        );
        assert_eq!(host["parity"]["passed"], true, "{host}");
        assert!(host["load"]["median_us"].as_f64().unwrap() > 0.0);
        let batches: Vec<u64> = host["steady"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["batch"].as_u64().unwrap())
            .collect();
        assert_eq!(batches, [1, 16], "{field}");
        let transfer = &host["steady"][0]["transfer"];
        for part in ["upload_us", "compute_us", "download_us"] {
            assert!(
                transfer[part].as_f64().unwrap() > 0.0,
                "{field}: {transfer}"
            );
        }
    }
    let plugin = manifest["timings"]["runtime_fit"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deployment"] == "sandboxed-plugin")
        .unwrap()
        .clone();
    let boundary = plugin["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "boundary_share")
        .unwrap()
        .clone();
    assert_eq!(boundary["measured_in"], "wasmtime-py", "{plugin}");
    // The manifest on disk says the same, and still verifies.
    let output = wpi(&["verify", bundle]);
    assert_exit(&output, 0);
    let output = wpi(&["inspect", bundle, "--json"]);
    assert_exit(&output, 0);

    // A budget the Node figure cannot meet fails the check, naming it.
    let budgets = work.path().join("budgets.toml");
    std::fs::write(&budgets, "[node]\nsteady_batch1_us = \"1 ns\"\n").unwrap();
    let output = wpi(&["check", bundle, "--budgets", budgets.to_str().unwrap()]);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("node.steady_batch1_us"),
        "{}",
        stdout(&output)
    );

    let output = wpi(&["measure", bundle, "--python-host", "/nonexistent/python"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("cannot run /nonexistent/python")
            && stderr(&output).contains("pip install wasmtime==51.0.0"),
        "{}",
        stderr(&output)
    );
    let output = wpi(&["measure", bundle, "--node", "/nonexistent/node"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("--node: cannot run /nonexistent/node"),
        "{}",
        stderr(&output)
    );
}

/// Without a Python named, `--python-host` uses the tool's cache venv and installs wasmtime-py
/// into it, every wheel checked against its pinned sha256: here offline from the wheelhouse
/// `.ci/run` downloads. With --offline and no wheelhouse, or a wheelhouse without the wheel, it
/// stops naming the fix and leaves no venv behind. The venv it makes has no NumPy, so the loader
/// runs on array.array.
#[test]
fn the_python_host_venv_is_installed_from_a_wheelhouse_when_missing() {
    let Some(wheelhouse) = host_wheelhouse() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("dist");
    let output = build(
        &fixture("handwritten"),
        &out,
        &["--steady-runs", "5", "--batches", "1"],
    );
    assert_exit(&output, 0);
    let bundle = only_bundle(&out);
    let cache = work.path().join("cache");
    let measure = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cargo-wasmpack-infer"))
            .args(["measure", bundle.to_str().unwrap(), "--python-host"])
            .args(["--steady-runs", "5", "--batches", "1"])
            .args(extra)
            .env("CI", "true")
            .env("WPI_CACHE_DIR", &cache)
            .env_remove("WPI_PYTHON_HOST")
            .output()
            .unwrap()
    };
    let leftovers = || std::fs::read_dir(&cache).map_or(0, |entries| entries.count());

    let output = measure(&["--offline"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("cannot run") && stderr(&output).contains("--wheelhouse DIR"),
        "{}",
        stderr(&output)
    );
    let empty = work.path().join("empty-wheelhouse");
    std::fs::create_dir(&empty).unwrap();
    let output = measure(&["--wheelhouse", empty.to_str().unwrap()]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("installing wasmtime-py 51.0.0")
            && stderr(&output).contains("(from --wheelhouse only)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        leftovers(),
        0,
        "a failed install leaves nothing in the cache"
    );

    let output = measure(&["--wheelhouse", wheelhouse.to_str().unwrap(), "--json"]);
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    let host = &manifest["timings"]["plugin_host"];
    assert!(
        host["runtime"]
            .as_str()
            .unwrap()
            .starts_with("wasmtime-py 51.0.0, CPython 3.")
            && host["runtime"]
                .as_str()
                .unwrap()
                .ends_with("array.array arrays"),
        "{host}"
    );
    assert_eq!(host["parity"]["passed"], true, "{host}");
    assert_eq!(leftovers(), 1, "only the venv itself is left in the cache");
    assert!(cache.join("python-host/bin/python").exists());
}
