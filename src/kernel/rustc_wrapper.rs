//! The one per-crate exception to the profile's rustflags, applied by this binary acting as
//! cargo's `RUSTC_WRAPPER`.
//!
//! The profile picks getrandom's `unsupported` backend with `--cfg getrandom_backend=…`, which
//! rustflags apply to every crate. getrandom 0.4 does not build when that cfg meets its own
//! `wasm_js` feature (rust-random/getrandom#840: its error table names a constant only the
//! `wasm_js` backend defines), and crates turn the feature on for every wasm32 build they are
//! part of (zip 9, under candle 0.11, does). Cargo has no stable per-package rustflags, so for
//! those getrandom packages alone the wrapper drops the cfg: they build with the backend their
//! dependants asked for. That backend imports from JavaScript; the build still fails if any
//! such import is reachable from the ABI exports after shaking, so nothing ships that needs it.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::process::Command;

/// Set (to a comma-separated list of getrandom versions) on the cargo run that needs the
/// wrapper; its presence is how this binary knows cargo started it as the wrapper.
const DROP_BACKEND_FOR_VERSIONS: &str = "WPI_GETRANDOM_OWN_BACKEND_VERSIONS";
/// A `RUSTC_WRAPPER` the user had set (sccache, say): the wrapper runs rustc through it.
const INNER_WRAPPER: &str = "WPI_INNER_RUSTC_WRAPPER";
const BACKEND_CFG: &str = "getrandom_backend";

/// The environment that makes cargo build through this binary, dropping the backend cfg for
/// the getrandom `versions` given.
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
        (DROP_BACKEND_FOR_VERSIONS, listed.into()),
    ];
    if let Some(inner) = std::env::var_os("RUSTC_WRAPPER").filter(|w| !w.is_empty()) {
        env.push((INNER_WRAPPER, inner));
    }
    Ok(env)
}

/// When cargo started this binary as its rustc wrapper, runs rustc and returns its exit code;
/// `None` otherwise. Every binary that runs the kernel pipeline calls it first thing in `main`.
pub fn run_if_wrapping() -> Option<u8> {
    let versions = std::env::var(DROP_BACKEND_FOR_VERSIONS).ok()?;
    let mut args = std::env::args_os().skip(1);
    let rustc = args.next()?;
    let args: Vec<OsString> = args.collect();
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let args = if package == "getrandom" && versions.split(',').any(|v| v == version) {
        without_backend_cfg(args)
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

/// `args` without `--cfg getrandom_backend=…` (as two arguments or as `--cfg=…`).
fn without_backend_cfg(args: Vec<OsString>) -> Vec<OsString> {
    let is_backend = |value: &OsString| {
        value
            .to_str()
            .is_some_and(|v| v.split('=').next() == Some(BACKEND_CFG))
    };
    let mut kept = Vec::with_capacity(args.len());
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        if arg == "--cfg" && args.peek().is_some_and(is_backend) {
            args.next();
            continue;
        }
        let joined = arg.to_str().and_then(|a| a.strip_prefix("--cfg="));
        if joined.is_some_and(|v| v.split('=').next() == Some(BACKEND_CFG)) {
            continue;
        }
        kept.push(arg);
    }
    kept
}

/// getrandom packages at 0.4 or later whose `wasm_js` feature is on in `metadata`'s resolve
/// (cargo metadata with `--filter-platform` for the wasm target).
pub fn getrandom_with_own_wasm_backend(
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
    fn only_the_backend_cfg_goes() {
        let args = os(&[
            "--crate-name",
            "getrandom",
            "--cfg",
            "feature=\"wasm_js\"",
            "--cfg",
            "getrandom_backend=\"unsupported\"",
            "-C",
            "target-feature=+simd128",
            "--cfg=getrandom_backend=\"custom\"",
            "--cfg",
            "getrandom_backends_other",
        ]);
        assert_eq!(
            without_backend_cfg(args),
            os(&[
                "--crate-name",
                "getrandom",
                "--cfg",
                "feature=\"wasm_js\"",
                "-C",
                "target-feature=+simd128",
                "--cfg",
                "getrandom_backends_other",
            ])
        );
    }
}
