//! ONNX models compiled ahead of time by `new kernel --onnx`: each model in
//! `tests/fixtures/onnx-aot` (written by its make.py with skl2onnx and onnx, with ONNX Runtime's
//! outputs on held-out inputs) becomes a crate that builds with `build --check` at once, and both
//! its variants reproduce ONNX Runtime on every sample.

use crate::common::*;
use cargo_wasmpack_infer::manifest::Dtype;
use cargo_wasmpack_infer::measure::native::NativeKernel;
use cargo_wasmpack_infer::measure::runner::KernelRunner;
use cargo_wasmpack_infer::measure::wasm::WasmHost;
use serde::Deserialize;
use std::path::Path;
use std::process::Command;

#[derive(Deserialize)]
struct Case {
    name: String,
    output: String,
    input_len: usize,
    output_len: usize,
    samples: usize,
    tolerance: f64,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixture("onnx-aot/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn new_compiled(model: &Path, output: &str, dir: &Path, extra: &[&str]) {
    let mut args = vec![
        "new",
        "kernel",
        dir.file_name().unwrap().to_str().unwrap(),
        "--onnx",
        model.to_str().unwrap(),
        "--output",
        output,
        "--engine",
        "aot",
        "--dir",
        dir.to_str().unwrap(),
    ];
    args.extend(extra);
    assert_exit(&wpi(&args), 0);
}

/// Writes the crate for `case` (with `extra` arguments to `new`), builds it with `--check`, and
/// checks both variants against ONNX Runtime within `tolerance` on every held-out sample.
/// Returns the bundle's manifest.
fn compile_and_compare(
    host: &WasmHost,
    root: &Path,
    case: &Case,
    extra: &[&str],
    tolerance: f64,
) -> serde_json::Value {
    let name = &case.name;
    let crate_dir = root.join(name);
    let model = fixture(&format!("onnx-aot/{name}.onnx"));
    new_compiled(&model, &case.output, &crate_dir, extra);
    let lib = crate_dir.join("src/lib.rs");
    assert!(
        !std::fs::read_to_string(&lib).unwrap().contains("tract"),
        "{name}: no interpreter"
    );
    if let Ok(status) = Command::new("rustfmt")
        .args(["--check", "--edition", "2024"])
        .arg(&lib)
        .status()
    {
        assert!(
            status.success(),
            "{name}: the generated source is not rustfmt's layout"
        );
    }
    // Measure and check parity on the real held-out inputs rather than generated ones.
    let inputs = std::fs::read(fixture(&format!("onnx-aot/{name}.inputs.bin"))).unwrap();
    std::fs::write(crate_dir.join("samples/inputs.bin"), &inputs).unwrap();
    let out = root.join(format!("{name}-dist"));
    // One SIMD level per model: the operators are under test here, the levels on the examples
    // (and the helper's tiles at every level in its own tests).
    let output = build(
        &crate_dir,
        &out,
        &[
            "--check",
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
    assert_eq!(manifest["parity"]["passed"], true, "{name}");
    assert_eq!(manifest["wasm"]["imports"], serde_json::json!([]), "{name}");

    let reference = Dtype::F32
        .decode(&std::fs::read(fixture(&format!("onnx-aot/{name}.onnxruntime.bin"))).unwrap());
    assert_eq!(inputs.len(), case.samples * case.input_len * 4, "{name}");
    assert_eq!(reference.len(), case.samples * case.output_len, "{name}");
    let bundle = out.join(format!("{name}-0.1.0"));
    let mut wasm = host
        .load(&std::fs::read(bundle.join(format!("{name}.wasm"))).unwrap())
        .unwrap();
    let library = format!("lib{}.so", name.replace('-', "_"));
    let mut native = NativeKernel::load(&bundle.join(library)).unwrap();
    for (variant, runner) in [
        ("WASM", &mut wasm as &mut dyn KernelRunner),
        ("native", &mut native),
    ] {
        runner.init().unwrap();
        let ours = Dtype::F32.decode(
            &runner
                .infer(&inputs, case.samples, case.output_len * 4)
                .unwrap(),
        );
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f64, f64::max);
        assert!(
            worst <= tolerance,
            "{name}: {variant} differs from ONNX Runtime by up to {worst:e} (tolerance \
             {tolerance:e})"
        );
    }
    manifest
}

#[test]
fn compiled_onnx_kernels_reproduce_onnxruntime_in_both_variants() {
    let root = tempfile::tempdir().unwrap();
    let host = WasmHost::new().unwrap();
    for case in cases() {
        compile_and_compare(&host, root.path(), &case, &[], case.tolerance);
    }
}

/// Weights stored as f16 (half the layers' bytes) stay within their rounding of ONNX Runtime:
/// on the small CNN's probabilities, 1e-2.
#[test]
fn f16_weights_stay_within_their_rounding_of_onnxruntime() {
    let root = tempfile::tempdir().unwrap();
    let host = WasmHost::new().unwrap();
    let case = cases()
        .into_iter()
        .find(|c| c.name == "digits-cnn")
        .unwrap();
    compile_and_compare(&host, root.path(), &case, &["--weights", "f16"], 1e-2);
    let lib = std::fs::read_to_string(root.path().join("digits-cnn/src/lib.rs")).unwrap();
    assert!(lib.contains("take_f16"), "{lib}");
}

/// The same model generates the same bytes, wherever the crate is written.
#[test]
fn regenerating_from_the_same_model_gives_identical_sources() {
    let root = tempfile::tempdir().unwrap();
    let model = fixture("onnx-aot/ops-mix.onnx");
    let (first, second) = (
        root.path().join("one/mix"),
        root.path().join("two/deeper/mix"),
    );
    new_compiled(&model, "y", &first, &[]);
    new_compiled(&model, "y", &second, &[]);
    for file in [
        "src/lib.rs",
        "model/weights.bin",
        "model/ops-mix.onnx",
        "samples/inputs.bin",
    ] {
        assert_eq!(
            std::fs::read(first.join(file)).unwrap(),
            std::fs::read(second.join(file)).unwrap(),
            "{file}"
        );
    }
}
