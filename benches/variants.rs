//! `cargo bench --bench variants --profile dev` (`just bench-variants`): examples/mlp-large built
//! once with the browser profile, every feature-level WASM variant (baseline, simd128,
//! relaxed-simd in wasmtime) and the native library (one thread and all) timed in that run, each
//! as GFLOP/s and as a fraction of this core's FMA peak (measured first), side by side per batch.
//!
//! Goals (issue 15; printed as met / not met): native on one thread ≥ 50 % of the one-core peak at
//! batch ≥ 256; simd128 ≤ 1.5× native on one thread at every batch, relaxed-simd ≤ 1.3×; native
//! on every core ≥ 0.8 × cores × one thread at batch 4096.

use cargo_wasmpack_infer::kernel::pipeline::{self, BuildOptions};
use cargo_wasmpack_infer::kernel::project::KernelProject;
use cargo_wasmpack_infer::manifest::kernel::{KernelManifest, Steady};
use cargo_wasmpack_infer::manifest::variant::SimdLevel;
use cargo_wasmpack_infer::measure::timing::TimingPlan;
use cargo_wasmpack_infer::profile::{
    DEFAULT_NATIVE_PROFILE, DEFAULT_PROFILE, NativeProfile, Profile,
};
use cargo_wasmpack_infer::report::Silent;
use cargo_wasmpack_infer::units::format_duration_us;
use std::path::Path;

/// examples/mlp-large/src/lib.rs's `WIDTHS`: the layers whose multiply-adds a call does.
const WIDTHS: [usize; 5] = [256, 1024, 1024, 1024, 16];

fn main() -> anyhow::Result<()> {
    // SAFETY: nothing else runs yet.
    unsafe { cargo_wasmpack_infer::measure::native::keep_kernel_errors_cheap() };
    let peak = wasmpack_infer_kernel::gemm::fma_peak_gflops();
    match peak {
        Some(peak) => println!("FMA peak, one core: {peak:.1} GFLOP/s"),
        None => println!("FMA peak: this CPU has no FMA; fractions of peak are not printed"),
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = KernelProject::load(&root.join("examples/mlp-large"), None, false)?;
    anyhow::ensure!(
        project.input.shape == [WIDTHS[0]] && project.output.shape == [WIDTHS[4]],
        "examples/mlp-large's tensors no longer match this bench's WIDTHS"
    );
    let out = tempfile::tempdir()?;
    let options = BuildOptions {
        profile: Profile::load(DEFAULT_PROFILE)?,
        native_profile: NativeProfile::load(DEFAULT_NATIVE_PROFILE)?,
        no_cuda: true,
        out_dir: out.path().to_path_buf(),
        keep_names: false,
        in_place: false,
        offline: false,
        allow_install: true,
        source_date_epoch: 0,
        demo: false,
        timing: TimingPlan {
            steady_budget: std::time::Duration::from_secs(3),
            ..TimingPlan::default()
        },
        variants: Vec::new(),
        npm_tarball: false,
    };
    let manifest = pipeline::build(&project, &options, &mut Silent)?.manifest;
    table(&manifest, peak);
    goals(&manifest, peak);
    Ok(())
}

/// Multiply-adds of one sample through every layer.
fn macs_per_sample() -> f64 {
    WIDTHS.windows(2).map(|w| (w[0] * w[1]) as f64).sum()
}

fn gflops(steady: &Steady) -> f64 {
    2.0 * macs_per_sample() * steady.batch as f64 / (steady.latency.median_us * 1e3)
}

/// Every contender's steady figures: each WASM level, native on one thread, native on all.
fn contenders(manifest: &KernelManifest) -> Vec<(String, Vec<Steady>)> {
    let t = &manifest.timings;
    let mut rows: Vec<(String, Vec<Steady>)> = t
        .variants
        .iter()
        .map(|v| (format!("wasm {}", v.level), v.steady.clone()))
        .collect();
    rows.push(("native, 1 thread".into(), single_thread(manifest)));
    rows.push(("native, all threads".into(), t.native.steady.clone()));
    rows
}

/// Native on one thread: the capped re-run where native ran on more, else what it ran.
fn single_thread(manifest: &KernelManifest) -> Vec<Steady> {
    let native = &manifest.timings.native;
    native
        .steady
        .iter()
        .map(|s| {
            native
                .single_thread
                .iter()
                .find(|one| one.batch == s.batch)
                .copied()
                .unwrap_or(*s)
        })
        .collect()
}

fn table(manifest: &KernelManifest, peak: Option<f64>) {
    let cores = manifest.timings.environment.cores;
    println!(
        "mlp-large {:?}: {:.2} M multiply-adds per sample; {cores} cores; {}\n",
        WIDTHS,
        macs_per_sample() / 1e6,
        manifest.timings.environment.wasm_engine
    );
    println!(
        "{:>5}  {:<22} {:>11}  {:>8}  {:>6}  {:>14}",
        "batch", "variant", "median", "GFLOP/s", "% peak", "× native 1 thr"
    );
    let single = single_thread(manifest);
    for steady in &manifest.timings.native.steady {
        let batch = steady.batch;
        let native_one = single.iter().find(|s| s.batch == batch);
        for (name, figures) in contenders(manifest) {
            let Some(s) = figures.iter().find(|s| s.batch == batch) else {
                continue;
            };
            let of_peak = peak.map_or("-".into(), |p| format!("{:.0} %", 100.0 * gflops(s) / p));
            let ratio = native_one.map_or("-".into(), |n| {
                format!("{:.2}", s.latency.median_us / n.latency.median_us)
            });
            println!(
                "{batch:>5}  {name:<22} {:>11}  {:>8.1}  {of_peak:>6}  {ratio:>14}",
                format_duration_us(s.latency.median_us),
                gflops(s),
            );
        }
        println!();
    }
}

fn goals(manifest: &KernelManifest, peak: Option<f64>) {
    let verdict = |met: bool| if met { "met" } else { "not met" };
    let single = single_thread(manifest);
    if let Some(peak) = peak {
        let worst = single
            .iter()
            .filter(|s| s.batch >= 256)
            .map(|s| gflops(s) / peak)
            .fold(f64::INFINITY, f64::min);
        println!(
            "goal: native on one thread ≥ 50 % of peak at batch ≥ 256: worst {:.0} % — {}",
            100.0 * worst,
            verdict(worst >= 0.5)
        );
    }
    for (level, limit) in [(SimdLevel::Simd128, 1.5), (SimdLevel::RelaxedSimd, 1.3)] {
        let Some(variant) = manifest.timings.variants.iter().find(|v| v.level == level) else {
            println!("goal: {level} ≤ {limit}× native on one thread — not built");
            continue;
        };
        let worst = variant
            .over_native
            .iter()
            .map(|r| {
                r.wasm_over_native_single_thread
                    .unwrap_or(r.wasm_over_native)
            })
            .fold(0.0, f64::max);
        println!(
            "goal: {level} ≤ {limit}× native on one thread at every batch: worst {worst:.2}× — {}",
            verdict(worst <= limit)
        );
    }
    let cores = manifest.timings.environment.cores;
    let at_4096 = |figures: &[Steady]| figures.iter().find(|s| s.batch == 4096).map(gflops);
    if let (Some(one), Some(all)) = (at_4096(&single), at_4096(&manifest.timings.native.steady)) {
        let scaling = all / one;
        println!(
            "goal: every core ≥ 0.8 × {cores} × one thread at batch 4096: {scaling:.2}× — {}",
            verdict(scaling >= 0.8 * cores as f64)
        );
    }
}
