//! `check` against the fixture manifest: pass, fail, bad budgets, each output format.

use crate::common::*;

fn manifest() -> String {
    repo_root()
        .join("tests/fixtures/manifests/handwritten.json")
        .to_string_lossy()
        .into_owned()
}

fn budgets(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("budgets.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

const PASSING: &str = "[wasm]\nbrotli_bytes = \"4 KiB\"\ninstantiate_us = \"1 ms\"\n[ratio]\nwasm_over_native_steady = 10\n";
const FAILING: &str = "[wasm]\nbrotli_bytes = \"2 KiB\"\nsteady_batch1_us = \"100 ns\"\n[native]\nraw_bytes = \"1 MiB\"\n";

#[test]
fn passing_budgets_exit_0_and_failing_ones_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let output = wpi(&["check", &manifest(), "--budgets", &budgets(&dir, PASSING)]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("all 3 budgets met"),
        "{}",
        stdout(&output)
    );

    let output = wpi(&["check", &manifest(), "--budgets", &budgets(&dir, FAILING)]);
    assert_exit(&output, 1);
    assert_snapshot("check-failing-human.txt", &stdout(&output));
}

#[test]
fn markdown_and_json_formats_and_the_job_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = budgets(&dir, FAILING);
    let output = wpi(&[
        "check",
        &manifest(),
        "--budgets",
        &file,
        "--format",
        "markdown",
    ]);
    assert_exit(&output, 1);
    assert_snapshot("check-failing-markdown.md", &stdout(&output));

    let summary = dir.path().join("summary.md");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-wasmpack-infer"))
        .args(["check", &manifest(), "--budgets", &file, "--format", "json"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_exit(&output, 1);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["passed"], false);
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let exceeded: Vec<&str> = results
        .iter()
        .filter(|r| r["passed"] == false)
        .map(|r| r["metric"].as_str().unwrap())
        .collect();
    assert_eq!(exceeded, vec!["wasm.brotli_bytes", "wasm.steady_batch1_us"]);
    assert_eq!(
        std::fs::read_to_string(&summary).unwrap(),
        stdout(&wpi(&[
            "check",
            &manifest(),
            "--budgets",
            &file,
            "--format",
            "markdown"
        ]))
    );
}

#[test]
fn build_check_uses_the_crate_budgets() {
    for (limit, code) in [("1 MiB", 0), ("1 KiB", 1)] {
        let dir = tempfile::tempdir().unwrap();
        let crate_dir = copy_crate(&fixture("handwritten"), dir.path());
        let manifest = crate_dir.join("Cargo.toml");
        let mut text = std::fs::read_to_string(&manifest).unwrap();
        text.push_str(&format!(
            "\n[package.metadata.wasmpack-infer.budgets]\nwasm.brotli_bytes = \"{limit}\"\n"
        ));
        std::fs::write(&manifest, text).unwrap();
        let out = dir.path().join("dist");
        let output = wpi(&[
            "build",
            crate_dir.to_str().unwrap(),
            "--check",
            "--out-dir",
            out.to_str().unwrap(),
            "--steady-runs",
            "5",
        ]);
        assert_exit(&output, code);
        assert!(
            stdout(&output).contains("wasm.brotli_bytes"),
            "{}",
            stdout(&output)
        );
        // A budget miss is not a failed build: the bundle is written and records its budgets.
        let written = bundle_manifest(&out.join("handwritten-0.1.0"));
        assert_eq!(written["budgets"]["wasm.brotli_bytes"], limit);
    }
}

/// A copy of the fixture manifest whose WASM grew by half and whose instantiation got slower.
fn grown_manifest(dir: &tempfile::TempDir) -> String {
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest()).unwrap()).unwrap();
    let brotli = manifest["wasm"]["sizes"]["brotli_bytes"].as_u64().unwrap();
    manifest["wasm"]["sizes"]["brotli_bytes"] = (brotli * 3 / 2).into();
    let instantiate = manifest["timings"]["wasm"]["instantiate"]["median_us"]
        .as_f64()
        .unwrap();
    manifest["timings"]["wasm"]["instantiate"]["median_us"] = (instantiate * 4.0).into();
    let path = dir.path().join("new.json");
    std::fs::write(&path, serde_json::to_string(&manifest).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn diff_sorts_by_impact_and_fail_over_gates_sizes_only() {
    let dir = tempfile::tempdir().unwrap();
    let output = wpi(&["diff", &manifest(), &manifest()]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("0 metrics changed"),
        "{}",
        stdout(&output)
    );

    let new = grown_manifest(&dir);
    let output = wpi(&["diff", &manifest(), &new]);
    assert_exit(&output, 0);
    assert_snapshot("diff-human.txt", &stdout(&output));

    let output = wpi(&["diff", &manifest(), &new, "--fail-over", "5%"]);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("✗ wasm.brotli_bytes grew +50.0 %"),
        "{}",
        stdout(&output)
    );
    // Instantiation got 4x slower but timings are not gated by --fail-over.
    assert!(!stdout(&output).contains("✗ wasm.instantiate_us"));
    let output = wpi(&["diff", &manifest(), &new, "--fail-over", "60%"]);
    assert_exit(&output, 0);

    let output = wpi(&["diff", &manifest(), &new, "--format", "markdown"]);
    assert_snapshot("diff-markdown.md", &stdout(&output));
    let output = wpi(&[
        "diff",
        &manifest(),
        &new,
        "--format",
        "markdown",
        "--fail-over",
        "5%",
    ]);
    assert_exit(&output, 1);
    assert_snapshot("diff-markdown-fail-over.md", &stdout(&output));
    let output = wpi(&[
        "diff",
        &manifest(),
        &new,
        "--format",
        "json",
        "--fail-over",
        "0.05",
    ]);
    assert_exit(&output, 1);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["changes"][0]["metric"], "wasm.instantiate_us");
    assert_eq!(
        json["grown_over_threshold"],
        serde_json::json!(["wasm.brotli_bytes"])
    );

    let output = wpi(&["diff", &manifest(), &new, "--fail-over", "lots"]);
    assert_exit(&output, 2);
    let output = wpi(&["diff", &manifest(), "/nonexistent"]);
    assert_exit(&output, 2);
}

fn pyodide_manifest() -> String {
    repo_root()
        .join("tests/fixtures/manifests/digits-py.json")
        .to_string_lossy()
        .into_owned()
}

/// Python bundles have their own metrics (stock, bundle, snapshot, native, ratios); `check`
/// reads the budgets their manifest recorded and `diff` compares two of them, never a kernel
/// manifest with a Python one.
#[test]
fn check_and_diff_read_python_bundle_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let output = wpi(&["check", &pyodide_manifest()]);
    assert_exit(&output, 0);
    assert!(
        stdout(&output).contains("all 3 budgets met"),
        "{}",
        stdout(&output)
    );

    let failing = budgets(
        &dir,
        "[bundle]\nbrotli_bytes = \"1 MiB\"\n[snapshot]\ncold_start_us = \"10 ms\"\n[ratio]\nbytes_over_stock = 0.25\n",
    );
    let output = wpi(&[
        "check",
        &pyodide_manifest(),
        "--budgets",
        &failing,
        "--format",
        "json",
    ]);
    assert_exit(&output, 1);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let failed: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["passed"] == false)
        .map(|r| r["metric"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        [
            "bundle.brotli_bytes",
            "ratio.bytes_over_stock",
            "snapshot.cold_start_us"
        ]
    );

    let mut grown: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pyodide_manifest()).unwrap()).unwrap();
    let brotli = grown["sizes"]["bundle"]["brotli_bytes"].as_u64().unwrap();
    grown["sizes"]["bundle"]["brotli_bytes"] = (brotli * 11 / 10).into();
    let grown_path = dir.path().join("grown.json");
    std::fs::write(&grown_path, grown.to_string()).unwrap();
    let output = wpi(&[
        "diff",
        &pyodide_manifest(),
        grown_path.to_str().unwrap(),
        "--fail-over",
        "5%",
    ]);
    assert_exit(&output, 1);
    assert!(
        stdout(&output).starts_with("metric") && stdout(&output).contains("bundle.brotli_bytes"),
        "{}",
        stdout(&output)
    );

    let output = wpi(&["diff", &manifest(), &pyodide_manifest()]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("cannot compare a kernel manifest with a pyodide manifest"),
        "{}",
        stderr(&output)
    );
}

/// Every subcommand takes the same output options: `--format`, `--json` for `--format json`, `-q`.
#[test]
fn one_set_of_output_options_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let failing = budgets(&dir, FAILING);
    let output = wpi(&["check", &manifest(), "--budgets", &failing, "-q"]);
    assert_exit(&output, 1);
    assert_eq!(
        stdout(&output),
        "",
        "--quiet prints nothing; the exit code says it"
    );
    let as_json = wpi(&["check", &manifest(), "--budgets", &failing, "--json"]);
    let as_format = wpi(&[
        "check",
        &manifest(),
        "--budgets",
        &failing,
        "--format",
        "json",
    ]);
    assert_exit(&as_json, 1);
    assert_eq!(stdout(&as_json), stdout(&as_format));
    let output = wpi(&["diff", &manifest(), &manifest(), "--quiet"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "");
    for subcommand in ["verify", "inspect", "measure"] {
        let output = wpi(&[subcommand, &manifest(), "--format", "markdown"]);
        assert_exit(&output, 2);
        assert!(
            stderr(&output).contains(&format!(
                "--format markdown: `{subcommand}` prints human or json output"
            )),
            "{}",
            stderr(&output)
        );
    }
    let output = wpi(&["verify", &manifest(), "--json", "--format", "human"]);
    assert_exit(&output, 2);
}
