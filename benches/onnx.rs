//! `cargo bench --bench onnx --profile dev` (`just bench-onnx`): one sklearn MLP (64-256-128-10,
//! exported to ONNX: examples/digits-onnx's model) three ways, side by side in one Node process
//! and one run: ONNX Runtime Web's wasm execution provider (npm `onnxruntime-web@1.30.0`, one
//! thread), the example's kernel that runs it with tract, and the kernel `new kernel --onnx`
//! compiles from it ahead of time. Shipped bytes (brotli; ORT Web must fetch the model besides
//! its wasm), load, first inference and steady median at batch 1, 16 and 256; plus what the
//! pipeline did to each module.
//!
//! Goals (printed as met / not met), for the compiled kernel: bytes ≤ 0.05× ORT Web's wasm;
//! faster than ORT Web at every batch size; and against tract, bytes and latency both. ORT Web
//! comes from npm into the tool's cache (`bench-node/`), once.

use cargo_wasmpack_infer::fsx;
use cargo_wasmpack_infer::kernel::pipeline::{self, BuildOptions, BuildOutput};
use cargo_wasmpack_infer::kernel::project::KernelProject;
use cargo_wasmpack_infer::measure::sizes::sizes;
use cargo_wasmpack_infer::measure::timing::TimingPlan;
use cargo_wasmpack_infer::profile::{
    DEFAULT_NATIVE_PROFILE, DEFAULT_PROFILE, NativeProfile, Profile,
};
use cargo_wasmpack_infer::report::Silent;
use cargo_wasmpack_infer::scaffold::{self, OnnxEngine};
use cargo_wasmpack_infer::units::format_bytes;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const ORT_WEB: &str = "onnxruntime-web@1.30.0";
const ORT_WASM_FILE: &str = "ort-wasm-simd-threaded.wasm";
const BATCHES: [usize; 3] = [1, 16, 256];

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("examples/digits-onnx");
    let model = example.join("model/digits.onnx");
    let work = tempfile::tempdir()?;

    // The compiled kernel, written as `new kernel --onnx` writes it, measured on the same samples.
    let compiled_dir = work.path().join("digits-aot");
    let helper = scaffold::helper_dependency(&compiled_dir, &scaffold::bundled_helper_crate())?;
    let compiled =
        scaffold::onnx_kernel_files("digits-aot", &model, None, OnnxEngine::AheadOfTime, &helper)?;
    scaffold::write_project(&compiled_dir, &compiled.files)?;
    std::fs::copy(
        example.join("samples/inputs.bin"),
        compiled_dir.join("samples/inputs.bin"),
    )?;

    let mut built = Vec::new();
    for (label, dir) in [("tract", example.as_path()), ("compiled", &compiled_dir)] {
        let project = KernelProject::load(dir, None, false)?;
        let started = Instant::now();
        let result = build(&project, &work.path().join(format!("{label}-dist")))?;
        let stages = &result.manifest.wasm.stages;
        println!(
            "{label:>8} ({}, {:.0} s warm, both variants): built {} → shaken {} ({} → {} \
             functions) → wasm-opt {} {}; brotli {}",
            project.name,
            started.elapsed().as_secs_f64(),
            format_bytes(stages.built_bytes),
            format_bytes(stages.shake.bytes),
            stages.shake.functions_before,
            stages.shake.functions_after,
            stages.optimize.level,
            format_bytes(stages.optimize.bytes),
            format_bytes(result.manifest.wasm.sizes.brotli_bytes),
        );
        built.push((label, result));
    }

    let ort_dir = install_ort_web()?;
    // What the wasm execution provider loads in Node (the other .wasm files are its JSEP,
    // JSPI and asyncify builds).
    let ort_wasm = sizes(&fsx::read(&ort_dir.join("dist").join(ORT_WASM_FILE))?)?.brotli_bytes;
    let model_brotli = sizes(&fsx::read(&model)?)?.brotli_bytes;

    let bundles: serde_json::Map<String, serde_json::Value> = built
        .iter()
        .map(|(label, b)| {
            (
                label.to_string(),
                serde_json::json!(b.bundle_dir.join("loader.mjs")),
            )
        })
        .collect();
    let config = serde_json::json!({
        "ort": ort_dir,
        "model": model,
        "input": "X",
        "output": "probabilities",
        "bundles": bundles,
        "samples": example.join("samples/inputs.bin"),
        "sampleLen": 64,
        "batches": BATCHES,
        "runs": 200,
        "warmup": 50,
    });
    let config_path = work.path().join("peers.json");
    std::fs::write(&config_path, config.to_string())?;
    let output = Command::new("node")
        .arg(root.join("benches/node/onnx-peers.mjs"))
        .arg(&config_path)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "the Node comparison failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let (ort, tract, ours) = (
        &result["ort"],
        &result["bundles"]["tract"],
        &result["bundles"]["compiled"],
    );

    println!(
        "\nin Node {} (one thread each), {} samples; max |Δ| from ORT Web: tract {:.2e}, \
         compiled {:.2e}",
        node_version(),
        result["samples"],
        f(&tract["maxAbsDiff"]),
        f(&ours["maxAbsDiff"]),
    );
    println!(
        "{:<26} {:>14} {:>14} {:>14} {:>9} {:>11}",
        "", "ORT Web", "tract kernel", "compiled", "/ORT Web", "/tract"
    );
    let brotli = |label: &str| {
        built
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0, |(_, b)| b.manifest.wasm.sizes.brotli_bytes)
    };
    let bytes_row = |label: &str, theirs: u64| {
        let (tract, ours) = (brotli("tract"), brotli("compiled"));
        println!(
            "{label:<26} {:>14} {:>14} {:>14} {:>8.3}x {:>10.3}x",
            format_bytes(theirs),
            format_bytes(tract),
            format_bytes(ours),
            ours as f64 / theirs as f64,
            ours as f64 / tract as f64
        );
        ours as f64 / theirs as f64
    };
    let bytes_ratio = bytes_row("wasm, brotli", ort_wasm);
    bytes_row("with the model, brotli", ort_wasm + model_brotli);
    let row = |label: &str, key: &dyn Fn(&serde_json::Value) -> f64, unit: &str| {
        let (theirs, tract, ours) = (key(ort), key(tract), key(ours));
        println!(
            "{label:<26} {:>11.1} {unit} {:>11.1} {unit} {:>11.1} {unit} {:>8.2}x {:>10.2}x",
            theirs,
            tract,
            ours,
            ours / theirs,
            ours / tract
        );
        (ours / theirs, ours / tract)
    };
    row("load (fetch + compile)", &|v| f(&v["loadMs"]), "ms");
    row("first inference", &|v| f(&v["firstMs"]), "ms");
    let (mut slowest_vs_ort, mut slowest_vs_tract) = (0.0f64, 0.0f64);
    for batch in BATCHES {
        let key = batch.to_string();
        let (vs_ort, vs_tract) = row(
            &format!("steady, batch {batch}"),
            &|v| f(&v["steadyUs"][&key]),
            "µs",
        );
        slowest_vs_ort = slowest_vs_ort.max(vs_ort);
        slowest_vs_tract = slowest_vs_tract.max(vs_tract);
    }
    println!(
        "goals (compiled kernel): bytes ≤ 0.05x ORT Web's wasm [{}]; faster than ORT Web at \
         every batch size [{}]; smaller and faster than tract [{}]",
        verdict(bytes_ratio <= 0.05),
        verdict(slowest_vs_ort < 1.0),
        verdict(slowest_vs_tract < 1.0 && brotli("compiled") < brotli("tract"))
    );
    Ok(())
}

fn build(project: &KernelProject, out_dir: &Path) -> anyhow::Result<BuildOutput> {
    let options = BuildOptions {
        profile: Profile::load(DEFAULT_PROFILE)?,
        native_profile: NativeProfile::load(DEFAULT_NATIVE_PROFILE)?,
        no_cuda: false,
        out_dir: out_dir.to_path_buf(),
        keep_names: false,
        in_place: false,
        offline: false,
        allow_install: true,
        source_date_epoch: 0,
        demo: false,
        timing: TimingPlan::default(),
    };
    pipeline::build(project, &options, &mut Silent)
}

/// onnxruntime-web from npm into the tool's cache, once; its directory.
fn install_ort_web() -> anyhow::Result<std::path::PathBuf> {
    let prefix = fsx::cache_dir().join("bench-node");
    let package = prefix.join("node_modules/onnxruntime-web");
    if !package.join("package.json").is_file() {
        std::fs::create_dir_all(&prefix)?;
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(ORT_WEB)
            .status()?;
        anyhow::ensure!(status.success(), "npm install {ORT_WEB} failed");
    }
    Ok(package)
}

fn node_version() -> String {
    Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}
