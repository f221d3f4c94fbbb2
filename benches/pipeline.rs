//! `cargo bench --bench pipeline --profile dev` (`just bench`): in one run, per kernel
//! (examples/digits-mlp, weights-dominated; tests/fixtures/handwritten, code only):
//! - bytes of plain `cargo build --release` wasm vs `wasm-opt -Oz` alone vs our pipeline
//!   (every wasm32-unknown-unknown profile);
//! - WASM vs native steady inference and instantiation from precompiled, per profile.
//!
//! Goals (printed as met / not met): pipeline zstd ≥ 40 % below plain release, WASM steady
//! ≤ 1.5× native, instantiation ≤ 50 µs.

use cargo_wasmpack_infer::kernel::optimize;
use cargo_wasmpack_infer::kernel::pipeline::{self, BuildOptions};
use cargo_wasmpack_infer::kernel::project::KernelProject;
use cargo_wasmpack_infer::manifest::Sizes;
use cargo_wasmpack_infer::manifest::kernel::KernelManifest;
use cargo_wasmpack_infer::measure::sizes::sizes;
use cargo_wasmpack_infer::measure::timing::TimingPlan;
use cargo_wasmpack_infer::profile::{DEFAULT_NATIVE_PROFILE, NativeProfile, Profile};
use cargo_wasmpack_infer::report::Silent;
use cargo_wasmpack_infer::units::format_bytes;
use std::path::Path;
use std::process::Command;

const PLAIN_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> anyhow::Result<()> {
    // SAFETY: nothing else runs yet.
    unsafe { cargo_wasmpack_infer::measure::native::keep_kernel_errors_cheap() };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for kernel in ["examples/digits-mlp", "tests/fixtures/handwritten"] {
        bench_kernel(&root.join(kernel))?;
        println!();
    }
    Ok(())
}

fn bench_kernel(crate_dir: &Path) -> anyhow::Result<()> {
    let project = KernelProject::load(crate_dir, None, false)?;

    // Plain release build with the crate's own profile, in its own target dir.
    let plain_dir = project.target_directory.join("wasmpack-infer-bench-plain");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--lib",
            "--target",
            PLAIN_TARGET,
            "--manifest-path",
        ])
        .arg(&project.manifest_path)
        .arg("--target-dir")
        .arg(&plain_dir)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "plain release build of {} failed",
        project.name
    );
    let plain = std::fs::read(
        plain_dir
            .join(PLAIN_TARGET)
            .join("release")
            .join(format!("{}.wasm", project.lib_name)),
    )?;
    let mut oz = Profile::load("size")?.wasm;
    oz.wasm_opt_level = "Oz".into();
    let opt_only = optimize::optimize(&plain, &oz, false)?.wasm;

    let out = tempfile::tempdir()?;
    let mut built: Vec<(String, KernelManifest)> = Vec::new();
    for name in Profile::built_in_names() {
        let profile = Profile::load(name)?;
        // Only profiles for the plain build's target compare like with like.
        if profile.target != PLAIN_TARGET {
            continue;
        }
        let options = BuildOptions {
            profile,
            native_profile: NativeProfile::load(DEFAULT_NATIVE_PROFILE)?,
            no_cuda: false,
            out_dir: out.path().join(name),
            keep_names: false,
            in_place: false,
            offline: false,
            allow_install: true,
            source_date_epoch: 0,
            demo: false,
            timing: TimingPlan {
                steady_runs: 1000,
                ..TimingPlan::default()
            },
            // Every variant each profile ships: the table compares their primaries.
            variants: Vec::new(),
            npm_tarball: false,
        };
        built.push((
            name.to_string(),
            pipeline::build(&project, &options, &mut Silent)?.manifest,
        ));
    }

    let plain_sizes = sizes(&plain)?;
    println!("{} — sizes", project.name);
    println!("{:<32} {:>10} {:>10} {:>10}", "", "raw", "zstd", "brotli");
    let row = |label: &str, s: Sizes| {
        println!(
            "{label:<32} {:>10} {:>10} {:>10}",
            format_bytes(s.raw_bytes),
            format_bytes(s.zstd_bytes),
            format_bytes(s.brotli_bytes)
        )
    };
    row("plain cargo build --release", plain_sizes);
    row("+ wasm-opt -Oz alone", sizes(&opt_only)?);
    for (name, manifest) in &built {
        row(&format!("pipeline, profile {name}"), manifest.wasm.sizes);
    }

    println!("speed (median; WASM in wasmtime vs native cdylib, same cargo profile)");
    for (name, manifest) in &built {
        let fit = &manifest.timings.runtime_fit;
        let zstd_cut = 1.0 - manifest.wasm.sizes.zstd_bytes as f64 / plain_sizes.zstd_bytes as f64;
        let instantiate = manifest.timings.wasm.instantiate.median_us;
        let ratios: Vec<String> = fit
            .steady_ratio
            .iter()
            .map(|r| format!("batch {}: {:.2}x", r.batch, r.wasm_over_native))
            .collect();
        let worst = fit
            .steady_ratio
            .iter()
            .map(|r| r.wasm_over_native)
            .fold(0.0, f64::max);
        println!("profile {name}: WASM/native {}", ratios.join(", "));
        println!(
            "  zstd {:.0} % below plain release [{}]; WASM ≤ 1.5x native [{}]; instantiate {instantiate:.1} µs ≤ 50 µs [{}]",
            zstd_cut * 100.0,
            verdict(zstd_cut >= 0.40),
            verdict(worst <= 1.5),
            verdict(instantiate <= 50.0),
        );
    }
    let env = &built[0].1.timings.environment;
    println!(
        "measured on {} ({} cores), {}",
        env.cpu, env.cores, env.wasm_engine
    );
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
