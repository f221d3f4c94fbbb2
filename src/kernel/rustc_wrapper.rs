//! The one per-crate exception to what cargo passes rustc, applied by this binary acting as
//! cargo's `RUSTC_WRAPPER`.
//!
//! The profile picks getrandom's `custom` backend with `--cfg getrandom_backend=…`, which
//! rustflags apply to every crate. getrandom 0.4 does not build when that cfg meets its own
//! `wasm_js` feature (rust-random/getrandom#840: its error table names a constant only the
//! `wasm_js` backend defines), and crates turn the feature on for every wasm32 build they are
//! part of (zip 9 under candle 0.11, ahash under burn 0.22). Cargo has no stable per-package
//! settings, so for those getrandom packages alone the wrapper leaves out `--cfg
//! feature="wasm_js"`: they build as if no one had asked for it, with the profile's backend, and
//! link no JavaScript glue. Nothing outside getrandom reads that feature.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::process::Command;

/// Set (to a comma-separated list of getrandom versions) on the cargo run that needs the
/// wrapper; its presence is how this binary knows cargo started it as the wrapper.
const WITHOUT_WASM_JS_FOR_VERSIONS: &str = "WPI_GETRANDOM_WITHOUT_WASM_JS";
/// A `RUSTC_WRAPPER` the user had set (sccache, say): the wrapper runs rustc through it.
const INNER_WRAPPER: &str = "WPI_INNER_RUSTC_WRAPPER";
/// The feature left out, as cargo passes it to rustc.
const WASM_JS_FEATURE: &str = "feature=\"wasm_js\"";

/// The environment that makes cargo build through this binary, leaving the `wasm_js` feature out
/// of the getrandom `versions` given.
pub fn cargo_env(
    versions: &[cargo_metadata::semver::Version],
) -> Result<Vec<(&'static str, OsString)>> {
    let me = std::env::current_exe().context("locating this binary to act as rustc's wrapper")?;
    let listed = versions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut env = vec![
        ("RUSTC_WRAPPER", me.into_os_string()),
        (WITHOUT_WASM_JS_FOR_VERSIONS, listed.into()),
    ];
    if let Some(inner) = std::env::var_os("RUSTC_WRAPPER").filter(|w| !w.is_empty()) {
        env.push((INNER_WRAPPER, inner));
    }
    Ok(env)
}

/// When cargo started this binary as its rustc wrapper, runs rustc and returns its exit code;
/// `None` otherwise. Every binary that runs the kernel pipeline calls it first thing in `main`.
pub fn run_if_wrapping() -> Option<u8> {
    let versions = std::env::var(WITHOUT_WASM_JS_FOR_VERSIONS).ok()?;
    let mut args = std::env::args_os().skip(1);
    let rustc = args.next()?;
    let args: Vec<OsString> = args.collect();
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let args = if package == "getrandom" && versions.split(',').any(|v| v == version) {
        without_wasm_js_feature(args)
    } else {
        args
    };
    let mut command = match std::env::var_os(INNER_WRAPPER) {
        Some(inner) => {
            let mut command = Command::new(inner);
            command.arg(rustc);
            command
        }
        None => Command::new(rustc),
    };
    Some(match command.args(args).status() {
        Ok(status) => status.code().unwrap_or(1).clamp(0, 255) as u8,
        Err(error) => {
            eprintln!("error: cargo-wasmpack-infer could not run rustc as its wrapper: {error}");
            crate::exit::BUILD_FAILURE
        }
    })
}

/// `args` without `--cfg feature="wasm_js"` (as two arguments or as `--cfg=…`).
fn without_wasm_js_feature(args: Vec<OsString>) -> Vec<OsString> {
    let mut kept = Vec::with_capacity(args.len());
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        if arg == "--cfg" && args.peek().is_some_and(|value| value == WASM_JS_FEATURE) {
            args.next();
            continue;
        }
        if arg.to_str().and_then(|a| a.strip_prefix("--cfg=")) == Some(WASM_JS_FEATURE) {
            continue;
        }
        kept.push(arg);
    }
    kept
}

/// getrandom packages at 0.4 or later whose `wasm_js` feature is on in `metadata`'s resolve
/// (cargo metadata with `--filter-platform` for the wasm target).
pub fn getrandom_with_wasm_js(
    metadata: &cargo_metadata::Metadata,
) -> Vec<cargo_metadata::semver::Version> {
    let Some(resolve) = &metadata.resolve else {
        return Vec::new();
    };
    let mut versions: Vec<cargo_metadata::semver::Version> = resolve
        .nodes
        .iter()
        .filter(|node| node.features.iter().any(|f| f.as_str() == "wasm_js"))
        .filter_map(|node| metadata.packages.iter().find(|p| p.id == node.id))
        .filter(|p| {
            p.name.as_str() == "getrandom"
                && p.version >= cargo_metadata::semver::Version::new(0, 4, 0)
        })
        .map(|p| p.version.clone())
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn only_the_wasm_js_feature_goes() {
        let args = os(&[
            "--crate-name",
            "getrandom",
            "--cfg",
            "feature=\"wasm_js\"",
            "--cfg",
            "feature=\"std\"",
            "--cfg",
            "getrandom_backend=\"custom\"",
            "--cfg=feature=\"wasm_js\"",
            "-C",
            "target-feature=+simd128",
        ]);
        assert_eq!(
            without_wasm_js_feature(args),
            os(&[
                "--crate-name",
                "getrandom",
                "--cfg",
                "feature=\"std\"",
                "--cfg",
                "getrandom_backend=\"custom\"",
                "-C",
                "target-feature=+simd128",
            ])
        );
    }
}
