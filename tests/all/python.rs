//! The Python path end to end: real Pyodide (from npm, cached), real Node, real CPython.

use crate::common::*;
use std::path::Path;

const PYODIDE: &str = "npm:314.0.7";

fn build_python(project: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    // Two interleaved boots per variant: a series, in a quarter of the default's time.
    let mut args = vec![
        "--pyodide",
        PYODIDE,
        "--passes",
        "1",
        "--boots",
        "2",
        "--json",
    ];
    args.extend_from_slice(extra);
    build(project, out, &args)
}

/// Runs `inputs` through the bundle's loader.mjs in Node.
fn loader_outputs(bundle: &Path, inputs: &serde_json::Value) -> serde_json::Value {
    run_loader(bundle, inputs, "normal")
}

/// Runs `inputs` through the bundle's loader.mjs in Node, booting `normal` or from `snapshot`.
fn run_loader(bundle: &Path, inputs: &serde_json::Value, boot: &str) -> serde_json::Value {
    loader_run(bundle, inputs, boot)["outputs"].clone()
}

/// What tests/node/run-pyodide-loader.mjs reports: `outputs`, and `deferredLoadMs` (null unless
/// something loaded the deferred half of a split runtime).
fn loader_run(bundle: &Path, inputs: &serde_json::Value, boot: &str) -> serde_json::Value {
    loader_run_probing(bundle, inputs, boot, &[])
}

/// `loader_run` with `probe`, nothing or one Python expression, evaluated right after boot.
fn loader_run_probing(
    bundle: &Path,
    inputs: &serde_json::Value,
    boot: &str,
    probe: &[&str],
) -> serde_json::Value {
    let output = run_loader_script(bundle, inputs, boot, probe);
    assert_exit(&output, 0);
    serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
}

fn run_loader_script(
    bundle: &Path,
    inputs: &serde_json::Value,
    boot: &str,
    probe: &[&str],
) -> std::process::Output {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), inputs.to_string()).unwrap();
    std::process::Command::new("node")
        .arg(repo_root().join("tests/node/run-pyodide-loader.mjs"))
        .arg(bundle.join("pyodide"))
        .arg(file.path())
        .arg(boot)
        .args(probe)
        .output()
        .expect("running node")
}

/// Flips one byte in the middle of `file` (relative to the bundle), runs `inputs` through the
/// loader, which must fail, and returns its error output.
fn loader_error_after_tampering(bundle: &Path, file: &str, inputs: &serde_json::Value) -> String {
    let path = bundle.join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let output = run_loader_script(bundle, inputs, "normal", &[]);
    assert_exit(&output, 1);
    stderr(&output)
}

/// Whether this machine has binaryen's wasm-split, so builds split the runtime.
fn splits_runtime() -> bool {
    cargo_wasmpack_infer::python::split::WasmSplit::find().is_ok()
}

/// templates/pyodide/strip_source.py's unit tests (tests/python/), under the machine's CPython.
#[test]
fn stripping_docstrings_keeps_code_and_line_numbers() {
    let output = std::process::Command::new("python3")
        .args(["-m", "unittest", "-v", "tests/python/test_strip_source.py"])
        .current_dir(repo_root())
        .output()
        .expect("running python3");
    assert_exit(&output, 0);
}

/// digits-py in the shaken Pyodide bundle predicts exactly what the Rust kernel predicts on
/// every held-out digit, and ships less than stock Pyodide.
#[test]
fn digits_py_agrees_with_the_rust_kernel_and_ships_less_than_stock() {
    let out = tempfile::tempdir().unwrap();
    let output = build_python(
        &repo_root().join("examples/digits-py"),
        out.path(),
        &["--check", "--demo"],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert_eq!(manifest["kind"], "pyodide");
    assert_eq!(
        manifest["budgets"]["bundle.brotli_bytes"], "4 MiB",
        "budgets recorded and met"
    );
    assert_eq!(manifest["parity"]["bundle_matches_stock"], true);
    assert_eq!(manifest["parity"]["native"]["passed"], true);
    assert_eq!(manifest["parity"]["native"]["samples"], 360);
    let shake = &manifest["shake"];
    assert!(shake["stdlib_entries_after"].as_u64() < shake["stdlib_entries_before"].as_u64());
    assert_eq!(shake["modules"]["digits_py.model"], "traced");
    assert_eq!(shake["modules"]["importlib.resources"], "traced");
    assert_eq!(
        shake["importers"]["importlib.resources"], "digits_py.model",
        "the trace saw who imported it"
    );
    assert!(
        shake["files_opened"]
            .as_array()
            .unwrap()
            .contains(&"/app/digits_py/weights.bin".into()),
        "{}",
        shake["files_opened"]
    );
    let sizes = &manifest["sizes"];
    assert!(sizes["bundle"]["brotli_bytes"].as_u64() < sizes["stock"]["brotli_bytes"].as_u64());
    assert!(
        manifest["timings"]["runtime_fit"]["interpreter_tax"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // Where the time goes: native CPython's pass under cProfile covers every sample and its
    // shares add up; digits-py's model is Python-level loops, so that class dominates. Pyodide's
    // calls are timed in parts.
    let attribution = &manifest["timings"]["native"]["attribution"];
    assert_eq!(attribution["calls"], 360);
    let shares: f64 = ["python_share", "c_share", "boundary_share"]
        .iter()
        .map(|k| attribution[k].as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 0.01, "{attribution}");
    assert!(
        attribution["python_share"].as_f64() > attribution["c_share"].as_f64(),
        "{attribution}"
    );
    assert!(!attribution["hottest"].as_array().unwrap().is_empty());
    let boundary = &manifest["timings"]["bundle"]["boundary"];
    assert!(boundary["compute_us"].as_f64() > Some(0.0), "{boundary}");
    assert!(boundary["upload_us"].as_f64() > Some(0.0), "{boundary}");
    // A verdict per deployment shape, judged by the recorded thresholds: the interpreter tax as
    // the compute tax, native CPython where native code can run.
    let fit = &manifest["timings"]["runtime_fit"];
    assert_eq!(
        strings_at(&fit["deployments"], "deployment"),
        DEPLOYMENT_SHAPES,
        "{fit}"
    );
    assert!(fit["thresholds"]["compute_tax"].is_object(), "{fit}");
    // Cold starts are medians of boots interleaved across the variants.
    for run in [
        &manifest["timings"]["stock"],
        &manifest["timings"]["bundle"],
        &manifest["snapshot"]["run"],
    ] {
        let boots = &run["boots"];
        assert_eq!(boots["runs"], 2, "{run}");
        assert_eq!(run["cold_start_ms"], boots["median_ms"], "{run}");
        assert!(
            boots["min_ms"].as_f64() <= boots["max_ms"].as_f64(),
            "{boots}"
        );
        // Each boot timed a block of steady calls too.
        let blocks = &run["steady_blocks"];
        assert_eq!(blocks["runs"], 2, "{run}");
        assert!(blocks["median_us"].as_f64() > Some(0.0), "{blocks}");
        // And where its boot went: the runtime compiled and instantiated, then started up.
        // (The bundle's compile starts with the boot: what is left of it may be nothing.)
        let phases = &run["boot_phases"];
        for phase in ["fetch_ms", "instantiate_ms", "startup_ms"] {
            assert!(phases[phase].as_f64() > Some(0.0), "{phase}: {phases}");
        }
        assert!(phases["compile_ms"].as_f64() >= Some(0.0), "{phases}");
    }
    // Stock Pyodide compiles its runtime only when it asks for it.
    assert!(manifest["timings"]["stock"]["boot_phases"]["compile_ms"].as_f64() > Some(0.0));
    // Only a snapshot boot reads and restores a snapshot, and restoring one skips most of
    // Python's start-up.
    let phase = |run: &serde_json::Value, name: &str| run["boot_phases"][name].as_f64().unwrap();
    let snapshot_run = &manifest["snapshot"]["run"];
    assert!(phase(snapshot_run, "snapshot_read_ms") > 0.0);
    assert!(phase(snapshot_run, "restore_ms") > 0.0);
    let bundle_run = &manifest["timings"]["bundle"];
    assert_eq!(phase(bundle_run, "restore_ms"), 0.0);
    assert!(phase(snapshot_run, "startup_ms") < phase(bundle_run, "startup_ms"));
    let steady_over_stock = fit["steady_over_stock"].as_f64().unwrap();
    let medians = |variant: &str| {
        manifest["timings"][variant]["steady_blocks"]["median_us"]
            .as_f64()
            .unwrap()
    };
    assert!(
        (steady_over_stock - medians("bundle") / medians("stock")).abs() < 1e-3,
        "{fit}"
    );
    assert!(
        fit["verdict"]
            .as_str()
            .unwrap()
            .contains("(median of 2 interleaved blocks)"),
        "{fit}"
    );
    assert!(
        fit["verdict"]
            .as_str()
            .unwrap()
            .contains("median of 2 interleaved boots")
    );
    let plugin = &fit["deployments"][2];
    assert_eq!(
        strings_at(&plugin["figures"], "name"),
        ["interpreter_tax", "boundary_share"],
        "{plugin}"
    );
    assert!(
        fit["verdict"]
            .as_str()
            .unwrap()
            .contains("Pyodide fits: browser page ")
    );

    // The runtime is split by a profile of the samples: they (booted either way) never need the
    // deferred half, and what they do need is fetched up front.
    if splits_runtime() {
        let split = &manifest["runtime_split"];
        assert!(
            split["profiled_functions"].as_u64() < split["functions"].as_u64(),
            "{split}"
        );
        assert!(
            sizes["upfront"]["brotli_bytes"].as_u64() < sizes["bundle"]["brotli_bytes"].as_u64()
        );
        let profiled_in = split["profiled_in"].as_array().unwrap();
        assert!(profiled_in.contains(&"node, booted from a snapshot".into()));
        assert_eq!(
            profiled_in.contains(&"chromium".into()),
            chromium_available()
        );
        // The placeholders are the primary's own functions: it imports one loader, not one
        // function per slot.
        assert!(split["placeholders"].as_u64() > Some(1000), "{split}");
        let primary =
            std::fs::read(out.path().join("digits-py-0.1.0/pyodide/pyodide.asm.wasm")).unwrap();
        let mut placeholder_imports = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(&primary) {
            if let wasmparser::Payload::ImportSection(reader) = payload.unwrap() {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    if import.module == "placeholder" {
                        placeholder_imports.push(import.name.to_string());
                    }
                }
            }
        }
        assert_eq!(placeholder_imports, ["load"]);
        let timings = &manifest["timings"];
        assert!(timings["secondary_load_ms"].as_f64() > Some(0.0));
        // The primary's linking at boot is planned (and was checked in the split's validation):
        // Emscripten's glue reads a small part of the table.
        let plan = &manifest["runtime_linking"]["plan"];
        assert!(
            plan["planned_slots"].as_u64().unwrap() * 10 < plan["table_slots"].as_u64().unwrap(),
            "{plan}"
        );
        assert!(
            timings["bundle"].get("secondary_load_ms").is_none(),
            "{timings}"
        );
        assert!(
            manifest["snapshot"]["run"]
                .get("secondary_load_ms")
                .is_none()
        );
    }

    let bundle = out.path().join("digits-py-0.1.0");
    for file in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(bundle.join(file["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            file["sha256"],
            cargo_wasmpack_infer::fsx::sha256_hex(&bytes)
        );
    }

    let samples: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("samples.json")).unwrap()).unwrap();
    let expected =
        std::fs::read(repo_root().join("examples/digits-mlp/samples/expected.bin")).unwrap();
    // The profile builds a memory snapshot: booted from it, the bundle predicts the same.
    let snapshot = &manifest["snapshot"];
    assert_eq!(snapshot["file"], "pyodide/snapshot.bin");
    assert!(
        snapshot["run"]["boot_ms"].as_f64() < manifest["timings"]["bundle"]["boot_ms"].as_f64(),
        "{snapshot}"
    );
    // A booted Pyodide's heap holds megabytes of free chunks; they go into the snapshot as zeros.
    assert!(
        snapshot["free_heap_zeroed"]["bytes"].as_u64().unwrap() > 1 << 20,
        "{snapshot}"
    );
    // So does the runtime's static data the interpreter never changed: XORed with what the data
    // segments write, which the loader undoes when the runtime is instantiated (the boots below).
    let static_data = &snapshot["static_data"];
    assert!(
        static_data["unchanged_bytes"].as_u64().unwrap() > 1 << 20
            && static_data["unchanged_bytes"].as_u64() < static_data["bytes"].as_u64(),
        "{snapshot}"
    );
    for boot in ["normal", "snapshot"] {
        let logits = run_loader(&bundle, &samples, boot);
        let labels: Vec<u8> = logits
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let l: Vec<f64> = serde_json::from_value(l.clone()).unwrap();
                (0..l.len()).max_by(|&a, &b| l[a].total_cmp(&l[b])).unwrap() as u8
            })
            .collect();
        assert_eq!(
            labels, expected,
            "Pyodide bundle ({boot} boot) and Rust kernel predict the same digits"
        );
    }

    // It is an npm package too: the runtime directory and the manifest, imported by name from a
    // fresh project into which its tarball was installed offline.
    let package: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("package.json")).unwrap()).unwrap();
    assert_eq!(package["name"], "digits-py");
    assert_eq!(package["exports"]["."]["default"], "./pyodide/loader.mjs");
    if let Some((app, files)) = install_packed(&bundle) {
        assert!(
            files.contains(&"pyodide/pyodide.asm.wasm".to_string()),
            "{files:?}"
        );
        assert!(files.contains(&"manifest.json".to_string()), "{files:?}");
        assert!(
            !files
                .iter()
                .any(|f| f.ends_with(".tar.zst") || f == "samples.json"),
            "{files:?}"
        );
        let first: Vec<serde_json::Value> = samples.as_array().unwrap()[..5].to_vec();
        std::fs::write(
            app.path().join("app.mjs"),
            format!(
                "import {{ load }} from \"digits-py\";\nconst model = await load();\n\
                 console.log(JSON.stringify({}.map((x) => model.infer(x))));\n",
                serde_json::Value::Array(first.clone())
            ),
        )
        .unwrap();
        let output = std::process::Command::new("node")
            .arg("app.mjs")
            .current_dir(app.path())
            .output()
            .unwrap();
        assert_exit(&output, 0);
        let outputs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let expected = run_loader(&bundle, &serde_json::Value::Array(first), "normal");
        assert_eq!(
            outputs, expected,
            "the installed package computes what the bundle's loader does"
        );

        // Bundled for the browser by esbuild, the app still boots Pyodide: the runtime and the
        // app are found beside the bundle (via import.meta.url), where the app copies them.
        if let Some(esbuild) = npm_tool(".bin/esbuild") {
            let output = std::process::Command::new(esbuild)
                .args([
                    "app.mjs",
                    "--bundle",
                    "--format=esm",
                    "--platform=browser",
                    "--log-level=warning",
                    "--outfile=public/app.mjs",
                ])
                .current_dir(app.path())
                .output()
                .unwrap();
            assert_exit(&output, 0);
            assert!(stderr(&output).is_empty(), "{}", stderr(&output));
            copy_tree(
                &app.path().join("node_modules/digits-py/pyodide"),
                &app.path().join("public"),
            );
            let output = std::process::Command::new("node")
                .arg(app.path().join("public/app.mjs"))
                .current_dir(std::env::temp_dir())
                .output()
                .unwrap();
            assert_exit(&output, 0);
            let outputs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(outputs, expected, "the bundled app computes the same");
        }
    }

    // In Chromium, the demo page boots the bundle and reads drawn digits as the kernel's page does.
    if chromium_available() {
        let serving = Serving::start(&bundle);
        let (drawn, expected) = drawable_digits();
        let shown = drive_demo(&serving.url, &drawn, "demo-digits-py.png");
        assert_eq!(shown["labels"], expected, "{shown}");

        // measure --browser boots it in Chromium, normally and from the snapshot.
        let output = wpi(&["measure", bundle.to_str().unwrap(), "--browser", "--json"]);
        assert_exit(&output, 0);
        let measured = manifest_from_stdout(&output);
        let browser = &measured["timings"]["browser"];
        assert_eq!(browser["load"]["runs"], 3, "{browser}");
        assert!(
            browser["snapshot_load"]["median_us"].as_f64() < browser["load"]["median_us"].as_f64()
        );
        assert_eq!(browser["parity"]["passed"], true);
        assert_eq!(browser["parity"]["samples"], 360);
        assert_eq!(browser["environment"]["cross_origin_isolated"], true);
        // The page verdict is judged again on the page's own boot and calls.
        let page = &measured["timings"]["runtime_fit"]["deployments"][0];
        assert_eq!(page["deployment"], "browser-page", "{page}");
        let first_result = &page["figures"][1];
        assert_eq!(first_result["measured_in"], "chromium", "{page}");
        let expected = browser["load"]["median_us"].as_f64().unwrap()
            + browser["first_inference"]["median_us"].as_f64().unwrap();
        assert!(
            (first_result["value"].as_f64().unwrap() - expected).abs() < 1e-6,
            "{page}"
        );
        // The split was profiled in Chromium too, so a page never needs the deferred half.
        if splits_runtime() {
            assert!(browser.get("deferred_load_ms").is_none(), "{browser}");
            assert!(
                browser.get("snapshot_deferred_load_ms").is_none(),
                "{browser}"
            );
        }
    }
    // inspect lists the shipped files and the largest stdlib modules with the reason each stayed;
    // with --static-data, which of the runtime's data segments boot and the samples never read.
    let output = wpi(&[
        "inspect",
        bundle.to_str().unwrap(),
        "--json",
        "--top",
        "5",
        "--static-data",
    ]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["file"] == "python_stdlib.zip"),
        "{report}"
    );
    let largest = report["largest_modules"].as_array().unwrap();
    assert_eq!(largest.len(), 5);
    for module in largest {
        assert!(module["uncompressed_bytes"].as_u64() > Some(0), "{module}");
        assert!(!module["kept_because"].as_array().unwrap().is_empty());
    }
    let data = &report["static_data"];
    let number = |key: &str| data[key].as_u64().unwrap();
    assert!(number("segments") > 1000, "{data}");
    assert!(
        number("read_bytes") > 0 && number("read_bytes") < number("bytes"),
        "{data}"
    );
    assert!(
        number("unread_bytes") > 0 && number("unread_bytes") < number("bytes"),
        "{data}"
    );
    assert!(
        number("unread_brotli_bytes") < number("unread_bytes"),
        "{data}"
    );
    let unread: Vec<u64> = data["largest_unread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .collect();
    assert!(
        unread.len() == 5 && unread.is_sorted_by(|a, b| a >= b),
        "{data}"
    );
    // A Python bundle is measured in the browser only.
    let output = wpi(&["measure", bundle.to_str().unwrap()]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("pass --browser"),
        "{}",
        stderr(&output)
    );

    // A tampered app archive is refused by the loader.
    let error = loader_error_after_tampering(&bundle, "pyodide/app.zip", &serde_json::json!([]));
    assert!(error.contains("IntegrityError"), "{error}");
}

/// Imports inside branches and through `importlib.import_module("…")` survive the shake, even
/// on branches no sample takes; `--drop` of a module the samples need fails validation.
/// `snapshot.warm` (the pyodide-fast-boot profile): the snapshot is taken after one call of the
/// entry, so an app that loads its table on the first call boots from it with the table loaded,
/// and every sample still gives stock's outputs. A boot without the snapshot loads it on the
/// first call.
#[test]
fn a_warmed_snapshot_holds_what_the_first_call_loaded() {
    let project = fixture("py-warm");
    let out = tempfile::tempdir().unwrap();
    let output = build_python(
        &project,
        out.path(),
        &["--profile", "pyodide-fast-boot", "--no-split"],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert_eq!(
        manifest["snapshot"]["warmed"], true,
        "{}",
        manifest["snapshot"]
    );
    assert_eq!(manifest["parity"]["bundle_matches_stock"], true);
    let bundle = out.path().join("py-warm-0.1.0");
    let inputs = serde_json::json!([["gamma", "nope"]]);
    let loads = "__import__('warmapp.main').main.LOADS";
    let warmed = loader_run_probing(&bundle, &inputs, "snapshot", &[loads]);
    assert_eq!(warmed["probe"], 1, "{warmed}");
    assert_eq!(warmed["outputs"], serde_json::json!([[2, -1]]));
    let scratch = loader_run_probing(&bundle, &inputs, "scratch", &[loads]);
    assert_eq!(scratch["probe"], 0, "{scratch}");
    assert_eq!(scratch["outputs"], warmed["outputs"]);
    // Read and checked beside the boot's start, a snapshot with a byte changed fails load()
    // itself (the profile boots from it by default), not the process.
    let error = loader_error_after_tampering(&bundle, "pyodide/snapshot.bin", &inputs);
    assert!(
        error.contains("IntegrityError: snapshot.bin: integrity check failed (expected sha256-"),
        "{error}"
    );
}

#[test]
fn lazy_and_string_imports_survive_the_shake() {
    let out = tempfile::tempdir().unwrap();
    let project = fixture("py-lazy");
    let output = build_python(&project, out.path(), &["--no-snapshot"]);
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    let modules = &manifest["shake"]["modules"];
    assert_eq!(modules["fractions"], "traced");
    assert_eq!(modules["statistics"], "traced");
    assert_eq!(
        modules["colorsys"], "static",
        "a lazy import no sample reaches"
    );
    assert_eq!(modules["ipaddress"], "static", "an import through a string");
    // The kept modules and the app ship stripped of docstrings and comments (the branches below
    // run stripped code no sample took), except those that may read their docstrings.
    let strip = &manifest["shake"]["strip"];
    assert!(strip["stripped"].as_u64().unwrap() > 10, "{strip}");
    assert!(strip["bytes_after"].as_u64() < strip["bytes_before"].as_u64());
    assert_eq!(
        strip["docstrings_kept"]["stdlib/inspect.py"], "may read docstrings",
        "{strip}"
    );

    // Built again from a copy in a directory with a longer path, the bundle is byte for byte the
    // same (the split runtime included), and so is the manifest outside its timings.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere
        .path()
        .join("a-much-longer-checkout-path")
        .join("py-lazy");
    copy_tree(&project, &copy);
    let again = build_python(&copy, elsewhere.path(), &["--no-snapshot"]);
    assert_exit(&again, 0);
    let mut rebuilt = manifest_from_stdout(&again);
    let mut first = manifest.clone();
    first.as_object_mut().unwrap().remove("timings");
    rebuilt.as_object_mut().unwrap().remove("timings");
    assert_eq!(first, rebuilt, "the manifests differ outside their timings");
    for file in manifest["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        assert_eq!(
            std::fs::read(out.path().join("py-lazy-0.1.0").join(path)).unwrap(),
            std::fs::read(elsewhere.path().join("py-lazy-0.1.0").join(path)).unwrap(),
            "{path} differs between the two builds"
        );
    }

    let bundle = out.path().join("py-lazy-0.1.0");
    let outputs = loader_outputs(
        &bundle,
        &serde_json::json!([
            {"op": "colors", "values": [1.0, 0.0, 0.0]},
            {"op": "network", "values": ["10.0.0.0/30"]},
            {"op": "fraction", "values": [0.5]},
            {"op": "describe", "values": [null, 3]}
        ]),
    );
    let hsv: Vec<f64> = serde_json::from_value(outputs[0].clone()).unwrap();
    assert_eq!(hsv, [0.0, 1.0, 1.0]);
    assert_eq!(outputs[1], "4");
    assert_eq!(outputs[2], "1/2");
    assert_eq!(outputs[3], serde_json::json!({"largest": 3, "missing": 1}));

    // verify re-runs the samples on every boot and on the native sibling: intact, then a manifest
    // whose recorded parity was edited.
    let bundle_arg = bundle.to_str().unwrap();
    let output = wpi(&["verify", bundle_arg]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("parity reproduced on 4 samples"),
        "{}",
        stdout(&output)
    );
    let manifest_path = bundle.join("manifest.json");
    let recorded = std::fs::read_to_string(&manifest_path).unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&recorded).unwrap();
    edited["parity"]["native"]["per_sample"]["max_abs_diff"][1] = 0.5.into();
    std::fs::write(&manifest_path, edited.to_string()).unwrap();
    let output = wpi(&["verify", bundle_arg, "--json"]);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("differs from the manifest (first at sample 1)"),
        "{}",
        stdout(&output)
    );
    std::fs::write(&manifest_path, recorded).unwrap();

    // A split runtime: the samples run on its primary alone; a branch they never took loads the
    // deferred half, checked against its digest.
    assert_eq!(manifest["runtime_split"].is_object(), splits_runtime());
    if splits_runtime() {
        let samples: serde_json::Value =
            serde_json::from_slice(&std::fs::read(project.join("samples.json")).unwrap()).unwrap();
        assert_eq!(
            loader_run(&bundle, &samples, "normal")["deferredLoadMs"],
            serde_json::Value::Null
        );
        let cold = serde_json::json!([{"op": "decimal", "values": [1, 7]}]);
        let run = loader_run(&bundle, &cold, "normal");
        assert_eq!(run["outputs"][0], "0.1428571428571428571428571429");
        assert!(run["deferredLoadMs"].as_f64() > Some(0.0), "{run}");

        // In Chromium the deferred half comes by synchronous XHR, checked by the loader's JS
        // SHA-256, only once the cold branch runs.
        if chromium_available() {
            let serving = Serving::start(&bundle);
            let output = std::process::Command::new("node")
                .arg(repo_root().join("tests/node/browser-eval.mjs"))
                .arg(format!("{}/samples.json", serving.url))
                .arg(
                    r#"(async () => {
                        const { load } = await import("/pyodide/loader.mjs");
                        const model = await load();
                        const warm = model.infer({ op: "fraction", values: [0.5] });
                        const before = model.deferredLoadMs;
                        const cold = model.infer({ op: "decimal", values: [1, 7] });
                        return { warm, before, cold, after: model.deferredLoadMs };
                    })()"#,
                )
                .output()
                .unwrap();
            assert_exit(&output, 0);
            let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(seen["warm"], "1/2", "{seen}");
            assert_eq!(
                seen["before"],
                serde_json::Value::Null,
                "profiled in Chromium, the boot needs only the primary: {seen}"
            );
            assert_eq!(seen["cold"], "0.1428571428571428571428571429", "{seen}");
            assert!(seen["after"].as_f64() > Some(0.0), "{seen}");
        }

        let error =
            loader_error_after_tampering(&bundle, "pyodide/pyodide.asm.deferred.wasm", &cold);
        assert!(
            error.contains("pyodide.asm.deferred.wasm: integrity check failed"),
            "{error}"
        );
        let output = wpi(&["verify", bundle_arg]);
        assert_exit(&output, 1);
        assert!(
            stdout(&output).contains("pyodide.asm.deferred.wasm"),
            "{}",
            stdout(&output)
        );
    }

    let output = build(
        &project,
        out.path(),
        &["--pyodide", PYODIDE, "--passes", "1", "--drop", "fractions"],
    );
    assert_exit(&output, 3);
    assert!(
        stderr(&output).contains("try --keep MODULE"),
        "{}",
        stderr(&output)
    );
    assert!(
        bundle.join("manifest.json").is_file(),
        "a failed build leaves the previous bundle"
    );
}

#[test]
fn python_usage_errors_and_hostile_distributions_exit_2() {
    let out = tempfile::tempdir().unwrap();
    let project = fixture("py-lazy");
    let output = build(&project, out.path(), &[]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("pass --pyodide"),
        "{}",
        stderr(&output)
    );

    let output = build(&project, out.path(), &["--pyodide", "/no/such/dist"]);
    assert_exit(&output, 2);

    // A tarball whose entry climbs out of the unpack directory.
    let tarball = out.path().join("evil.tgz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&tarball).unwrap(),
        flate2::Compression::default(),
    );
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    let name = b"package/../../escape.txt";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_size(1);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, &b"x"[..]).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-wasmpack-infer"))
        .args(["build", project.to_str().unwrap(), "--out-dir"])
        .arg(out.path())
        .arg("--pyodide")
        .arg(&tarball)
        .env("WPI_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("leaves the directory"),
        "{}",
        stderr(&output)
    );
    assert!(!out.path().join("py-lazy-0.1.0").exists());
}

/// A sample the app's own code cannot handle is the project's error (exit 2), named by its index
/// with Python's traceback, not a Node stack; nothing is written.
#[test]
fn a_sample_the_app_raises_on_is_named_with_its_traceback() {
    let out = tempfile::tempdir().unwrap();
    let project = fixture("py-raises");
    let output = build(&project, out.path(), &["--pyodide", PYODIDE]);
    assert_exit(&output, 2);
    let stderr = stderr(&output);
    let samples = project.join("samples.json");
    let named = format!(
        "sample 2 of {} (counting from 0): `ticketscore.rules:score` raised KeyError: 'text'",
        samples.display()
    );
    assert!(stderr.contains(&named), "{stderr}");
    assert!(
        stderr.contains("ticketscore/rules.py\", line 7, in score"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Node.js") && !stderr.contains("    at "),
        "{stderr}"
    );
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none());

    // An output JSON cannot hold (a set would be stored as {}) is named where it sits.
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&project, copy.path());
    let pyproject = copy.path().join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).unwrap();
    std::fs::write(&pyproject, text.replace("rules:score", "rules:keywords")).unwrap();
    let output = build(copy.path(), out.path(), &["--pyodide", PYODIDE]);
    assert_exit(&output, 2);
    let named = format!(
        "sample 0 of {} (counting from 0): `ticketscore.rules:keywords` returned a set at [\"keywords\"], which JSON cannot hold",
        copy.path().join("samples.json").display()
    );
    let returned = crate::common::stderr(&output);
    assert!(returned.contains(&named), "{returned}");

    // Unseeded noise: stock Pyodide's two calls on one sample disagree.
    std::fs::write(&pyproject, text.replace("rules:score", "rules:jittered")).unwrap();
    let output = build(copy.path(), out.path(), &["--pyodide", PYODIDE]);
    assert_exit(&output, 2);
    let jittered = crate::common::stderr(&output);
    assert!(
        jittered.contains("sample 0 of ")
            && jittered.contains(
                "`ticketscore.rules:jittered` returned different outputs for the same input"
            ),
        "{jittered}"
    );
}

/// A pure-Python wheel, written the way `pip wheel` would (with a RECORD of hashes).
/// Writes `name-1.0-py3-none-any.whl` with `files` (path, text) into `wheelhouse`.
fn write_wheel(wheelhouse: &Path, name: &str, files: &[(&str, &str)]) {
    use base64::Engine as _;
    use sha2::Digest as _;
    use std::io::Write as _;
    let dist_info = format!("{name}-1.0.dist-info");
    let mut all: Vec<(String, String)> = files
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect();
    all.push((
        format!("{dist_info}/METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"),
    ));
    all.push((
        format!("{dist_info}/WHEEL"),
        "Wheel-Version: 1.0\nGenerator: cli_python\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            .to_string(),
    ));
    let mut record = String::new();
    let mut writer = zip::ZipWriter::new(
        std::fs::File::create(wheelhouse.join(format!("{name}-1.0-py3-none-any.whl"))).unwrap(),
    );
    for (path, text) in &all {
        writer
            .start_file(path.as_str(), zip::write::SimpleFileOptions::DEFAULT)
            .unwrap();
        writer.write_all(text.as_bytes()).unwrap();
        let digest = sha2::Sha256::digest(text.as_bytes());
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        record.push_str(&format!("{path},sha256={hash},{}\n", text.len()));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    writer
        .start_file(
            format!("{dist_info}/RECORD"),
            zip::write::SimpleFileOptions::DEFAULT,
        )
        .unwrap();
    writer.write_all(record.as_bytes()).unwrap();
    writer.finish().unwrap();
}

/// Dependencies come from the wheelhouse into both variants: zipped with the app for Pyodide,
/// on the path of a fresh venv natively, and locked in the native sibling's archive. The kept
/// standard library ships as bytecode alone.
#[test]
fn dependencies_from_a_wheelhouse_reach_both_variants() {
    let out = tempfile::tempdir().unwrap();
    let wheelhouse = tempfile::tempdir().unwrap();
    let project = fixture("py-deps");
    let output = build_python(
        &project,
        out.path(),
        &["--wheelhouse", wheelhouse.path().to_str().unwrap()],
    );
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("tinyscale"), "{}", stderr(&output));

    write_wheel(
        wheelhouse.path(),
        "tinyscale",
        &[(
            "tinyscale/__init__.py",
            "def scale(values, factor):\n    return [v * factor for v in values]\n",
        )],
    );
    // The native-only requirement: an "accelerated" package with a compiled extension, which
    // Pyodide could not take.
    write_wheel(
        wheelhouse.path(),
        "tinyfast",
        &[
            (
                "tinyfast/__init__.py",
                "def scale(values, factor):\n    return [factor * v for v in values]\n",
            ),
            (
                "tinyfast/_kernels.so",
                "a compiled extension, never imported here",
            ),
        ],
    );
    let output = build_python(
        &project,
        out.path(),
        &[
            "--wheelhouse",
            wheelhouse.path().to_str().unwrap(),
            "--no-snapshot",
            "--no-split",
            "--profile",
            "pyodide-fast-boot",
        ],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert!(manifest.get("runtime_split").is_none());
    // The whole runtime's linking is planned too, and checked in a boot of its own.
    let plan = &manifest["runtime_linking"]["plan"];
    assert!(plan["planned_slots"].as_u64() > Some(0), "{plan}");
    // The pyodide-fast-boot profile (--bytecode-only): .pyc made by Pyodide's own interpreter ship
    // in place of the kept sources (--precompile would keep both), and every sample still ran on
    // them.
    assert_eq!(manifest["shake"]["bytecode_only"], true);
    let precompiled = manifest["shake"]["precompiled"].as_u64().unwrap();
    assert!(precompiled > 10, "{}", manifest["shake"]);
    let stdlib = std::fs::read(out.path().join("py-deps-0.1.0/pyodide/python_stdlib.zip")).unwrap();
    let stdlib = zip::ZipArchive::new(std::io::Cursor::new(stdlib)).unwrap();
    let names: Vec<String> = stdlib
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .collect();
    let compiled: Vec<&String> = names.iter().filter(|n| n.ends_with(".pyc")).collect();
    assert_eq!(compiled.len() as u64, precompiled);
    for pyc in compiled {
        assert!(
            !names.contains(&pyc[..pyc.len() - 1].to_string()),
            "{pyc} ships with its source"
        );
    }
    assert!(
        manifest["shake"]["runtime"]
            .as_str()
            .unwrap()
            .contains("--no-split"),
        "{}",
        manifest["shake"]["runtime"]
    );
    assert_eq!(
        manifest["native"]["requirements"],
        serde_json::json!(["tinyfast==1.0", "tinyscale==1.0"])
    );
    assert_eq!(
        manifest["native"]["accelerated"],
        serde_json::json!(["tinyfast==1.0"])
    );
    let native_run = &manifest["timings"]["native"];
    assert_eq!(
        native_run["accelerated_imported"],
        serde_json::json!(["tinyfast"])
    );
    assert!(native_run["cuda"]["available"].is_boolean(), "{native_run}");
    assert!(
        manifest["shake"]["modules"].get("tinyfast").is_none(),
        "the native-only package stays out of Pyodide"
    );
    assert_eq!(manifest["shake"]["modules"]["tinyscale"], "traced");
    assert_eq!(manifest["parity"]["native"]["passed"], true);

    let bundle = out.path().join("py-deps-0.1.0");
    let outputs = loader_outputs(&bundle, &serde_json::json!([[1.5, -2.0]]));
    let doubled: Vec<f64> = serde_json::from_value(outputs[0].clone()).unwrap();
    assert_eq!(doubled, [3.0, -4.0]);

    let archive = std::fs::read(bundle.join(manifest["native"]["file"].as_str().unwrap())).unwrap();
    let tar = zstd::decode_all(archive.as_slice()).unwrap();
    let mut names = Vec::new();
    let mut lock = String::new();
    for entry in tar::Archive::new(tar.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name == "requirements.lock" {
            std::io::Read::read_to_string(&mut entry, &mut lock).unwrap();
        }
        names.push(name);
    }
    assert!(
        names.contains(&"app/depsapp/main.py".to_string()),
        "{names:?}"
    );
    for file in [
        "site-packages/tinyscale/__init__.py",
        "site-packages/tinyfast/__init__.py",
        "site-packages/tinyfast/_kernels.so",
    ] {
        assert!(names.contains(&file.to_string()), "{names:?}");
    }
    assert_eq!(lock, "tinyfast==1.0\ntinyscale==1.0\n");
}

/// A dependency that the Pyodide distribution's lock provides comes from the distribution: its
/// wheel (checked against the lock's sha256) ships beside a lock trimmed to it, and loader.mjs
/// loads it after every boot, the snapshot's included; native CPython installs the same wheel
/// from the wheelhouse. A wheel altered in the distribution or in the bundle is refused, and so
/// is a requirement the lock's version does not satisfy.
#[test]
fn packages_from_the_distributions_lock_load_in_every_boot() {
    use cargo_wasmpack_infer::python::dist::{self, Source};
    let stock = dist::resolve(&Source::parse(PYODIDE).unwrap(), false).unwrap();
    let distribution = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&stock.dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), distribution.path().join(entry.file_name())).unwrap();
        }
    }
    let wheelhouse = tempfile::tempdir().unwrap();
    let package = [(
        "tinylock/__init__.py",
        "def weighted_sum(values):\n    import fractions\n    \
         return float(sum(fractions.Fraction(v) * (i + 1) for i, v in enumerate(values)))\n",
    )];
    write_wheel(distribution.path(), "tinylock", &package);
    write_wheel(wheelhouse.path(), "tinylock", &package);
    let wheel_name = "tinylock-1.0-py3-none-any.whl";
    let wheel_path = distribution.path().join(wheel_name);
    let lock_path = distribution.path().join("pyodide-lock.json");
    let mut lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lock_path).unwrap()).unwrap();
    lock["packages"]["tinylock"] = serde_json::json!({
        "name": "tinylock", "version": "1.0", "file_name": wheel_name,
        "sha256": cargo_wasmpack_infer::fsx::sha256_hex(&std::fs::read(&wheel_path).unwrap()),
        "imports": ["tinylock"], "depends": [], "install_dir": "site",
        "package_type": "package", "unvendored_tests": false,
    });
    std::fs::write(&lock_path, lock.to_string()).unwrap();

    let project = fixture("py-lockpkg");
    let out = tempfile::tempdir().unwrap();
    let build_with = |project: &Path| {
        build(
            project,
            out.path(),
            &[
                "--pyodide",
                distribution.path().to_str().unwrap(),
                "--wheelhouse",
                wheelhouse.path().to_str().unwrap(),
                "--passes",
                "1",
                "--boots",
                "1",
                "--json",
            ],
        )
    };
    let output = build_with(&project);
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert_eq!(
        manifest["shake"]["packages"],
        serde_json::json!(["tinylock"])
    );
    assert_eq!(manifest["shake"]["modules"]["tinylock"], "traced");
    // Profiled and validated with the package loaded: the split ships.
    assert_eq!(
        manifest.get("runtime_split").is_some(),
        splits_runtime(),
        "{}",
        manifest["shake"]["runtime"]
    );
    assert_eq!(manifest["shake"]["modules"]["fractions"], "traced");
    assert_eq!(manifest["parity"]["native"]["passed"], true);
    assert_eq!(
        manifest["native"]["requirements"],
        serde_json::json!(["tinylock==1.0"])
    );
    assert!(
        manifest["native"].get("accelerated").is_none(),
        "{}",
        manifest["native"]
    );
    let bundle = out.path().join("py-lockpkg-0.1.0");
    let shipped: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("pyodide/pyodide-lock.json")).unwrap())
            .unwrap();
    let kept: Vec<&String> = shipped["packages"].as_object().unwrap().keys().collect();
    assert_eq!(kept, ["tinylock"]);
    assert_eq!(
        std::fs::read(bundle.join("pyodide").join(wheel_name)).unwrap(),
        std::fs::read(&wheel_path).unwrap()
    );
    let app =
        zip::ZipArchive::new(std::fs::File::open(bundle.join("pyodide/app.zip")).unwrap()).unwrap();
    assert!(
        app.file_names()
            .all(|name| !name.unwrap().starts_with("tinylock")),
        "the distribution's package stays out of app.zip"
    );
    let inputs = serde_json::json!([[1.0, 2.0], [0.5]]);
    let expected = serde_json::json!([[5, 2], [0.5, 1]]);
    assert_eq!(run_loader(&bundle, &inputs, "normal"), expected);
    assert_eq!(run_loader(&bundle, &inputs, "snapshot"), expected);

    let error = loader_error_after_tampering(&bundle, &format!("pyodide/{wheel_name}"), &inputs);
    assert!(error.contains("IntegrityError"), "{error}");

    // The distribution's wheel no longer matches its lock.
    let mut wheel = std::fs::read(&wheel_path).unwrap();
    let last = wheel.len() - 1;
    wheel[last] ^= 1;
    std::fs::write(&wheel_path, &wheel).unwrap();
    let output = build_with(&project);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("sha256 does not match pyodide-lock.json"),
        "{}",
        stderr(&output)
    );

    let stricter = tempfile::tempdir().unwrap();
    copy_tree(&project, stricter.path());
    let pyproject = std::fs::read_to_string(project.join("pyproject.toml")).unwrap();
    std::fs::write(
        stricter.path().join("pyproject.toml"),
        pyproject.replace("tinylock>=1.0", "tinylock>=2"),
    )
    .unwrap();
    let output = build_with(stricter.path());
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("provides tinylock 1.0, which does not satisfy it"),
        "{}",
        stderr(&output)
    );
}

/// `new python` writes a project that builds, matches native CPython and meets its budgets.
#[test]
fn new_python_builds_and_meets_its_budgets_right_away() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("my-model");
    let output = wpi(&[
        "new",
        "python",
        "my-model",
        "--dir",
        project.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("--pyodide npm:"),
        "{}",
        stdout(&output)
    );
    assert!(project.join("my_model/model.py").is_file());
    let output = build_python(
        &project,
        &dir.path().join("dist"),
        &["--check", "--no-snapshot", "--no-link-plan"],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert_eq!(manifest["project"]["entry"], "my_model.model:predict");
    // Pyodide's glue ships as it is, and the manifest says why.
    let linking = &manifest["runtime_linking"];
    assert!(linking.get("plan").is_none(), "{linking}");
    assert!(
        linking["note"].as_str().unwrap().contains("--no-link-plan"),
        "{linking}"
    );
    assert_eq!(manifest["parity"]["native"]["passed"], true);
    assert_eq!(manifest["parity"]["native"]["samples"], 16);
    assert!(
        manifest["budgets"]
            .as_object()
            .is_some_and(|b| b.len() == 2),
        "{}",
        manifest["budgets"]
    );
}
