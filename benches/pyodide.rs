//! `cargo bench --bench pyodide --profile dev` (`just bench-python`): examples/digits-py through
//! the Python pipeline in one run (Pyodide from npm, cached), with the goals printed as
//! met / not met:
//! - bytes shipped without the snapshot (brotli) ≤ 25 % of the full stock download;
//! - Node cold start to first inference booted from the snapshot ≤ 0.15× stock boot + import;
//! - the snapshot, its free heap zeroed, ≤ 3 MiB brotli with that cold start ≤ 0.17× stock.
//!
//! Then the kept standard library as source, source + `.pyc` and `.pyc` only (entries stored for
//! the server's compression, and `.pyc` only deflated entry by entry as before), one build each
//! without a snapshot, each build booting stock and bundle interleaved: bytes and cold start side
//! by side, with the goals of a boot without a snapshot (≤ 0.45× stock, ≤ 50 % of stock's bytes
//! up front, steady ≤ 1.02× stock).
//!
//! The figures come from the build's own manifest: nothing here is measured twice. Then the same
//! build with Emscripten's linking at boot as Pyodide ships it (`--no-link-plan`), both bundles
//! booted interleaved, from their snapshots and without; and what wasm-opt -Oz would add on the
//! shipped runtime (measured and run here, not shipped).
//!
//! Last, the goals (cold start without and from the snapshot, steady) on
//! benches/projects/tree-scorer, a project no test builds.

use cargo_wasmpack_infer::kernel::optimize::optimize;
use cargo_wasmpack_infer::manifest::python::PythonManifest;
use cargo_wasmpack_infer::measure::sizes;
use cargo_wasmpack_infer::profile::{DEFAULT_PYTHON_PROFILE, PythonProfile, WasmSettings};
use cargo_wasmpack_infer::python::dist::Source;
use cargo_wasmpack_infer::python::pipeline::{self, PythonBuildOptions};
use cargo_wasmpack_infer::python::project::PythonProject;
use cargo_wasmpack_infer::python::run::{self, Boot, Mode, RunConfig};
use cargo_wasmpack_infer::python::shake::Overrides;
use cargo_wasmpack_infer::report::Silent;
use cargo_wasmpack_infer::report::human::boot_phases_lines;
use cargo_wasmpack_infer::units::format_bytes;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

const PYODIDE: &str = "npm:314.0.7";

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = PythonProject::load(&root.join("examples/digits-py"))?;
    let out = tempfile::tempdir()?;
    let profile = PythonProfile::load(DEFAULT_PYTHON_PROFILE)?;
    let options = build_options(&profile, out.path())?;
    let manifest = pipeline::build(&project, &options, &mut Silent)?.manifest;
    let unplanned = PythonBuildOptions {
        runtime: cargo_wasmpack_infer::profile::RuntimeSettings {
            link_plan: false,
            ..options.runtime.clone()
        },
        out_dir: out.path().join("unplanned"),
        ..options.clone()
    };
    pipeline::build(&project, &unplanned, &mut Silent)?;
    let stdlib_combinations = stdlib_combinations(&project, &options)?;
    let sizes = &manifest.sizes;
    let t = &manifest.timings;
    println!(
        "{} on Pyodide {}",
        project.name, manifest.distribution.version
    );
    println!("{:<34} {:>12} {:>12}", "", "stock", "bundle");
    for (label, stock, bundle) in [
        (
            "shipped, raw",
            sizes.stock.raw_bytes,
            sizes.bundle.raw_bytes,
        ),
        (
            "shipped, brotli",
            sizes.stock.brotli_bytes,
            sizes.bundle.brotli_bytes,
        ),
        (
            "shipped, zstd",
            sizes.stock.zstd_bytes,
            sizes.bundle.zstd_bytes,
        ),
    ] {
        println!(
            "{label:<34} {:>12} {:>12}",
            format_bytes(stock),
            format_bytes(bundle)
        );
    }
    for file in &sizes.per_file {
        println!(
            "  {:<32} {:>12} {:>12}",
            file.file,
            file.stock
                .map_or("—".into(), |s| format_bytes(s.brotli_bytes)),
            format_bytes(file.bundle.brotli_bytes)
        );
    }
    let stock_cold = t.stock.boot_ms + t.stock.import_ms;
    println!(
        "cold start (boot + import + first)  stock {:.0} ms, bundle {:.0} ms, native {:.0} ms",
        t.stock.cold_start_ms, t.bundle.cold_start_ms, t.native.cold_start_ms
    );
    let byte_share = sizes.brotli_ratio;
    println!(
        "bytes shipped without the snapshot: {:.0} % of stock (brotli) [goal ≤ 25 %: {}]",
        byte_share * 100.0,
        verdict(byte_share <= 0.25)
    );
    match (
        &manifest.runtime_split,
        sizes.upfront,
        sizes.upfront_brotli_ratio,
    ) {
        (Some(split), Some(upfront), Some(share)) => {
            println!(
                "runtime split: the {} of {} functions the samples ran up front, primary {} / deferred {} brotli",
                split.profiled_functions,
                split.functions,
                format_bytes(split.primary.brotli_bytes),
                format_bytes(split.secondary.brotli_bytes)
            );
            println!(
                "bytes fetched before the first inference: {} = {:.0} % of stock (brotli) [goal ≤ 25 %: {}]",
                format_bytes(upfront.brotli_bytes),
                share * 100.0,
                verdict(share <= 0.25)
            );
            println!(
                "deferred half: loaded by the samples' run: {}; loading it up front took {} ms",
                t.bundle
                    .secondary_load_ms
                    .map_or("no".into(), |ms| format!("yes ({ms:.0} ms)")),
                t.secondary_load_ms
                    .map_or("—".into(), |ms| format!("{ms:.0}"))
            );
        }
        _ => println!("runtime not split: {}", manifest.shake.runtime),
    }
    match &manifest.snapshot {
        Some(snapshot) => {
            let share = snapshot.run.cold_start_ms / stock_cold;
            println!(
                "snapshot {} brotli; cold start from it {:.0} ms = {:.2}x stock boot + import [goal ≤ 0.15x: {}]",
                format_bytes(snapshot.sizes.brotli_bytes),
                snapshot.run.cold_start_ms,
                share,
                verdict(share <= 0.15)
            );
            const THREE_MIB: u64 = 3 << 20;
            println!(
                "snapshot with {} of free heap zeroed: {} brotli, cold start {share:.2}x stock \
                 [goal ≤ 3 MiB with ≤ 0.17x: {}]",
                snapshot
                    .free_heap_zeroed
                    .map_or("none".into(), |zeroed| format_bytes(zeroed.bytes)),
                format_bytes(snapshot.sizes.brotli_bytes),
                verdict(snapshot.sizes.brotli_bytes <= THREE_MIB && share <= 0.17)
            );
        }
        None => println!("no snapshot: the profile does not build one"),
    }
    print!("{}", boot_phases_lines(&manifest));
    print!("{}", link_plan_comparison(&project, &manifest, out.path())?);
    println!(
        "steady per sample: Pyodide {:.1} µs, native {:.1} µs ({:.2}x)",
        t.bundle.steady.median_us, t.native.steady.median_us, t.runtime_fit.interpreter_tax
    );
    println!(
        "measured on {} ({} cores), {}",
        t.environment.cpu, t.environment.cores, t.environment.wasm_engine
    );
    wasm_opt_on_the_runtime(
        &out.path().join(project.bundle_name()),
        &profile,
        &project,
        &manifest.shake.packages,
    )?;
    print!("{stdlib_combinations}");
    print!("{}", goals_on_an_unseen_project(root)?);
    Ok(())
}

/// The build's options under `profile`, 5 interleaved boots per variant, into `out`.
fn build_options(profile: &PythonProfile, out: &Path) -> anyhow::Result<PythonBuildOptions> {
    Ok(PythonBuildOptions {
        pyodide: Source::parse(PYODIDE)?,
        out_dir: out.to_path_buf(),
        offline: false,
        overrides: Overrides::default(),
        python: "python3".into(),
        passes: 3,
        wheelhouse: None,
        snapshot: profile.snapshot,
        runtime: profile.runtime.clone(),
        stdlib: profile.stdlib,
        runtime_fit: profile.runtime_fit,
        boots: 5,
        source_date_epoch: 0,
        npm_tarball: false,
        demo: false,
    })
}

/// The three goals on benches/projects/tree-scorer, a src-layout project no test builds
/// (gradient-boosted trees from scikit-learn read as package data with importlib.resources,
/// dataclasses, functools): one build under pyodide-fast-boot, whose interleaved boots give the
/// cold start without the snapshot and from it, and whose interleaved blocks give steady.
fn goals_on_an_unseen_project(root: &Path) -> anyhow::Result<String> {
    let project = PythonProject::load(&root.join("benches/projects/tree-scorer"))?;
    let out = tempfile::tempdir()?;
    let profile = PythonProfile::load("pyodide-fast-boot")?;
    let m = pipeline::build(&project, &build_options(&profile, out.path())?, &mut Silent)?.manifest;
    let (t, fit) = (&m.timings, &m.timings.runtime_fit);
    let boots = t.bundle.boots.map_or(1, |b| b.runs);
    let upfront = m.sizes.upfront_brotli_ratio.unwrap_or(m.sizes.brotli_ratio);
    let mut text = format!(
        "\n{} (benches/projects/tree-scorer, built by no test) under pyodide-fast-boot, {boots} \
         interleaved boots each (medians): stock {:.2} s\n",
        project.name,
        t.stock.cold_start_ms / 1e3
    );
    let _ = writeln!(
        text,
        "without the snapshot: {:.2} s = {:.2}x stock, {:.1} % of stock's bytes up front \
         [goal ≤ 0.45x with ≤ 50 %: {}]",
        t.bundle.cold_start_ms / 1e3,
        fit.cold_start_over_stock,
        upfront * 100.0,
        verdict(fit.cold_start_over_stock <= 0.45 && upfront <= 0.50)
    );
    match (&m.snapshot, fit.snapshot_cold_start_over_stock) {
        (Some(snapshot), Some(ratio)) => {
            let _ = writeln!(
                text,
                "from the snapshot: {:.0} ms = {ratio:.3}x stock [goal ≤ 0.15x: {}]",
                snapshot.run.cold_start_ms,
                verdict(ratio <= 0.15)
            );
        }
        _ => text.push_str("from the snapshot: the profile built none [goal: NOT met]\n"),
    }
    match (
        fit.steady_over_stock,
        t.bundle.steady_blocks,
        t.stock.steady_blocks,
    ) {
        (Some(ratio), Some(bundle), Some(stock)) => {
            let _ = writeln!(
                text,
                "steady per sample: {:.1} µs vs stock {:.1} µs ({} blocks each) = {ratio:.2}x \
                 [goal ≤ 1.02x: {}]",
                bundle.median_us,
                stock.median_us,
                bundle.runs,
                verdict(ratio <= 1.02)
            );
        }
        _ => text.push_str("steady: no interleaved blocks timed [goal: NOT met]\n"),
    }
    text.push_str(&boot_phases_lines(&m));
    Ok(text)
}

/// One build per way of shipping the kept standard library, without a snapshot: the table of
/// their bytes and interleaved cold starts, and the goals judged on the fastest that meets the
/// bytes goal.
fn stdlib_combinations(
    project: &PythonProject,
    base: &PythonBuildOptions,
) -> anyhow::Result<String> {
    use cargo_wasmpack_infer::profile::StdlibSettings;
    let stdlib = |precompile, bytecode_only, store_uncompressed| StdlibSettings {
        precompile,
        bytecode_only,
        store_uncompressed,
        ..base.stdlib
    };
    // The last row answers whether the split runtime costs steady time (its placeholders).
    let combinations = [
        ("source", stdlib(false, false, true), true),
        ("source + .pyc", stdlib(true, false, true), true),
        (".pyc only", stdlib(false, true, true), true),
        (
            ".pyc only, deflated entries",
            stdlib(false, true, false),
            true,
        ),
        (
            ".pyc only, runtime not split",
            stdlib(false, true, true),
            false,
        ),
    ];
    let mut table = format!(
        "\nkept stdlib as ({} interleaved boots and steady blocks each, no snapshot)\n{:<30} {:>16} {:>17} {:>14} {:>22} {:>22} {:>8} {:>8}\n",
        base.boots,
        "",
        "bundle brotli",
        "up front",
        "stdlib zip",
        "cold start, bundle",
        "stock, same build",
        "ratio",
        "steady"
    );
    let mut best: Option<(f64, f64, f64)> = None;
    for (label, settings, split) in combinations {
        let out = tempfile::tempdir()?;
        let options = PythonBuildOptions {
            out_dir: out.path().to_path_buf(),
            stdlib: settings,
            snapshot: cargo_wasmpack_infer::profile::SnapshotSettings {
                build: false,
                default: false,
                warm: false,
            },
            runtime: cargo_wasmpack_infer::profile::RuntimeSettings {
                split,
                ..base.runtime.clone()
            },
            ..base.clone()
        };
        let m = pipeline::build(project, &options, &mut Silent)?.manifest;
        let (sizes, t, fit) = (&m.sizes, &m.timings, &m.timings.runtime_fit);
        let upfront = sizes.upfront.unwrap_or(sizes.bundle);
        let upfront_share = sizes.upfront_brotli_ratio.unwrap_or(sizes.brotli_ratio);
        let zip = sizes
            .per_file
            .iter()
            .find(|f| f.file == "python_stdlib.zip")
            .map_or(0, |f| f.bundle.brotli_bytes);
        let boots = |run: &cargo_wasmpack_infer::manifest::python::PyodideRun| match run.boots {
            Some(b) => format!(
                "{:.2} s ({:.2}–{:.2})",
                b.median_ms / 1e3,
                b.min_ms / 1e3,
                b.max_ms / 1e3
            ),
            None => format!("{:.2} s", run.cold_start_ms / 1e3),
        };
        // Steady from the interleaved blocks, where the build timed them.
        let steady = fit
            .steady_over_stock
            .unwrap_or(t.bundle.steady.median_us / t.stock.steady.median_us);
        let _ = writeln!(
            table,
            "{label:<30} {:>16} {:>17} {:>14} {:>22} {:>22} {:>7.2}x {:>7.2}x",
            format!(
                "{} ({:.0} %)",
                format_bytes(sizes.bundle.brotli_bytes),
                sizes.brotli_ratio * 100.0
            ),
            format!(
                "{} ({:.1} %)",
                format_bytes(upfront.brotli_bytes),
                upfront_share * 100.0
            ),
            format_bytes(zip),
            boots(&t.bundle),
            boots(&t.stock),
            fit.cold_start_over_stock,
            steady,
        );
        if upfront_share <= 0.50
            && best.is_none_or(|(ratio, _, _)| fit.cold_start_over_stock < ratio)
        {
            best = Some((fit.cold_start_over_stock, upfront_share, steady));
        }
    }
    match best {
        Some((ratio, upfront, steady)) => {
            let _ = writeln!(
                table,
                "fastest boot within 50 % of stock's bytes up front ({:.1} %): {ratio:.2}x stock [goal ≤ 0.45x: {}]; steady {steady:.2}x stock [goal ≤ 1.02x: {}]",
                upfront * 100.0,
                verdict(ratio <= 0.45),
                verdict(steady <= 1.02)
            );
        }
        None => table
            .push_str("no combination fetches ≤ 50 % of stock's bytes up front [goal: NOT met]\n"),
    }
    Ok(table)
}

/// The build with its runtime's linking planned against the same build without it (under
/// `out/unplanned`), booted in turn in fresh Node processes, from their snapshots and
/// without: medians of cold start (boot, import, first inference) and of the start-up phase,
/// where the linking runs.
fn link_plan_comparison(
    project: &PythonProject,
    planned: &PythonManifest,
    out: &Path,
) -> anyhow::Result<String> {
    const ROUNDS: usize = 7;
    let dirs = [
        out.join(project.bundle_name()).join("pyodide"),
        out.join("unplanned")
            .join(project.bundle_name())
            .join("pyodide"),
    ];
    let samples = out.join(project.bundle_name()).join("samples.json");
    let config = RunConfig {
        entry: &project.entry(),
        samples: &samples,
        passes: 0,
        packages: &planned.shake.packages,
    };
    // [from the snapshot, normal boot] × [planned, unplanned]: (cold starts, start-up phases).
    let mut figures: [[(Vec<f64>, Vec<f64>); 2]; 2] = Default::default();
    for _ in 0..ROUNDS {
        for (from_snapshot, row) in [true, false].into_iter().zip(figures.iter_mut()) {
            for (dir, (cold, startup)) in dirs.iter().zip(row.iter_mut()) {
                let snapshot = dir.join("snapshot.bin");
                let boot = Boot {
                    snapshot: from_snapshot.then_some(snapshot.as_path()),
                    ..Boot::default()
                };
                let run = run::pyodide(dir, &dir.join("app.zip"), Mode::Measure, &config, &boot)?;
                cold.push(run.boot_ms + run.import_ms + run.first_inference_ms);
                startup.push(run.boot_phases.map_or(f64::NAN, |p| p.startup_ms));
            }
        }
    }
    let median = |values: &[f64]| {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let stock = planned.timings.stock.cold_start_ms;
    let mut text = format!(
        "\nruntime linking at boot, planned ({}) vs as Pyodide ships it, {ROUNDS} boots each, \
         interleaved (medians; ratios to this run's stock cold start, {stock:.0} ms)\n{:<34} {:>24} {:>24} {:>8}\n",
        planned
            .runtime_linking
            .as_ref()
            .and_then(|l| l.plan)
            .map_or("no plan".into(), |p| format!(
                "{} of {} table slots read",
                p.planned_slots, p.table_slots
            )),
        "",
        "planned",
        "Emscripten's own",
        "change"
    );
    for (boot, [(planned_cold, planned_up), (own_cold, own_up)]) in
        ["from the snapshot", "without it"]
            .into_iter()
            .zip(&figures)
    {
        for (what, planned, own) in [
            ("cold start", planned_cold, own_cold),
            ("start-up phase", planned_up, own_up),
        ] {
            let (planned, own) = (median(planned), median(own));
            let _ = writeln!(
                text,
                "{:<34} {:>24} {:>24} {:>+7.0} ms",
                format!("{what}, {boot}"),
                format!("{planned:.0} ms ({:.3}x stock)", planned / stock),
                format!("{own:.0} ms ({:.3}x stock)", own / stock),
                planned - own
            );
        }
    }
    Ok(text)
}

/// wasm-opt -Oz (binaryen linked in) on the bundle's pyodide.asm.wasm with the runtime's
/// features: the sizes it reaches, and whether every sample still gives the same outputs on it.
fn wasm_opt_on_the_runtime(
    bundle: &Path,
    profile: &PythonProfile,
    project: &PythonProject,
    packages: &[String],
) -> anyhow::Result<()> {
    let runtime = bundle.join("pyodide");
    let shipped = std::fs::read(runtime.join("pyodide.asm.wasm"))?;
    let settings = WasmSettings {
        target_features: Vec::new(),
        cfg: Vec::new(),
        wasm_opt_level: "Oz".into(),
        strip_panic_formatting: false,
        runtime_features: profile.runtime.features.clone(),
        variants: Vec::new(),
        engine_floor: Default::default(),
    };
    let started = Instant::now();
    let optimized = optimize(&shipped, &settings, false)?.wasm;
    let seconds = started.elapsed().as_secs_f64();
    let (before, after) = (sizes::sizes(&shipped)?, sizes::sizes(&optimized)?);
    println!(
        "wasm-opt -Oz on the shipped pyodide.asm.wasm ({seconds:.0} s): raw {} → {}, brotli {} → {} ({:+.1} %)",
        format_bytes(before.raw_bytes),
        format_bytes(after.raw_bytes),
        format_bytes(before.brotli_bytes),
        format_bytes(after.brotli_bytes),
        (after.brotli_bytes as f64 / before.brotli_bytes as f64 - 1.0) * 100.0
    );
    let samples = bundle.join("samples.json");
    let config = RunConfig {
        entry: &project.entry(),
        samples: &samples,
        passes: 0,
        packages,
    };
    let app = runtime.join("app.zip");
    let reference = run::pyodide(&runtime, &app, Mode::Measure, &config, &Boot::default())?;
    std::fs::write(runtime.join("pyodide.asm.wasm"), &optimized)?;
    let verdict = match run::pyodide(&runtime, &app, Mode::Measure, &config, &Boot::default()) {
        Ok(run) => match cargo_wasmpack_infer::python::run::first_difference(
            &reference.outputs,
            &run.outputs,
        ) {
            None => "every sample gives the same outputs on it".to_string(),
            Some(sample) => format!("sample {sample} differs on it"),
        },
        Err(e) => format!(
            "it fails to run: {}",
            format!("{e:#}").lines().next().unwrap_or("")
        ),
    };
    println!("  {verdict}; not shipped: the pipeline ships the split runtime as validated");
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
