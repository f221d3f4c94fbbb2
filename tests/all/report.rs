//! `report`: the self-contained HTML page, from fixture manifests (blessed), looked at in Chromium.

use crate::common::*;
use std::path::Path;

fn report(bundle: &Path, baseline: Option<&Path>, out: &Path) -> std::process::Output {
    let mut args = vec![
        "report",
        bundle.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    if let Some(baseline) = baseline {
        args.extend(["--baseline", baseline.to_str().unwrap()]);
    }
    wpi(&args)
}

/// A copy of a current manifest of the fixture whose WASM module grew, as the next release's
/// manifest (the baseline, `handwritten.json`, was written by an older version).
fn grown_kernel_manifest(dir: &Path) -> std::path::PathBuf {
    let mut manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("manifests/handwritten-fit.json")).unwrap(),
    )
    .unwrap();
    let sizes = &mut manifest["wasm"]["sizes"];
    sizes["brotli_bytes"] = (sizes["brotli_bytes"].as_u64().unwrap() * 2).into();
    let path = dir.join("grown.json");
    std::fs::write(&path, manifest.to_string()).unwrap();
    path
}

#[test]
fn kernel_report_is_self_contained_and_blessed() {
    let dir = tempfile::tempdir().unwrap();
    let new = grown_kernel_manifest(dir.path());
    let page = dir.path().join("report.html");
    let output = report(&new, Some(&fixture("manifests/handwritten.json")), &page);
    assert_exit(&output, 0);
    let html = std::fs::read_to_string(&page).unwrap();
    for section in [
        "Runtime fit",
        "Bytes per variant",
        "Steady latency per sample",
        "Cold start to first result",
        "Against the baseline",
    ] {
        assert!(html.contains(section), "no {section}");
    }
    assert!(
        html.contains("wasm.brotli_bytes"),
        "the grown metric is in the diff"
    );
    for external in ["<script", "http://", "https://", "<link", "src="] {
        assert!(
            !html.contains(external),
            "{external} in a self-contained page"
        );
    }
    assert_snapshot("report-handwritten.html", &html);
}

#[test]
fn pyodide_report_and_mismatched_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let output = report(&fixture("manifests/digits-py.json"), None, &page);
    assert_exit(&output, 0);
    let html = std::fs::read_to_string(&page).unwrap();
    for section in [
        "Bytes shipped",
        "stock Pyodide",
        "memory snapshot",
        "native CPython",
        "Budgets",
    ] {
        assert!(html.contains(section), "no {section}");
    }
    assert!(!html.contains("Against the baseline"));

    let output = report(
        &fixture("manifests/digits-py.json"),
        Some(&fixture("manifests/handwritten.json")),
        &dir.path().join("mixed.html"),
    );
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("cannot compare"),
        "{}",
        stderr(&output)
    );
    assert!(
        !dir.path().join("mixed.html").exists(),
        "nothing written on error"
    );
}

/// The page renders in Chromium: a screenshot of it is kept under the test target directory.
#[test]
fn report_renders_in_chromium() {
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let new = grown_kernel_manifest(dir.path());
    assert_exit(
        &report(&new, Some(&fixture("manifests/handwritten.json")), &page),
        0,
    );
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-handwritten.png");
    let _ = std::fs::remove_file(&screenshot);
    let profile = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(
        std::env::var("WPI_CHROMIUM").unwrap_or_else(|_| "chromium".into()),
    )
    .args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1000,1800",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--screenshot={}", screenshot.display()))
    .arg(format!("file://{}", page.display()))
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    // A blank 1000x1800 page compresses to a few KiB; charts and tables do not.
    assert!(
        png.len() > 40_000,
        "screenshot of {} bytes looks blank",
        png.len()
    );
    eprintln!("screenshot: {}", screenshot.display());
}
