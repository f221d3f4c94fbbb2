//! `cargo bench --bench onnx --profile dev` (`just bench-onnx`): one sklearn MLP (64-256-128-10,
//! exported to ONNX: examples/digits-onnx's model) five ways, side by side in one Node process
//! and one run: ONNX Runtime Web's wasm execution provider (npm `onnxruntime-web@1.30.0`, one
//! thread), the example's kernel that runs it with tract, examples/digits-candle (the same
//! weights as safetensors, run by candle), and the kernel `new kernel --onnx` compiles from it
//! ahead of time, with f32 and with f16 weights. Shipped bytes (brotli; ORT Web must fetch the model besides
//! its wasm), load, first inference and steady median at batch 1, 16 and 256; plus what the
//! pipeline did to each module.
//!
//! Goals (printed as met / not met), for each compiled kernel: bytes ≤ 0.05× ORT Web's wasm;
//! faster than ORT Web at every batch size; and against tract, bytes and latency both. ORT Web
//! comes from npm into the tool's cache (`bench-node/`), once.

use cargo_wasmpack_infer::fsx;
use cargo_wasmpack_infer::kernel::pipeline::{self, BuildOptions, BuildOutput};
use cargo_wasmpack_infer::kernel::project::KernelProject;
use cargo_wasmpack_infer::kernel::rustc_wrapper;
use cargo_wasmpack_infer::manifest::variant::SimdLevel;
use cargo_wasmpack_infer::measure::sizes::sizes;
use cargo_wasmpack_infer::measure::timing::TimingPlan;
use cargo_wasmpack_infer::onnx::WeightStorage;
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
    // The pipeline builds candle's getrandom through this binary (kernel::rustc_wrapper).
    if let Some(code) = rustc_wrapper::run_if_wrapping() {
        std::process::exit(code.into());
    }
    // SAFETY: nothing else runs yet.
    unsafe { cargo_wasmpack_infer::measure::native::keep_kernel_errors_cheap() };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("examples/digits-onnx");
    let model = example.join("model/digits.onnx");
    let work = tempfile::tempdir()?;

    // The compiled kernels, written as `new kernel --onnx` writes them, measured on the same
    // samples.
    let mut kernels = vec![
        ("tract", example.clone()),
        ("candle", root.join("examples/digits-candle")),
    ];
    for (label, storage) in [
        ("compiled", WeightStorage::F32),
        ("compiled-f16", WeightStorage::F16),
    ] {
        let dir = work.path().join(format!("digits-{label}"));
        let helper = scaffold::helper_dependency(&dir, &scaffold::bundled_helper_crate())?;
        let name = format!("digits-{label}");
        let kernel = scaffold::onnx_kernel_files(
            &name,
            &model,
            None,
            OnnxEngine::AheadOfTime,
            storage,
            &helper,
        )?;
        scaffold::write_project(&dir, &kernel.files)?;
        std::fs::copy(
            example.join("samples/inputs.bin"),
            dir.join("samples/inputs.bin"),
        )?;
        kernels.push((label, dir));
    }

    let mut built = Vec::new();
    for (label, dir) in &kernels {
        let project = KernelProject::load(dir, None, false)?;
        let started = Instant::now();
        let result = build(&project, &work.path().join(format!("{label}-dist")))?;
        let stages = &result.manifest.wasm.stages;
        println!(
            "{label:>12} ({}, {:.0} s warm, both variants): built {} → shaken {} ({} → {} \
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
        built.push((*label, result));
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
    let labels: Vec<&str> = built.iter().map(|(label, _)| *label).collect();
    let compiled: Vec<&str> = labels
        .iter()
        .copied()
        .filter(|l| l.starts_with("compiled"))
        .collect();
    let figures = |label: &str| &result["bundles"][label];
    let differences: Vec<String> = labels
        .iter()
        .map(|l| format!("{l} {:.2e}", f(&figures(l)["maxAbsDiff"])))
        .collect();
    println!(
        "\nin Node {} (one thread each), {} samples; max |Δ| from ORT Web: {}",
        node_version(),
        result["samples"],
        differences.join(", ")
    );
    let mut header = format!("{:<26} {:>14}", "", "ORT Web");
    for label in &labels {
        header.push_str(&format!(" {label:>14}"));
    }
    for label in &compiled {
        header.push_str(&format!(" {:>18}", format!("{label}/ORT Web")));
    }
    println!("{header}");
    let brotli = |label: &str| {
        built
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0, |(_, b)| b.manifest.wasm.sizes.brotli_bytes)
    };
    // One row: ORT Web's figure, each kernel's, each compiled one's ratio to ORT Web's (returned).
    let print_row =
        |label: &str, theirs: f64, ours: &dyn Fn(&str) -> f64, show: &dyn Fn(f64) -> String| {
            let mut line = format!("{label:<26} {:>14}", show(theirs));
            for kernel in &labels {
                line.push_str(&format!(" {:>14}", show(ours(kernel))));
            }
            let ratios: Vec<f64> = compiled.iter().map(|k| ours(k) / theirs).collect();
            for ratio in &ratios {
                line.push_str(&format!(" {:>17.3}x", ratio));
            }
            println!("{line}");
            ratios
        };
    let bytes = |v: f64| format_bytes(v as u64);
    let bytes_ratios = print_row(
        "wasm, brotli",
        ort_wasm as f64,
        &|k| brotli(k) as f64,
        &bytes,
    );
    print_row(
        "with the model, brotli",
        (ort_wasm + model_brotli) as f64,
        &|k| brotli(k) as f64,
        &bytes,
    );
    let ms = |v: f64| format!("{v:.1} ms");
    let us = |v: f64| format!("{v:.1} µs");
    print_row(
        "load (fetch + compile)",
        f(&result["ort"]["loadMs"]),
        &|k| f(&figures(k)["loadMs"]),
        &ms,
    );
    print_row(
        "first inference",
        f(&result["ort"]["firstMs"]),
        &|k| f(&figures(k)["firstMs"]),
        &ms,
    );
    let mut slowest_vs_ort = vec![0.0f64; compiled.len()];
    let mut faster_than_tract = true;
    for batch in BATCHES {
        let key = batch.to_string();
        let steady = |v: &serde_json::Value| f(&v["steadyUs"][&key]);
        let ratios = print_row(
            &format!("steady, batch {batch}"),
            steady(&result["ort"]),
            &|k| steady(figures(k)),
            &us,
        );
        for (slowest, ratio) in slowest_vs_ort.iter_mut().zip(ratios) {
            *slowest = slowest.max(ratio);
        }
        let tract = steady(figures("tract"));
        faster_than_tract &= compiled.iter().all(|k| steady(figures(k)) < tract);
    }
    for (index, label) in compiled.iter().enumerate() {
        println!(
            "goals ({label}): bytes ≤ 0.05x ORT Web's wasm [{}]; faster than ORT Web at every \
             batch size [{}]",
            verdict(bytes_ratios[index] <= 0.05),
            verdict(slowest_vs_ort[index] < 1.0),
        );
    }
    println!(
        "goal (compiled kernels against tract): smaller and faster at every batch size [{}]",
        verdict(faster_than_tract && compiled.iter().all(|k| brotli(k) < brotli("tract")))
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
        // ORT Web's module is its SIMD build: the simd128 variant is the like-for-like one, and
        // building tract at three levels would triple the bench's longest compile.
        variants: vec![SimdLevel::Simd128],
        npm_tarball: false,
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
