//! Versions of the tools linked into this binary, recorded in every manifest.
//! `build.rs` reads them from Cargo.lock so they can never drift from what was compiled in.

/// The wasmtime crate version used for measurement.
pub const WASMTIME_VERSION: &str = env!("WPI_WASMTIME_VERSION");
/// The wasm-opt crate version; its minor number is the binaryen release it bundles.
pub const WASM_OPT_CRATE_VERSION: &str = env!("WPI_WASM_OPT_VERSION");
/// The walrus crate version used by the shake stage.
pub const WALRUS_VERSION: &str = env!("WPI_WALRUS_VERSION");

/// The binaryen release bundled by the wasm-opt crate: crate `0.116.1` bundles binaryen `version_116`.
pub fn binaryen_version() -> String {
    let minor = WASM_OPT_CRATE_VERSION
        .split('.')
        .nth(1)
        .unwrap_or("unknown");
    format!("version_{minor}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn binaryen_version_follows_the_crate_minor() {
        assert!(super::binaryen_version().starts_with("version_1"));
        assert_ne!(super::WASMTIME_VERSION, "");
    }
}
