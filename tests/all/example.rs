//! End-to-end on the bundled example: the digits MLP must reproduce its trained labels in both
//! variants, and the bundle must re-measure and detect tampering.

use crate::common::*;
use cargo_wasmpack_infer::manifest::Dtype;
use cargo_wasmpack_infer::measure::native::NativeKernel;
use cargo_wasmpack_infer::measure::parity::argmax;
use cargo_wasmpack_infer::measure::runner::KernelRunner;
use cargo_wasmpack_infer::measure::wasm::WasmHost;
use std::process::Command;

const CLASSES: usize = 10;

fn labels(runner: &mut dyn KernelRunner, samples: &[u8]) -> Vec<u8> {
    runner.init().unwrap();
    let count = samples.len() / (64 * 4);
    let output = runner.infer(samples, count, CLASSES * 4).unwrap();
    Dtype::F32
        .decode(&output)
        .chunks_exact(CLASSES)
        .map(|logits| argmax(logits) as u8)
        .collect()
}

#[test]
fn digits_example_reproduces_held_out_labels_in_both_variants() {
    let out = tempfile::tempdir().unwrap();
    let example = repo_root().join("examples/digits-mlp");
    let output = wpi(&[
        "build",
        example.to_str().unwrap(),
        "--out-dir",
        out.path().to_str().unwrap(),
        "--json",
        "--npm",
    ]);
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    let bundle = out.path().join("digits-mlp-0.1.0");

    let samples = std::fs::read(example.join("samples/inputs.bin")).unwrap();
    let expected = std::fs::read(example.join("samples/expected.bin")).unwrap();
    let truth = std::fs::read(example.join("samples/labels.bin")).unwrap();
    assert_eq!(std::fs::read(bundle.join("samples.bin")).unwrap(), samples);

    let host = WasmHost::new().unwrap();
    let mut wasm = host
        .load(&std::fs::read(bundle.join("digits-mlp.wasm")).unwrap())
        .unwrap();
    let mut native = NativeKernel::load(&bundle.join("libdigits_mlp.so")).unwrap();
    let wasm_labels = labels(&mut wasm, &samples);
    let native_labels = labels(&mut native, &samples);
    assert_eq!(
        wasm_labels, expected,
        "WASM variant reproduces the trained model's labels"
    );
    assert_eq!(
        native_labels, expected,
        "native variant reproduces the trained model's labels"
    );
    let correct = wasm_labels
        .iter()
        .zip(&truth)
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        correct as f64 / truth.len() as f64 >= 0.95,
        "accuracy {correct}/{}",
        truth.len()
    );

    assert_eq!(manifest["parity"]["passed"], true);
    check_cuda_record(&manifest, &[1, 16, 256, 4096]);
    assert_eq!(
        manifest["budgets"]["wasm.brotli_bytes"], "16 KiB",
        "the example's budgets are recorded"
    );
    assert_eq!(manifest["parity"]["argmax_agree"], 360);
    let argmax_wasm: Vec<u8> =
        serde_json::from_value(manifest["parity"]["per_sample"]["argmax_wasm"].clone()).unwrap();
    assert_eq!(argmax_wasm, expected);
    let stages = &manifest["wasm"]["stages"];
    let built = stages["built_bytes"].as_u64().unwrap();
    let shaken = stages["shake"]["bytes"].as_u64().unwrap();
    let optimized = stages["optimize"]["bytes"].as_u64().unwrap();
    // The speed profile's wasm-opt -O3 may inline and grow what the shaker left; the result must
    // still be smaller than what cargo built.
    assert!(
        shaken < built && optimized < built,
        "{built} → {shaken} → {optimized}"
    );
    assert_eq!(
        manifest["wasm"]["exports"].as_array().unwrap().len(),
        6,
        "{}",
        manifest["wasm"]["exports"]
    );
    check_variants(&manifest);
    for file in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(bundle.join(file["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            file["sha256"],
            cargo_wasmpack_infer::fsx::sha256_hex(&bytes)
        );
    }

    check_node_loader(&bundle, &example.join("samples/inputs.bin"), &expected);
    check_npm_package(&bundle, &example.join("samples/inputs.bin"), &expected);
    check_python_loader(&bundle, &example.join("samples/inputs.bin"), &expected);

    // Re-measure the bundle in place; then tamper with it and expect an input error.
    let output = wpi(&[
        "measure",
        bundle.to_str().unwrap(),
        "--json",
        "--steady-runs",
        "20",
    ]);
    assert_exit(&output, 0);
    let remeasured = manifest_from_stdout(&output);
    assert_eq!(
        remeasured["timings"]["wasm"]["steady"][0]["latency"]["runs"],
        20
    );
    assert_eq!(remeasured["files"], manifest["files"]);

    let output = wpi(&["verify", bundle.to_str().unwrap()]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("parity reproduced on 360 samples"),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        remeasured["timings"]["variants"].as_array().unwrap().len(),
        3,
        "measure re-times every variant"
    );
    // Verify compares the variants again, by the kernel's tolerance: tightened below relaxed
    // SIMD's rounding (or its bits, where it was exact), that variant is reported.
    let manifest_path = bundle.join("manifest.json");
    let original = std::fs::read_to_string(&manifest_path).unwrap();
    let mut tightened: serde_json::Value = serde_json::from_str(&original).unwrap();
    tightened["kernel"]["tolerance"] = serde_json::json!(0.0);
    tightened["wasm"]["variants"][2]["agreement"]["bit_exact"] = serde_json::json!(true);
    std::fs::write(&manifest_path, tightened.to_string()).unwrap();
    let output = wpi(&["verify", bundle.to_str().unwrap()]);
    let relaxed_exact = remeasured["wasm"]["variants"][2]["agreement"]["bit_exact"] == true;
    if !relaxed_exact {
        assert_exit(&output, 1);
        assert!(
            stdout(&output).contains("relaxed-simd variant disagrees with the baseline variant"),
            "{}",
            stdout(&output)
        );
    }
    std::fs::write(&manifest_path, original).unwrap();

    let mut wasm_bytes = std::fs::read(bundle.join("digits-mlp.wasm")).unwrap();
    *wasm_bytes.last_mut().unwrap() ^= 1;
    std::fs::write(bundle.join("digits-mlp.wasm"), wasm_bytes).unwrap();
    let output = wpi(&["measure", bundle.to_str().unwrap()]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("digits-mlp.wasm: sha256 does not match"),
        "{}",
        stderr(&output)
    );
}

/// The example declares `cuda`, so the native library is built with it. Without a GPU (CI) the
/// library falls back to the CPU and the manifest says why; with one, CUDA's outputs match WASM's
/// and its calls are split into transfer and compute. Either way every batch size has a winner.
fn check_cuda_record(manifest: &serde_json::Value, sweep: &[u64]) {
    assert_eq!(manifest["native"]["features"], serde_json::json!(["cuda"]));
    let cuda = &manifest["timings"]["cuda"];
    assert_eq!(cuda["requested"], true);
    match cuda["accelerator"].as_str().unwrap() {
        "cpu" => {
            let reason = cuda["reason"].as_str().unwrap();
            assert!(reason.starts_with("cuda unavailable: "), "{reason}");
            assert!(
                cuda["device"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("({reason})"))
            );
            assert!(cuda["parity"].is_null() && cuda["steady"].as_array().unwrap().is_empty());
        }
        "cuda" => {
            assert!(cuda["device"].as_str().unwrap().starts_with("cuda:"));
            assert_eq!(cuda["parity"]["passed"], true);
            for steady in cuda["steady"].as_array().unwrap() {
                assert!(steady["transfer"]["compute_us"].as_f64().unwrap() > 0.0);
            }
        }
        other => panic!("unknown accelerator {other}"),
    }
    let batches = manifest["timings"]["runtime_fit"]["batches"]
        .as_array()
        .unwrap();
    let sizes: Vec<u64> = batches
        .iter()
        .map(|b| b["batch"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, sweep);
    for batch in batches {
        let fastest = batch["fastest"].as_str().unwrap();
        assert!(batch["summary"].as_str().unwrap().starts_with(fastest));
    }
}

/// The heavy example builds, its variants agree, and its seeded weights are the same on every
/// target: the outputs differ only by fused multiply-adds on the native side (~1e-6, where other
/// weights would move them by ~1); the sweep is cut short to keep CI fast.
#[test]
fn mlp_large_variants_agree_across_a_short_sweep() {
    let out = tempfile::tempdir().unwrap();
    let output = wpi(&[
        "build",
        repo_root().join("examples/mlp-large").to_str().unwrap(),
        "--out-dir",
        out.path().to_str().unwrap(),
        "--json",
        "--steady-runs",
        "5",
        "--batches",
        "1,16",
    ]);
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert_eq!(manifest["parity"]["passed"], true);
    let max_abs_diff = manifest["parity"]["max_abs_diff"].as_f64().unwrap();
    assert!(max_abs_diff < 1e-4, "{max_abs_diff}");
    check_cuda_record(&manifest, &[1, 16]);
}

/// The browser profile's three levels, each shipped, validated, compared with the baseline and
/// timed; simd128 is the primary (Safari 16.4 and Node 20, on the floor, lack relaxed SIMD).
fn check_variants(manifest: &serde_json::Value) {
    assert_eq!(
        manifest["schema_version"],
        cargo_wasmpack_infer::manifest::SCHEMA_VERSION
    );
    let variants = manifest["wasm"]["variants"].as_array().unwrap();
    let levels: Vec<&str> = variants
        .iter()
        .map(|v| v["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["baseline", "simd128", "relaxed-simd"]);
    let primary: Vec<&str> = variants
        .iter()
        .filter(|v| v["primary"] == true)
        .map(|v| v["file"].as_str().unwrap())
        .collect();
    assert_eq!(primary, ["digits-mlp.wasm"]);
    assert!(
        variants[0].get("agreement").is_none(),
        "the baseline is the reference"
    );
    assert_eq!(variants[1]["agreement"]["reference"], "baseline");
    let relaxed = &variants[2];
    assert_eq!(relaxed["file"], "digits-mlp.relaxed-simd.wasm");
    assert_eq!(
        relaxed["floor_engines_lacking"],
        serde_json::json!(["chrome", "firefox", "safari", "node"])
    );
    let judged = relaxed["agreement"]["judged"].as_str().unwrap();
    assert!(
        relaxed["agreement"]["bit_exact"] == true || judged.contains("never compared bit for bit"),
        "{judged}"
    );
    for variant in variants {
        assert_eq!(variant["differential_samples"], 360);
        assert!(variant["sizes"]["brotli_bytes"].as_u64().unwrap() > 0);
    }
    let timed: Vec<&str> = manifest["timings"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["level"].as_str().unwrap())
        .collect();
    assert_eq!(timed, levels);
    for t in manifest["timings"]["variants"].as_array().unwrap() {
        assert_eq!(t["steady"].as_array().unwrap().len(), 4, "{t}");
        assert_eq!(t["over_native"].as_array().unwrap().len(), 4, "{t}");
    }
}

/// The bundle's loader.py under wasmtime-py reproduces the labels with every variant, through
/// NumPy and array.array alike, picks the most capable level, and refuses a tampered module.
fn check_python_loader(bundle: &std::path::Path, samples: &std::path::Path, expected: &[u8]) {
    let Some(python) = host_python() else {
        return;
    };
    let output = Command::new(&python)
        .arg(repo_root().join("tests/python-host/run_loader.py"))
        .arg(bundle)
        .arg(samples)
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["best"], "relaxed-simd", "wasmtime runs every level");
    assert_eq!(report["loaded"], "relaxed-simd");
    for level in ["baseline", "simd128", "relaxed-simd"] {
        let variant = &report["variants"][level];
        let labels: Vec<u8> = serde_json::from_value(variant["labels"].clone()).unwrap();
        assert_eq!(labels, expected, "loader.py, {level}");
        assert_eq!(variant["shape"], serde_json::json!([expected.len(), 10]));
        assert_eq!(variant["array_agrees"], true, "{level}");
    }
    assert!(
        report["wrong_dtype"]
            .as_str()
            .is_some_and(|e| e.contains("float32") && e.contains("float64")),
        "{report}"
    );

    let tampered = tempfile::tempdir().unwrap();
    copy_tree(bundle, tampered.path());
    let module = tampered.path().join("digits-mlp.wasm");
    let mut bytes = std::fs::read(&module).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&module, bytes).unwrap();
    let output = Command::new(&python)
        .arg("-c")
        .arg(
            "import sys; sys.path.insert(0, sys.argv[1]); import loader\n\
             try:\n    loader.load(variant='simd128')\n\
             except loader.IntegrityError as error:\n    print(error)",
        )
        .arg(tampered.path())
        .output()
        .unwrap();
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("integrity check failed for")
            && stdout(&output).contains("digits-mlp.wasm: expected sha256"),
        "{}",
        stdout(&output)
    );
}

/// The bundle's loader.mjs in Node reproduces the labels with every variant, loads the most
/// capable one this Node runs (relaxed SIMD from Node 21, or 20 with its flag), and refuses a
/// tampered module.
fn check_node_loader(bundle: &std::path::Path, samples: &std::path::Path, expected: &[u8]) {
    let node = |flags: &[&str], bundle: &std::path::Path, level: Option<&str>| {
        std::process::Command::new("node")
            .args(flags)
            .arg(repo_root().join("tests/node/run-loader.mjs"))
            .arg(bundle)
            .arg(samples)
            .args(level)
            .output()
    };
    let Ok(version) = std::process::Command::new("node").arg("--version").output() else {
        eprintln!("skipping the Node loader check: `node` is not installed");
        return;
    };
    let major: u32 = stdout(&version)
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap();
    let run = |flags: &[&str], level: Option<&str>| {
        let output = node(flags, bundle, level).unwrap();
        assert_exit(&output, 0);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let labels: Vec<u8> = serde_json::from_value(report["labels"].clone()).unwrap();
        assert_eq!(
            labels, expected,
            "loader.mjs in Node reproduces the trained labels ({level:?}, {flags:?})"
        );
        report
    };
    let best = if major >= 21 {
        "relaxed-simd"
    } else {
        "simd128"
    };
    let report = run(&[], None);
    assert_eq!(report["variant"], best, "{report}");
    assert_eq!(report["best"], best, "{report}");
    for level in ["baseline", "simd128"] {
        assert_eq!(run(&[], Some(level))["variant"], level);
    }
    if major == 20 {
        let report = run(&["--experimental-wasm-relaxed-simd"], None);
        assert_eq!(report["variant"], "relaxed-simd", "{report}");
    }
    let output = node(&[], bundle, Some("avx512")).unwrap();
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains(
            r#"no variant "avx512" in this bundle; it ships relaxed-simd, simd128, baseline"#
        ),
        "{}",
        stderr(&output)
    );

    let tampered = tempfile::tempdir().unwrap();
    for file in ["loader.mjs", "digits-mlp.wasm"] {
        std::fs::copy(bundle.join(file), tampered.path().join(file)).unwrap();
    }
    let wasm = tampered.path().join("digits-mlp.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&wasm, bytes).unwrap();
    let output = node(&[], tampered.path(), Some("simd128")).unwrap();
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("IntegrityError: integrity check failed"),
        "{}",
        stderr(&output)
    );
}

/// The bundle is an npm package: `npm pack` takes exactly the WASM side (loader, types, the three
/// modules, the manifest), `npm install --offline` of the tarball into a fresh project works, and
/// a script there imports it by name and reproduces the labels.
fn check_npm_package(bundle: &std::path::Path, samples: &std::path::Path, expected: &[u8]) {
    let package: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("package.json")).unwrap()).unwrap();
    assert_eq!(package["name"], "digits-mlp");
    assert_eq!(package["version"], "0.1.0");
    assert_eq!(package["exports"]["."]["default"], "./loader.mjs");
    let manifest = std::fs::read(bundle.join("manifest.json")).unwrap();
    assert_eq!(
        package["wasmpackInfer"]["manifestSha256"],
        cargo_wasmpack_infer::fsx::sha256_hex(&manifest)
    );
    let Some((app, files)) = install_packed(bundle) else {
        return;
    };
    assert_eq!(
        files,
        [
            "digits-mlp.baseline.wasm",
            "digits-mlp.relaxed-simd.wasm",
            "digits-mlp.wasm",
            "loader.d.ts",
            "loader.mjs",
            "manifest.json",
            "package.json"
        ]
    );
    let app_script = r#"import { readFile } from "node:fs/promises";
import { load } from "digits-mlp";
const model = await load();
const input = new Float32Array(new Uint8Array(await readFile(process.argv[2])).buffer);
const output = await model.infer(input);
const labels = [];
for (let i = 0; i < output.length; i += 10) {
  let best = 0;
  for (let j = 1; j < 10; j++) if (output[i + j] > output[i + best]) best = j;
  labels.push(best);
}
console.log(JSON.stringify(labels));
"#;
    // `build --npm` wrote the same package as a tarball of its own: it installs and runs alike.
    let ours = bundle.join("digits-mlp-0.1.0.tgz");
    assert!(ours.is_file(), "build --npm writes the package tarball");
    for app in [app, install_tarball(&ours)] {
        std::fs::write(app.path().join("app.mjs"), app_script).unwrap();
        let output = Command::new("node")
            .arg("app.mjs")
            .arg(samples)
            .current_dir(app.path())
            .output()
            .unwrap();
        assert_exit(&output, 0);
        let labels: Vec<u8> = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            labels, expected,
            "the installed package reproduces the labels"
        );
        let mut installed: Vec<String> =
            std::fs::read_dir(app.path().join("node_modules/digits-mlp"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        installed.sort();
        assert_eq!(installed, files, "both tarballs hold the same files");
        if let Some(esbuild) = npm_tool(".bin/esbuild") {
            bundled_app_loads_the_package(&esbuild, app.path(), samples, expected);
        }
    }
}

/// A bundler check: esbuild bundles an app that imports the installed package for the browser
/// (an ES module, the loader's Node-only imports left alone), and the bundle runs in Node from
/// another directory. The loader resolves the modules via `import.meta.url`, so they are found
/// beside the bundle, where the app copies them, and a missing one is named.
fn bundled_app_loads_the_package(
    esbuild: &std::path::Path,
    app: &std::path::Path,
    samples: &std::path::Path,
    expected: &[u8],
) {
    let values: Vec<f32> = std::fs::read(samples)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    std::fs::write(
        app.join("samples.json"),
        serde_json::to_vec(&values).unwrap(),
    )
    .unwrap();
    std::fs::write(
        app.join("bundled.mjs"),
        r#"import { load } from "digits-mlp";
import samples from "./samples.json";
const model = await load();
const output = await model.infer(new Float32Array(samples));
const labels = [];
for (let i = 0; i < output.length; i += 10) {
  let best = 0;
  for (let j = 1; j < 10; j++) if (output[i + j] > output[i + best]) best = j;
  labels.push(best);
}
console.log(JSON.stringify(labels));
"#,
    )
    .unwrap();
    let public = app.join("public");
    let output = Command::new(esbuild)
        .args([
            "bundled.mjs",
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--log-level=warning",
            "--outfile=public/app.mjs",
        ])
        .current_dir(app)
        .output()
        .unwrap();
    assert_exit(&output, 0);
    assert!(
        stderr(&output).is_empty(),
        "esbuild warned: {}",
        stderr(&output)
    );
    let run_bundle = || {
        Command::new("node")
            .arg(public.join("app.mjs"))
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    let output = run_bundle();
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("public/digits-mlp.wasm"),
        "a module not copied beside the bundle is named: {}",
        stderr(&output)
    );
    for entry in std::fs::read_dir(app.join("node_modules/digits-mlp")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            std::fs::copy(&path, public.join(path.file_name().unwrap())).unwrap();
        }
    }
    let output = run_bundle();
    assert_exit(&output, 0);
    let labels: Vec<u8> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(labels, expected, "the bundled app reproduces the labels");
}

/// Two checkouts in directories of different path lengths, each with its own cargo target
/// directory, build byte-identical bundles of both kernel examples: the WASM module, the native
/// library (with its CUDA path), loader and archive. Both build from one stage named by the
/// sources' content; without it the native library's code layout moved with the checkout's path
/// length.
#[test]
fn checkouts_in_different_directories_build_identical_bundles() {
    let examples = ["digits-mlp", "mlp-large"];
    let checkouts: Vec<Vec<serde_json::Value>> = ["first-checkout", "second"]
        .iter()
        .map(|name| {
            let root = tempfile::Builder::new()
                .prefix(name)
                .tempdir()
                .unwrap()
                .keep();
            copy_tree(&repo_root().join("kernel"), &root.join("kernel"));
            let manifests = examples
                .iter()
                .map(|name| {
                    let example = root.join("examples").join(name);
                    copy_tree(&repo_root().join("examples").join(name), &example);
                    let output = Command::new(env!("CARGO_BIN_EXE_cargo-wasmpack-infer"))
                        .args(["build", example.to_str().unwrap(), "--out-dir"])
                        .arg(root.join("dist"))
                        .args(["--json", "--steady-runs", "5", "--batches", "1,16"])
                        .env("CI", "true")
                        // Fresh builds, not one cache hit.
                        .env("CARGO_TARGET_DIR", root.join("target"))
                        .output()
                        .unwrap();
                    assert_exit(&output, 0);
                    let mut manifest = manifest_from_stdout(&output);
                    assert_eq!(manifest["native"]["features"], serde_json::json!(["cuda"]));
                    manifest.as_object_mut().unwrap().remove("timings");
                    manifest
                })
                .collect();
            std::fs::remove_dir_all(&root).unwrap();
            manifests
        })
        .collect();
    for (example, (first, second)) in examples.iter().zip(checkouts[0].iter().zip(&checkouts[1])) {
        assert_eq!(first, second, "{example}");
    }
}

/// Builds `examples/{name}` and checks that both variants reproduce ONNX Runtime's
/// probabilities (computed by the example's Python script and committed) on every held-out
/// sample; returns the manifest.
fn assert_example_reproduces_onnxruntime(name: &str) -> serde_json::Value {
    let out = tempfile::tempdir().unwrap();
    let example = repo_root().join("examples").join(name);
    // One level: these crates take minutes to build per level, and the variants' machinery is
    // tested on the small examples.
    let output = build(
        &example,
        out.path(),
        &[
            "--json",
            "--steady-runs",
            "3",
            "--batches",
            "1,16",
            "--variant",
            "simd128",
        ],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    let bundle = out.path().join(format!("{name}-0.1.0"));
    let samples = std::fs::read(example.join("samples/inputs.bin")).unwrap();
    let reference =
        Dtype::F32.decode(&std::fs::read(example.join("samples/onnxruntime.bin")).unwrap());
    let count = samples.len() / (64 * 4);
    assert_eq!(reference.len(), count * CLASSES);

    let host = WasmHost::new().unwrap();
    let mut wasm = host
        .load(&std::fs::read(bundle.join(format!("{name}.wasm"))).unwrap())
        .unwrap();
    let native_file = format!("lib{}.so", name.replace('-', "_"));
    let mut native = NativeKernel::load(&bundle.join(native_file)).unwrap();
    for (variant, runner) in [
        ("WASM", &mut wasm as &mut dyn KernelRunner),
        ("native", &mut native),
    ] {
        runner.init().unwrap();
        let probabilities = Dtype::F32.decode(&runner.infer(&samples, count, CLASSES * 4).unwrap());
        let worst = probabilities
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        assert!(
            worst <= 1e-5,
            "{name} {variant} differs from ONNX Runtime by up to {worst:e}"
        );
        for (ours, theirs) in probabilities
            .chunks_exact(CLASSES)
            .zip(reference.chunks_exact(CLASSES))
        {
            assert_eq!(argmax(ours), argmax(theirs), "{name} {variant}");
        }
    }
    assert_eq!(manifest["parity"]["passed"], true);
    assert_eq!(manifest["wasm"]["imports"], serde_json::json!([]));
    manifest
}

/// The ONNX example, run by tract inside the kernel; the profile's getrandom backend let tract
/// build for the browser.
#[test]
fn digits_onnx_reproduces_onnxruntime_in_both_variants() {
    let manifest = assert_example_reproduces_onnxruntime("digits-onnx");
    assert!(manifest["wasm"].get("getrandom_without_wasm_js").is_none());
}

/// The candle example (safetensors weights, the same MLP) builds as written, with no
/// wasm-specific setup: candle's zip dependency turns getrandom 0.4's `wasm_js` feature on, which
/// cannot build beside the profile's backend cfg, so that getrandom is built without it.
#[test]
fn digits_candle_reproduces_onnxruntime_in_both_variants() {
    let manifest = assert_example_reproduces_onnxruntime("digits-candle");
    assert_eq!(
        manifest["wasm"]["getrandom_without_wasm_js"],
        serde_json::json!(["getrandom 0.4.3"])
    );
}

/// `new kernel --onnx --engine tract` on the example's model writes a crate that `build --check`
/// accepts at once. It links tract twice more (about ten minutes on 2 cores), so it runs with
/// `just test-slow`, not in the default run; the template itself is unit-tested in scaffold.rs,
/// and the default engine (compiled ahead of time) end to end in onnx_aot.rs.
#[test]
#[ignore = "builds tract twice: run with `just test-slow`"]
fn new_tract_kernel_from_onnx_builds_and_meets_its_budgets_right_away() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("from-onnx");
    let model = repo_root().join("examples/digits-onnx/model/digits.onnx");
    let output = wpi(&[
        "new",
        "kernel",
        "from-onnx",
        "--onnx",
        model.to_str().unwrap(),
        "--engine",
        "tract",
        "--dir",
        crate_dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let out = dir.path().join("dist");
    let output = build(
        &crate_dir,
        &out,
        &["--check", "--steady-runs", "3", "--batches", "1"],
    );
    assert_exit(&output, 0);
    let manifest = bundle_manifest(&out.join("from-onnx-0.1.0"));
    assert_eq!(manifest["parity"]["passed"], true);
    assert_eq!(
        manifest["kernel"]["input"]["shape"],
        serde_json::json!([64])
    );
}

/// A profile with relaxed SIMD: the helper's tiles use `f32x4.relaxed_madd`, the module is
/// validated and optimized with the feature, and wasmtime's results stay within tolerance.
#[test]
fn relaxed_simd_profile_builds_fused_tiles_within_tolerance() {
    let out = tempfile::tempdir().unwrap();
    let profile = repo_root().join("tests/fixtures/profiles/relaxed-simd.toml");
    let output = wpi(&[
        "build",
        repo_root().join("examples/digits-mlp").to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "--out-dir",
        out.path().to_str().unwrap(),
        "--json",
        "--steady-runs",
        "5",
        "--batches",
        "1,16",
    ]);
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert_eq!(manifest["parity"]["passed"], true);
    let features = manifest["wasm"]["runtime_features"].as_array().unwrap();
    assert!(features.contains(&"relaxed-simd".into()), "{features:?}");
    let wasm = std::fs::read(
        out.path()
            .join("digits-mlp-0.1.0")
            .join(manifest["wasm"]["file"].as_str().unwrap()),
    )
    .unwrap();
    let fused = wasmparser::Parser::new(0)
        .parse_all(&wasm)
        .filter_map(|payload| match payload.unwrap() {
            wasmparser::Payload::CodeSectionEntry(body) => Some(body),
            _ => None,
        })
        .flat_map(|body| {
            let mut reader = body.get_operators_reader().unwrap();
            let mut ops = Vec::new();
            while !reader.eof() {
                ops.push(matches!(
                    reader.read().unwrap(),
                    wasmparser::Operator::F32x4RelaxedMadd
                ));
            }
            ops
        })
        .filter(|&fused| fused)
        .count();
    assert!(fused > 0, "the shipped module has no f32x4.relaxed_madd");
}
