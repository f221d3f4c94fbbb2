//! End-to-end: the real binary on the fixture kernels (fast) and on bad inputs.

use crate::common::*;
use std::path::Path;

#[test]
fn handwritten_kernel_builds_with_a_line_per_stage_and_a_table() {
    let out = tempfile::tempdir().unwrap();
    let crate_dir = fixture("handwritten");
    let output = wpi(&[
        "build",
        crate_dir.to_str().unwrap(),
        "--out-dir",
        out.path().to_str().unwrap(),
        "--steady-runs",
        "20",
    ]);
    assert_exit(&output, 0);
    let err = stderr(&output);
    for stage in ["build", "shake", "optimize", "validate", "measure", "pack"] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(stage)),
            "no `{stage}` line in:\n{err}"
        );
    }
    assert!(err.contains("8 samples bit-identical"), "{err}");
    let table = stdout(&output);
    for row in [
        "bytes brotli",
        "instantiate",
        "steady, batch 1",
        "steady, batch 4096",
        "cuda: not used (kernel crate `handwritten` declares no `cuda` feature)",
        "runtime fit:",
        "wasm boundary (copies in wasmtime): batch 1 ",
        "  browser page ",
        "  edge function ",
        "  sandboxed plugin ",
        "  server, batches ",
        "  latency-critical native ",
    ] {
        assert!(table.contains(row), "no `{row}` in:\n{table}");
    }
    let bundle = out.path().join("handwritten-0.1.0");
    for file in [
        "handwritten.wasm",
        "libhandwritten.so",
        "samples.bin",
        "handwritten-0.1.0-wasm32.tar.zst",
        "manifest.json",
    ] {
        assert!(bundle.join(file).is_file(), "missing {file}");
    }
    // Only the bundle remains: no staging directory left behind.
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);
}

#[test]
fn json_output_is_the_manifest_and_rebuilds_are_byte_identical() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let crate_dir = fixture("handwritten");
    let build = |dir: &Path| {
        let output = wpi(&[
            "build",
            crate_dir.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
            "--json",
            "--steady-runs",
            "20",
        ]);
        assert_exit(&output, 0);
        assert!(
            stderr(&output).is_empty(),
            "--json prints nothing else: {}",
            stderr(&output)
        );
        manifest_from_stdout(&output)
    };
    let (a, b) = (build(one.path()), build(two.path()));
    // Everything but the timings section is a function of the input.
    let without_timings = |mut m: serde_json::Value| {
        m.as_object_mut().unwrap().remove("timings");
        m
    };
    assert_eq!(without_timings(a.clone()), without_timings(b));
    let on_disk = bundle_manifest(&one.path().join("handwritten-0.1.0"));
    assert_eq!(on_disk, a);
    assert_eq!(a["parity"]["passed"], true);
    assert_eq!(a["wasm"]["stages"]["validate"]["differential_samples"], 8);
    assert!(
        a["timings"]["wasm"]["instantiate"]["runs"]
            .as_u64()
            .unwrap()
            >= 100
    );
    // Every WASM batch has its boundary timed apart; every deployment shape has a verdict
    // decided by figures.
    for steady in a["timings"]["wasm"]["steady"].as_array().unwrap() {
        let transfer = &steady["transfer"];
        assert!(transfer["compute_us"].as_f64().unwrap() > 0.0, "{steady}");
        assert!(transfer["upload_us"].as_f64().unwrap() >= 0.0, "{steady}");
    }
    let fit = &a["timings"]["runtime_fit"];
    let shapes: Vec<&str> = fit["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(!d["figures"].as_array().unwrap().is_empty(), "{d}");
            d["deployment"].as_str().unwrap()
        })
        .collect();
    assert_eq!(shapes, DEPLOYMENT_SHAPES);
    assert_eq!(fit["thresholds"]["compute_tax"]["strong_up_to"], 1.5);
}

#[test]
fn keep_names_survives_wasm_opt() {
    let out = tempfile::tempdir().unwrap();
    let output = build(
        &fixture("handwritten"),
        out.path(),
        &["--keep-names", "-q", "--steady-runs", "5"],
    );
    assert_exit(&output, 0);
    let wasm_path = out.path().join("handwritten-0.1.0/handwritten.wasm");
    let wasm = std::fs::read(&wasm_path).unwrap();
    let sections = cargo_wasmpack_infer::kernel::shake::custom_sections(&wasm).unwrap();
    // With names kept, `inspect` shows demangled function names.
    let output = wpi(&["inspect", wasm_path.to_str().unwrap(), "--top", "20"]);
    assert_exit(&output, 0);
    let report = stdout(&output);
    assert!(
        report.contains("wpi_infer  (exported as wpi_infer)"),
        "{report}"
    );
    assert!(report.contains("custom \"name\""), "{report}");
    // A bundle directory inspects its shipped module; JSON is the same report.
    let output = wpi(&[
        "inspect",
        out.path().join("handwritten-0.1.0").to_str().unwrap(),
        "--json",
    ]);
    assert_exit(&output, 0);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["exports"].as_array().unwrap().len(), 5);
    // --static-data reads a Pyodide runtime's data segments: a kernel bundle is a usage error.
    let output = wpi(&[
        "inspect",
        out.path().join("handwritten-0.1.0").to_str().unwrap(),
        "--static-data",
    ]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--static-data reports on Python bundles"));
    let output = wpi(&["inspect", repo_root().join("Cargo.toml").to_str().unwrap()]);
    assert_exit(&output, 2);
    assert!(
        sections.iter().any(|(name, _)| name == "name"),
        "{sections:?}"
    );
}

#[test]
fn wasi_profile_builds_for_wasip1_and_denies_wasi_calls_while_measuring() {
    let out = tempfile::tempdir().unwrap();
    let output = build(
        &fixture("handwritten"),
        out.path(),
        &["--profile", "wasi", "--json", "--steady-runs", "20"],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert_eq!(manifest["kind"], "kernel");
    assert_eq!(manifest["wasm"]["target"], "wasm32-wasip1");
    assert_eq!(manifest["profile"]["name"], "wasi");
    let imports = manifest["wasm"]["imports"].as_array().unwrap();
    assert!(
        imports
            .iter()
            .all(|i| i.as_str().unwrap().starts_with("wasi_snapshot_preview1.")),
        "{imports:?}"
    );
    assert_eq!(manifest["parity"]["passed"], true);
    // The bundle's loader gives WASI imports the same deny-all stubs in JavaScript.
    let bundle = out.path().join("handwritten-0.1.0");
    match std::process::Command::new("node")
        .arg(repo_root().join("tests/node/run-loader.mjs"))
        .arg(&bundle)
        .arg(bundle.join("samples.bin"))
        .output()
    {
        Ok(output) => assert_exit(&output, 0),
        Err(_) => eprintln!("skipping the Node loader check: `node` is not installed"),
    }
}

#[test]
fn missing_export_is_an_input_error_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let output = wpi(&[
        "build",
        fixture("missing-export").to_str().unwrap(),
        "--out-dir",
        out.path().to_str().unwrap(),
    ]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("crate `missing-export`") && err.contains("missing export `wpi_free`"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn parity_mismatch_fails_naming_the_sample_and_keeps_the_previous_bundle() {
    let out = tempfile::tempdir().unwrap();
    let previous = out.path().join("parity-mismatch-0.1.0");
    std::fs::create_dir(&previous).unwrap();
    std::fs::write(previous.join("manifest.json"), "previous good bundle").unwrap();
    let output = wpi(&[
        "build",
        fixture("parity-mismatch").to_str().unwrap(),
        "--out-dir",
        out.path().to_str().unwrap(),
    ]);
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains("disagree on 8 of 8 samples (first: sample 0"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(previous.join("manifest.json")).unwrap(),
        "previous good bundle"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        1,
        "no staging directory left"
    );
}

/// A native kernel is measured as it runs in production, not as the developer's shell has it:
/// with RUST_BACKTRACE=1 set, every error a kernel makes (tract's plans make some on each run)
/// would capture a backtrace natively and none in WASM. The fixture outputs whether its error
/// captured one, so parity holds only if the tool kept library backtraces off.
#[test]
fn kernels_are_measured_without_the_shells_backtraces() {
    let out = tempfile::tempdir().unwrap();
    let project = fixture("error-paths");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-wasmpack-infer"))
        .args(["build", project.to_str().unwrap(), "--out-dir"])
        .arg(out.path())
        .args([
            "--json",
            "--variant",
            "simd128",
            "--steady-runs",
            "1",
            "--batches",
            "1",
        ])
        .env("CI", "true")
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert_eq!(
        manifest["parity"]["max_abs_diff"], 0.0,
        "{}",
        manifest["parity"]
    );
}

/// Variants that round differently (a sum in another order on each target) build, and `verify`
/// accepts the untampered bundle: the distance may move within tolerance, the outputs may not.
#[test]
fn variants_that_differ_in_the_last_bits_verify() {
    let out = tempfile::tempdir().unwrap();
    let output = build(
        &fixture("last-bits"),
        out.path(),
        &["--json", "--steady-runs", "5", "--batches", "1"],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    let max_abs_diff = manifest["parity"]["max_abs_diff"].as_f64().unwrap();
    assert!(
        max_abs_diff > 0.0 && max_abs_diff < 1e-5,
        "the fixture's variants should differ within tolerance: {max_abs_diff}"
    );
    assert_eq!(manifest["parity"]["passed"], true);
    let bundle = out.path().join("last-bits-0.1.0");
    let bundle_arg = bundle.to_str().unwrap();
    for _ in 0..2 {
        let output = wpi(&["verify", bundle_arg]);
        assert_exit(&output, 0);
        assert!(
            stdout(&output).contains("parity reproduced on 32 samples"),
            "{}",
            stdout(&output)
        );
    }
    let output = wpi(&["verify", bundle_arg, "--json"]);
    assert_exit(&output, 0);
    let found: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        ["exact", "within_tolerance"].contains(&found["parity"].as_str().unwrap()),
        "{found}"
    );

    // A recorded argmax no re-run gives, and a flipped byte in the module, still fail.
    let manifest_path = bundle.join("manifest.json");
    let recorded = std::fs::read_to_string(&manifest_path).unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&recorded).unwrap();
    let argmax = &mut edited["parity"]["per_sample"]["argmax_wasm"][3];
    *argmax = ((argmax.as_u64().unwrap() + 1) % 3).into();
    std::fs::write(&manifest_path, edited.to_string()).unwrap();
    let output = wpi(&["verify", bundle_arg]);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("differs from the manifest (first at sample 3)"),
        "{}",
        stdout(&output)
    );
    std::fs::write(&manifest_path, recorded).unwrap();
    let wasm = bundle.join("last-bits.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&wasm, bytes).unwrap();
    assert_exit(&wpi(&["verify", bundle_arg]), 1);
}

/// Each bad Cargo.toml edit and the message it must produce; all exit 2 before building.
#[test]
fn bad_metadata_is_named_with_crate_and_key() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "unknown key",
            "tolerance = 1e-6",
            "tolerance = 1e-6\nbatch = 4",
            "unknown field `batch`",
        ),
        (
            "missing samples file",
            "samples/inputs.bin",
            "samples/nope.bin",
            "samples = \"samples/nope.bin\": cannot read",
        ),
        (
            "shape does not divide samples",
            "shape = [4]",
            "shape = [5]",
            "not a whole number of samples of 20 bytes",
        ),
        (
            "bad dtype",
            "dtype = \"f32\", shape = [2]",
            "dtype = \"f16\", shape = [2]",
            "unknown variant `f16`",
        ),
        (
            "no metadata table",
            "[package.metadata.wasmpack-infer]",
            "[package.metadata.other]",
            "has no [package.metadata.wasmpack-infer] table",
        ),
        (
            "not a cdylib",
            "crate-type = [\"cdylib\"]",
            "crate-type = [\"rlib\"]",
            "has no cdylib target",
        ),
    ];
    for (case, from, to, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let crate_dir = copy_crate(&fixture("handwritten"), dir.path());
        let manifest = crate_dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.contains(from), "{case}: fixture lacks {from}");
        std::fs::write(&manifest, text.replacen(from, to, 1)).unwrap();
        let out = dir.path().join("dist");
        let output = wpi(&[
            "build",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
        ]);
        assert_exit(&output, 2);
        let err = stderr(&output);
        assert!(
            err.contains(expected),
            "{case}: expected `{expected}` in:\n{err}"
        );
        assert!(
            err.contains("handwritten"),
            "{case}: the crate is named in:\n{err}"
        );
        assert!(!out.exists(), "{case}: nothing may be written");
    }
}

#[test]
fn workspace_members_are_picked_with_package() {
    let dir = tempfile::tempdir().unwrap();
    let member = copy_crate(&fixture("handwritten"), dir.path());
    let manifest = member.join("Cargo.toml");
    let standalone = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, standalone.replace("[workspace]\n", "")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace]\nmembers = [\"handwritten\"]\nresolver = \"3\"\n",
    )
    .unwrap();
    let out = dir.path().join("dist");

    let output = build(dir.path(), &out, &[]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("pick the kernel with --package (one of: handwritten)"),
        "{}",
        stderr(&output)
    );

    let output = build(
        dir.path(),
        &out,
        &["-p", "handwritten", "-q", "--steady-runs", "5"],
    );
    assert_exit(&output, 0);
    assert!(
        stdout(&output).is_empty() && stderr(&output).is_empty(),
        "-q prints nothing"
    );
    assert!(out.join("handwritten-0.1.0/manifest.json").is_file());
    // The workspace's target directory holds the tool's builds, apart from the user's own.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or(dir.path().join("target"));
    assert!(target_dir.join("wasmpack-infer").is_dir());
}

#[test]
fn usage_errors_exit_2_and_help_documents_exit_codes() {
    let output = wpi(&["build", "--no-such-flag"]);
    assert_exit(&output, 2);
    let output = wpi(&["build", "/nonexistent/kernel"]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("no Cargo.toml at /nonexistent/kernel"),
        "{}",
        stderr(&output)
    );
    let output = wpi(&[
        "build",
        fixture("handwritten").to_str().unwrap(),
        "--profile",
        "gpu",
    ]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("unknown profile `gpu`"));
    let output = wpi(&["--help"]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("Exit codes:"),
        "{}",
        stdout(&output)
    );
    // Invoked by cargo as `cargo-wasmpack-infer wasmpack-infer …`.
    let output = wpi(&["wasmpack-infer", "schema"]);
    assert_exit(&output, 0);
    assert!(stdout(&output).contains("\"schema_version\""));
}

/// The human summary of real manifests: the handwritten fixture with its runtime-fit verdict;
/// digits-mlp with three feature-level variants (the table side by side follows the primary's,
/// with the relaxed-SIMD note); and digits-mlp measured in Node and a Python host too (their
/// blocks, and steady latency per host side by side).
#[test]
fn human_summary_matches_snapshot() {
    for (manifest, snapshot) in [
        ("handwritten-fit.json", "handwritten-summary.txt"),
        (
            "digits-mlp-variants.json",
            "digits-mlp-variants-summary.txt",
        ),
        ("digits-mlp-hosts.json", "digits-mlp-hosts-summary.txt"),
    ] {
        let manifest = cargo_wasmpack_infer::manifest::kernel::KernelManifest::read(
            &repo_root().join("tests/fixtures/manifests").join(manifest),
        )
        .unwrap();
        assert_snapshot(
            snapshot,
            &cargo_wasmpack_infer::report::human::summary(&manifest),
        );
    }
}

/// A package name npm would refuse is an input error naming the key, before anything builds.
#[test]
fn an_invalid_npm_name_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = copy_crate(&fixture("handwritten"), dir.path());
    let manifest = crate_dir.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("\n[package.metadata.wasmpack-infer.npm]\nname = \"@Acme/digits\"\n");
    std::fs::write(&manifest, text).unwrap();
    let output = build(&crate_dir, &dir.path().join("dist"), &[]);
    assert_exit(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains(r#"npm package name "@Acme/digits" has 'A' in its scope"#)
            && err.contains("change [package.metadata.wasmpack-infer.npm] name"),
        "{err}"
    );
    assert!(!dir.path().join("dist").exists());
}

#[test]
fn new_kernel_builds_and_meets_its_budgets_right_away() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("my-kernel");
    let new_kernel = || {
        wpi(&[
            "new",
            "kernel",
            "my-kernel",
            "--dir",
            project.to_str().unwrap(),
        ])
    };
    let output = new_kernel();
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("next: cargo wasmpack-infer build"),
        "{}",
        stdout(&output)
    );
    let out = dir.path().join("dist");
    let output = build(&project, &out, &["--check", "--steady-runs", "5"]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("all 2 budgets met"),
        "{}",
        stdout(&output)
    );
    // A second `new` into the same place is refused and changes nothing.
    let output = new_kernel();
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("already exists"));
}

/// Kernels that misbehave only on wasm32 (fixture `hostile`, mode chosen at compile time) fail the
/// build with exit 3 and a message saying what happened, instead of hanging or crashing it.
#[test]
fn hostile_kernels_fail_the_build_with_a_reason() {
    let cases = [
        ("trap", "wasm `unreachable` instruction executed"),
        (
            "overlong",
            "wpi_infer returned 1032 bytes written, more than its 8-byte output buffer",
        ),
        ("grow", "(the sandbox allows 1.0 GiB)"),
        ("loop", "the kernel ran longer than 2s and was stopped"),
    ];
    // One test, run in order: every mode rebuilds the same crate in the shared target directory.
    for (mode, expected) in cases {
        let out = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-wasmpack-infer"))
            .args([
                "build",
                fixture("hostile").to_str().unwrap(),
                "--call-timeout",
                "2",
                "--out-dir",
            ])
            .arg(out.path())
            .env("WPI_HOSTILE", mode)
            .env("CI", "true")
            .output()
            .unwrap();
        assert_exit(&output, 3);
        assert!(
            stderr(&output).contains(expected),
            "{mode}: expected {expected:?} in\n{}",
            stderr(&output)
        );
        assert_eq!(
            std::fs::read_dir(out.path()).unwrap().count(),
            0,
            "{mode}: nothing written"
        );
    }
}

/// Builds killed at different points leave a bundle that verifies (the previous one, or a complete
/// new one), and the next run removes what a killed run left behind.
#[test]
fn killed_builds_never_leave_a_half_written_bundle() {
    let out = tempfile::tempdir().unwrap();
    let crate_dir = fixture("handwritten");
    let build = |steady_runs: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-wasmpack-infer"));
        command
            .args([
                "build",
                crate_dir.to_str().unwrap(),
                "-q",
                "--steady-runs",
                steady_runs,
                "--out-dir",
            ])
            .arg(out.path())
            .env("CI", "true");
        command
    };
    assert_exit(&build("5").output().unwrap(), 0);
    let bundle = out.path().join("handwritten-0.1.0");
    for delay_ms in [20, 150, 400, 900, 1500] {
        let mut child = build("20000").spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let output = wpi(&["verify", bundle.to_str().unwrap()]);
        assert_exit(&output, 0);
    }
    // What a run killed inside pack would leave: a staging directory of a dead process.
    std::fs::create_dir(
        out.path()
            .join(".wpi-staging-999999999-handwritten-0.1.0-x"),
    )
    .unwrap();
    assert_exit(&build("5").output().unwrap(), 0);
    let leftovers: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, vec!["handwritten-0.1.0".to_string()]);
}

/// The build keeps a sidecar name map beside the stripped module; `diff` of two releases names
/// the functions whose size changed.
#[test]
fn diff_names_the_functions_that_changed_from_the_sidecar_name_maps() {
    let dir = tempfile::tempdir().unwrap();
    let old_crate = copy_crate(&fixture("handwritten"), &dir.path().join("old"));
    let new_crate = copy_crate(&fixture("handwritten"), &dir.path().join("new"));
    let lib = new_crate.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let changed = source.replace(
        "let sum: f32 = values.iter().sum();",
        "let sum: f32 = values.iter().map(|v| v.abs().sqrt()).sum();",
    );
    assert_ne!(source, changed, "the fixture changed: update this test");
    std::fs::write(&lib, changed).unwrap();
    let bundle_of = |crate_dir: &Path| {
        let out = crate_dir.parent().unwrap().join("dist");
        let output = build(
            crate_dir,
            &out,
            &["--json", "--steady-runs", "5", "--batches", "1"],
        );
        assert_exit(&output, 0);
        let manifest = manifest_from_stdout(&output);
        let bundle = out.join("handwritten-0.1.0");
        let map_file = manifest["wasm"]["name_map"].as_str().unwrap().to_string();
        assert_eq!(map_file, "handwritten.names.json");
        let map: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join(&map_file)).unwrap()).unwrap();
        let wasm = std::fs::read(bundle.join("handwritten.wasm")).unwrap();
        assert_eq!(
            map["module_sha256"],
            cargo_wasmpack_infer::fsx::sha256_hex(&wasm),
            "the map describes the shipped module"
        );
        assert!(
            cargo_wasmpack_infer::bundle::inspect::inspect(&wasm, 100)
                .unwrap()
                .largest_functions
                .iter()
                .all(|f| f.name.is_none()),
            "the shipped module stays stripped"
        );
        bundle
    };
    let (old, new) = (bundle_of(&old_crate), bundle_of(&new_crate));
    let output = wpi(&[
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_exit(&output, 0);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let functions = report["content"]["functions"].as_array().unwrap();
    assert!(
        functions.iter().any(|f| f["name"] == "wpi_infer"),
        "{functions:?}"
    );
    let output = wpi(&["diff", old.to_str().unwrap(), new.to_str().unwrap()]);
    assert!(stdout(&output).contains("wpi_infer"), "{}", stdout(&output));
    // inspect names the stripped module's functions from the map.
    let output = wpi(&["inspect", new.to_str().unwrap(), "--top", "3"]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("dlmalloc") && !stdout(&output).contains("func["),
        "{}",
        stdout(&output)
    );
}

/// A crate that reads a file outside its package cannot build from the stage (a copy of its
/// packages): the error names the user's file and says what to do; `--in-place` builds it.
#[test]
fn a_file_outside_the_package_needs_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = copy_crate(&fixture("handwritten"), dir.path());
    std::fs::write(dir.path().join("outside.bin"), [7u8; 4]).unwrap();
    let lib = crate_dir.join("src/lib.rs");
    let mut source = std::fs::read_to_string(&lib).unwrap();
    source
        .push_str("\n#[used]\nstatic OUTSIDE: [u8; 4] = *include_bytes!(\"../../outside.bin\");\n");
    std::fs::write(&lib, source).unwrap();
    let out = dir.path().join("dist");
    let build = |extra: &[&str]| {
        let mut args = vec![
            "build",
            crate_dir.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
            "--steady-runs",
            "5",
            "--batches",
            "1",
        ];
        args.extend_from_slice(extra);
        wpi(&args)
    };
    let output = build(&[]);
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains(&format!("{}", crate_dir.join("src/lib.rs").display()))
            || err.contains("src/lib.rs"),
        "{err}"
    );
    assert!(err.contains("build with --in-place"), "{err}");
    assert!(!out.exists(), "nothing may be written");
    assert_exit(&build(&["--in-place"]), 0);
}

/// Kernels on the crates users have: rand 0.9 links getrandom 0.3, which builds for
/// wasm32-unknown-unknown only once a backend is chosen. The profile chooses getrandom's
/// `custom` backend, which the helper crate supplies (no imports), records it in the manifest,
/// and the kernel builds with no wasm-specific setup of its own.
#[test]
fn a_kernel_on_rand_builds_with_the_profiles_getrandom_backend() {
    let out = tempfile::tempdir().unwrap();
    let output = build(
        &fixture("random-features"),
        out.path(),
        &["--json", "--steady-runs", "3", "--batches", "1"],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    let rustflags = manifest["wasm"]["rustflags"].as_array().unwrap();
    assert!(
        rustflags.contains(&serde_json::json!("getrandom_backend=\"custom\"")),
        "{rustflags:?}"
    );
    assert_eq!(manifest["wasm"]["imports"], serde_json::json!([]));
    assert_eq!(manifest["parity"]["passed"], true);
}

/// A kernel that seeds itself from getrandom in `wpi_init` but links nothing that supplies the
/// profile's `custom` backend (it writes the ABI by hand): its module would import the backend's
/// function, so the build stops saying so and naming the two fixes, and writes no bundle.
#[test]
fn randomness_with_no_source_linked_is_refused_naming_the_fix() {
    let out = tempfile::tempdir().unwrap();
    let output = build(&fixture("random-without-helper"), out.path(), &[]);
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains("asks for randomness while it runs, and nothing it links supplies any"),
        "{err}"
    );
    assert!(err.contains("`env.__getrandom_v03_custom`"), "{err}");
    assert!(
        err.contains("Depend on wasmpack-infer-kernel (its `wasm-getrandom` feature"),
        "{err}"
    );
    assert!(!out.path().join("random-without-helper-0.1.0").exists());
}

/// getrandom 0.2 (under rand 0.8) picks its backend by its own features, which the tool cannot
/// set: the build fails naming the chain that pulls it in and the fix, and does not blame a
/// missing file.
#[test]
fn getrandom_0_2_fails_naming_who_pulls_it_in() {
    let out = tempfile::tempdir().unwrap();
    let output = build(&fixture("old-rand"), out.path(), &[]);
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains("old-rand 0.1.0 → rand 0.8.") && err.contains("→ getrandom 0.2."),
        "{err}"
    );
    assert!(err.contains("getrandom 0.3 or later"), "{err}");
    assert!(!err.contains("--in-place"), "no file is missing: {err}");
    assert!(!out.path().join("old-rand-0.1.0").exists());
}

/// getrandom 0.2's `js` backend links wasm-bindgen's glue, and this kernel's inference calls it:
/// the shipped module has that glue as traps, the samples reach one, so the build stops naming
/// the import and the chain to wasm-bindgen, and writes no bundle.
#[test]
fn inference_that_calls_wasm_bindgen_glue_stops_the_build_naming_the_crate() {
    let out = tempfile::tempdir().unwrap();
    let output = build(&fixture("bindgen-noise"), out.path(), &[]);
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains(
            "error: crate `bindgen-noise` built for wasm32-unknown-unknown called `__wbindgen_"
        ),
        "{err}"
    );
    assert!(
        err.contains("pulled in by bindgen-noise 0.1.0 → getrandom 0.2.")
            && err.contains("→ wasm-bindgen 0."),
        "{err}"
    );
    assert!(
        err.contains("sample 0 on the module as cargo built it"),
        "{err}"
    );
    assert!(!out.path().join("bindgen-noise-0.1.0").exists());
}

/// The same glue, reachable only on a path no sample takes (a missing feature): the build ships a
/// module that imports nothing, with the glue as traps the manifest lists. The bundle's loader
/// runs it in Node as it is; an input that takes the glue path traps there instead of computing.
#[test]
fn wasm_bindgen_glue_no_sample_calls_ships_as_traps() {
    let out = tempfile::tempdir().unwrap();
    let output = build(
        &fixture("bindgen-unreached"),
        out.path(),
        &["--json", "--steady-runs", "3", "--batches", "1"],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    assert_eq!(manifest["wasm"]["imports"], serde_json::json!([]));
    let stubbed = manifest["wasm"]["stages"]["shake"]["glue_stubbed"]
        .as_array()
        .unwrap();
    assert!(
        !stubbed.is_empty()
            && stubbed
                .iter()
                .all(|i| i.as_str().unwrap().starts_with("__wbindgen_")),
        "{stubbed:?}"
    );
    assert_eq!(manifest["parity"]["passed"], true);

    let bundle = out.path().join("bindgen-unreached-0.1.0");
    let run_loader = |samples: &Path| {
        std::process::Command::new("node")
            .arg(repo_root().join("tests/node/run-loader.mjs"))
            .arg(&bundle)
            .arg(samples)
            .output()
    };
    let Ok(complete) = run_loader(&bundle.join("samples.bin")) else {
        eprintln!("skipping the Node loader check: `node` is not installed");
        return;
    };
    assert_exit(&complete, 0);
    let missing = out.path().join("missing.bin");
    let mut features = [0.5f32; 8];
    features[3] = f32::NAN;
    std::fs::write(
        &missing,
        features
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let trapped = run_loader(&missing).unwrap();
    assert_exit(&trapped, 1);
    assert!(
        stderr(&trapped).contains("RuntimeError: unreachable"),
        "{}",
        stderr(&trapped)
    );
}

/// A dependency that does not compile with relaxed SIMD (macerator 0.5.2's bug, under burn,
/// reduced): the variants the floor needs ship, the manifest says why relaxed-simd is missing,
/// and asking for it by name makes the same failure an error.
#[test]
fn a_variant_above_the_floor_that_does_not_compile_is_skipped_and_recorded() {
    let out = tempfile::tempdir().unwrap();
    let output = build(
        &fixture("relaxed-unbuildable"),
        out.path(),
        &["--steady-runs", "3", "--batches", "1"],
    );
    assert_exit(&output, 0);
    let manifest = bundle_manifest(&out.path().join("relaxed-unbuildable-0.1.0"));
    let levels: Vec<&str> = manifest["wasm"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["baseline", "simd128"]);
    let skipped = &manifest["wasm"]["skipped_variants"];
    assert_eq!(skipped[0]["level"], "relaxed-simd", "{skipped}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("could not compile `vector-kit`"),
        "{skipped}"
    );
    assert!(
        stderr(&output).contains("relaxed-simd variant not built, the others ship without it: could not compile `vector-kit`"),
        "{}",
        stderr(&output)
    );

    let asked = tempfile::tempdir().unwrap();
    let output = build(
        &fixture("relaxed-unbuildable"),
        asked.path(),
        &["--variant", "simd128", "--variant", "relaxed-simd"],
    );
    assert_exit(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains("relaxed-simd variant") && err.contains("could not compile `vector-kit`"),
        "{err}"
    );
}

/// A burn 0.22 kernel (ndarray backend, safetensors weights through burn-store), as a burn user
/// writes it, builds and ships with no wasm-specific setup:
/// - its randomness is served (ahash's seeds come from the helper crate's `custom` backend,
///   getrandom 0.4 built without `wasm_js`);
/// - the wasm-bindgen glue burn's environment crate (cubecl-environment) links on every wasm
///   target stays reachable from the exports but no sample calls it: it ships as traps;
/// - macerator 0.5.2 (burn's SIMD crate) does not compile with relaxed SIMD, so that variant is
///   skipped and recorded, and baseline and simd128 ship.
///
/// Links burn three times (about ten minutes cold on 2 cores): `just test-slow`.
#[test]
#[ignore = "builds burn three times: run with `just test-slow`"]
fn a_burn_kernel_builds_with_its_glue_as_traps_and_reproduces_its_samples() {
    let out = tempfile::tempdir().unwrap();
    let output = build(
        &fixture("burn-kernel"),
        out.path(),
        &["--steady-runs", "3", "--batches", "1,16"],
    );
    assert_exit(&output, 0);
    let manifest = bundle_manifest(&out.path().join("burn-kernel-0.1.0"));
    assert_eq!(manifest["wasm"]["imports"], serde_json::json!([]));
    let stubbed = manifest["wasm"]["stages"]["shake"]["glue_stubbed"].to_string();
    assert!(stubbed.contains("__wbindgen_object_drop_ref"), "{stubbed}");
    let skipped = &manifest["wasm"]["skipped_variants"];
    assert_eq!(skipped[0]["level"], "relaxed-simd", "{skipped}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("could not compile `macerator`"),
        "{skipped}"
    );
    assert_eq!(manifest["parity"]["passed"], true);
}

/// The helper crate's tile paths run only in WASM builds: its unit tests (every shape against the
/// per-sample loop, bit for bit) run in Node for each instruction set a WASM variant may use.
#[test]
fn helper_math_matches_the_per_sample_loop_in_wasm_on_every_instruction_set() {
    let node_flags = match std::process::Command::new("node")
        .arg("--v8-options")
        .output()
    {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(_) => return eprintln!("skipping the WASM helper tests: `node` is not installed"),
    };
    let mut runner = vec!["node".to_string(), "--no-warnings".into()];
    // Node 20 ships relaxed SIMD behind a flag; later versions have it on.
    if node_flags.contains("--experimental-wasm-relaxed-simd") {
        runner.push("--experimental-wasm-relaxed-simd".into());
    }
    let script = repo_root().join("tests/node/wasi-run.mjs");
    runner.push(script.to_str().unwrap().into());
    // A TOML array: paths with spaces stay one argument.
    let runner_config = format!("target.wasm32-wasip1.runner={runner:?}");
    for (isa, features) in [
        ("portable", ""),
        ("simd128", "-C target-feature=+simd128"),
        ("relaxed-simd", "-C target-feature=+simd128,+relaxed-simd"),
    ] {
        let output = std::process::Command::new(env!("CARGO"))
            .args(["test", "--lib", "--target", "wasm32-wasip1", "--config"])
            .arg(&runner_config)
            .arg("--manifest-path")
            .arg(repo_root().join("kernel/Cargo.toml"))
            .args(["--", "gemm::"])
            .env("RUSTFLAGS", features)
            .env(
                "CARGO_TARGET_DIR",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("helper-wasm-{isa}")),
            )
            .output()
            .unwrap();
        assert!(
            output.status.success() && stdout(&output).contains("every_shape_matches"),
            "{isa}:\n{}\n{}",
            stdout(&output),
            stderr(&output)
        );
    }
}
