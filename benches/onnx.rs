//! `cargo bench --bench onnx --profile dev` (`just bench-onnx`): examples/digits-onnx (an sklearn
//! MLP, 64-256-128-10, exported to ONNX and run by tract inside the kernel) against the peer a
//! user would pick instead, ONNX Runtime Web's wasm execution provider (npm
//! `onnxruntime-web@1.30.0`, one thread), both in one Node process, alternating, in one run:
//! shipped bytes (brotli), load, first inference and steady median at batch 1, 16 and 256; plus
//! what the pipeline's stages did to the tract module and how long each took.
//!
//! Goals (printed as met / not met): our shipped bytes ≤ 0.10× ORT Web's wasm; faster at every
//! batch size. ORT Web comes from npm into the tool's cache (`bench-node/`), once.

use cargo_wasmpack_infer::fsx;
use cargo_wasmpack_infer::kernel::pipeline::{self, BuildOptions};
use cargo_wasmpack_infer::kernel::project::KernelProject;
use cargo_wasmpack_infer::measure::sizes::sizes;
use cargo_wasmpack_infer::measure::timing::TimingPlan;
use cargo_wasmpack_infer::profile::{
    DEFAULT_NATIVE_PROFILE, DEFAULT_PROFILE, NativeProfile, Profile,
};
use cargo_wasmpack_infer::report::Silent;
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
    let project = KernelProject::load(&example, None, false)?;
    let out = tempfile::tempdir()?;
    let options = BuildOptions {
        profile: Profile::load(DEFAULT_PROFILE)?,
        native_profile: NativeProfile::load(DEFAULT_NATIVE_PROFILE)?,
        no_cuda: false,
        out_dir: out.path().to_path_buf(),
        keep_names: false,
        in_place: false,
        offline: false,
        allow_install: true,
        source_date_epoch: 0,
        demo: false,
        timing: TimingPlan::default(),
    };
    let started = Instant::now();
    let built = pipeline::build(&project, &options, &mut Silent)?;
    let build_seconds = started.elapsed().as_secs_f64();
    let manifest = &built.manifest;
    let stages = &manifest.wasm.stages;
    println!(
        "{} — what the pipeline did to a tract module ({build_seconds:.0} s warm, both variants)",
        project.name
    );
    println!(
        "  built {} → shaken {} ({} → {} functions) → wasm-opt {} {}; brotli {}",
        format_bytes(stages.built_bytes),
        format_bytes(stages.shake.bytes),
        stages.shake.functions_before,
        stages.shake.functions_after,
        stages.optimize.level,
        format_bytes(stages.optimize.bytes),
        format_bytes(manifest.wasm.sizes.brotli_bytes),
    );

    let ort_dir = install_ort_web()?;
    // What the wasm execution provider loads in Node (the other .wasm files are its JSEP,
    // JSPI and asyncify builds).
    let ort_wasm = ort_dir.join("dist").join(ORT_WASM_FILE);
    let ort_sizes = sizes(&fsx::read(&ort_wasm)?)?;

    let config = serde_json::json!({
        "ort": ort_dir,
        "model": example.join("model/digits.onnx"),
        "input": "X",
        "output": "probabilities",
        "loader": built.bundle_dir.join("loader.mjs"),
        "samples": example.join("samples/inputs.bin"),
        "sampleLen": 64,
        "batches": BATCHES,
        "runs": 200,
        "warmup": 50,
    });
    let config_path = out.path().join("peers.json");
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
    let (ort, ours) = (&result["ort"], &result["bundle"]);
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);

    println!(
        "\nin Node {} (one thread each), {} samples agree to max |Δ| {:.2e}",
        node_version(),
        result["samples"],
        f(&result["maxAbsDiff"])
    );
    println!(
        "{:<28} {:>16} {:>16} {:>8}",
        "", "ONNX Runtime Web", "our bundle", "ours/ORT"
    );
    let bytes_ratio = manifest.wasm.sizes.brotli_bytes as f64 / ort_sizes.brotli_bytes as f64;
    println!(
        "{:<28} {:>16} {:>16} {:>7.3}x",
        "wasm, brotli",
        format_bytes(ort_sizes.brotli_bytes),
        format_bytes(manifest.wasm.sizes.brotli_bytes),
        bytes_ratio
    );
    let row = |label: &str, theirs: f64, ours: f64, unit: &str| {
        println!(
            "{label:<28} {:>13.1} {unit} {:>13.1} {unit} {:>7.2}x",
            theirs,
            ours,
            ours / theirs
        );
        ours / theirs
    };
    row(
        "load (fetch + compile)",
        f(&ort["loadMs"]),
        f(&ours["loadMs"]),
        "ms",
    );
    row(
        "first inference",
        f(&ort["firstMs"]),
        f(&ours["firstMs"]),
        "ms",
    );
    let mut slowest = 0.0f64;
    for batch in BATCHES {
        let key = batch.to_string();
        let ratio = row(
            &format!("steady, batch {batch}"),
            f(&ort["steadyUs"][&key]),
            f(&ours["steadyUs"][&key]),
            "µs",
        );
        slowest = slowest.max(ratio);
    }
    println!(
        "goals: bytes ≤ 0.10x ORT Web's wasm [{}]; faster at every batch size [{}]",
        verdict(bytes_ratio <= 0.10),
        verdict(slowest < 1.0)
    );
    Ok(())
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
