//! The browser side of a bundle, in headless Chromium: the demo page drawn on through real input
//! events, and a tampered module refused by the loader's integrity check.

use crate::common::*;

/// Builds digits-mlp with its demo page into a temp dir; the bundle directory and its owner.
fn digits_demo() -> (tempfile::TempDir, std::path::PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let output = build(
        &repo_root().join("examples/digits-mlp"),
        out.path(),
        &[
            "--demo",
            "--json",
            "--batches",
            "1",
            "--steady-budget",
            "0.05",
        ],
    );
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"index.html"), "{files:?}");
    let bundle = out.path().join("digits-mlp-0.1.0");
    (out, bundle)
}

#[test]
fn drawing_a_held_out_digit_on_the_demo_page_shows_its_label() {
    if !chromium_available() {
        return;
    }
    let (_out, bundle) = digits_demo();
    let serving = Serving::start(&bundle);
    let (drawn, expected) = drawable_digits();
    let shown = drive_demo(&serving.url, &drawn, "demo-digits-mlp.png");
    assert_eq!(shown["labels"], expected, "{shown}");
    assert!(
        shown["status"].as_str().unwrap().starts_with("ready in"),
        "{shown}"
    );
}

#[test]
fn a_tampered_module_is_reported_by_the_demo_page() {
    if !chromium_available() {
        return;
    }
    let (_out, bundle) = digits_demo();
    // Every level: the page loads whichever Chromium runs best.
    for level in ["baseline.", "", "relaxed-simd."] {
        let wasm = bundle.join(format!("digits-mlp.{level}wasm"));
        let mut bytes = std::fs::read(&wasm).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&wasm, bytes).unwrap();
    }
    let serving = Serving::start(&bundle);
    let shown = drive_demo(&serving.url, &[], "demo-tampered.png");
    assert_eq!(shown["error"], "IntegrityError", "{shown}");
    let status = shown["status"].as_str().unwrap();
    assert!(
        status.starts_with("integrity check failed")
            && status.contains("digits-mlp.relaxed-simd.wasm"),
        "{status}"
    );
}

#[test]
fn demo_needs_a_demo_table() {
    let out = tempfile::tempdir().unwrap();
    let output = build(
        &repo_root().join("examples/mlp-large"),
        out.path(),
        &["--demo"],
    );
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("[package.metadata.wasmpack-infer.demo]"),
        "{}",
        stderr(&output)
    );
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn measure_browser_records_chromium_timings_and_parity() {
    if !chromium_available() {
        return;
    }
    let (_out, bundle) = digits_demo();
    let output = wpi(&[
        "measure",
        bundle.to_str().unwrap(),
        "--browser",
        "--json",
        "--batches",
        "1,64",
        "--steady-budget",
        "0.05",
    ]);
    assert_exit(&output, 0);
    let manifest = manifest_from_stdout(&output);
    let browser = &manifest["timings"]["browser"];
    assert!(
        browser["environment"]["browser"]
            .as_str()
            .unwrap()
            .starts_with("Chromium"),
        "{browser}"
    );
    assert_eq!(
        browser["environment"]["cross_origin_isolated"], true,
        "COOP/COEP served"
    );
    assert_eq!(browser["load"]["runs"], 10);
    assert!(browser["load"]["median_us"].as_f64().unwrap() > 0.0);
    let batches: Vec<u64> = browser["steady"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["batch"].as_u64().unwrap())
        .collect();
    assert_eq!(batches, [1, 64]);
    // Each batch's call split at the boundary: copies in and out through loader.mjs, and
    // wpi_infer, which does the work and so takes longer the larger the batch.
    let step =
        |batch: usize, name: &str| browser["steady"][batch]["transfer"][name].as_f64().unwrap();
    for batch in 0..2 {
        for name in ["upload_us", "compute_us", "download_us"] {
            assert!(step(batch, name) > 0.0, "{name}: {browser}");
        }
    }
    assert!(step(1, "compute_us") > step(0, "compute_us"), "{browser}");
    // Chromium >= 114 runs relaxed SIMD: the loader picks it, and wasmtime runs that module too.
    assert_eq!(browser["variant"], "relaxed-simd", "{browser}");
    assert_eq!(browser["parity"]["passed"], true);
    assert_eq!(browser["parity"]["samples"], 360);
    // The page verdict now judges the page's own load and first inference.
    let page = &manifest["timings"]["runtime_fit"]["deployments"][0];
    assert_eq!(page["deployment"], "browser-page");
    let first_result = &page["figures"][1];
    assert_eq!(first_result["name"], "first_result_us");
    assert_eq!(first_result["measured_in"], "chromium");
    let expected = browser["load"]["median_us"].as_f64().unwrap()
        + browser["first_inference"]["median_us"].as_f64().unwrap();
    assert!(
        (first_result["value"].as_f64().unwrap() - expected).abs() < 1e-6,
        "{first_result}"
    );
    let page_steady = &page["figures"][2];
    assert_eq!(page_steady["name"], "page_steady_us");
    assert_eq!(page_steady["measured_in"], "chromium");
    assert_eq!(
        page_steady["value"],
        browser["steady"][0]["latency"]["median_us"]
    );
    let written = bundle_manifest(&bundle);
    assert_eq!(
        &written["timings"]["browser"], browser,
        "recorded in the bundle"
    );
}
