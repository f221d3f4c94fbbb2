//! Records the versions of wasmtime, wasm-opt (binaryen) and walrus from Cargo.lock, so the
//! manifest states what measured and transformed a module without a hand-maintained constant;
//! and generates the ONNX model types from the official `onnx.proto` (protox compiles it in pure
//! Rust, so no `protoc` is needed).

use std::path::Path;

fn main() {
    let proto = Path::new("src/onnx/onnx.proto");
    println!("cargo::rerun-if-changed={}", proto.display());
    let descriptors =
        protox::compile([proto], [Path::new("src/onnx")]).expect("compiling onnx.proto");
    prost_build::Config::new()
        .compile_fds(descriptors)
        .expect("generating the ONNX types");
    let lock_path = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.lock");
    println!("cargo::rerun-if-changed={}", lock_path.display());
    let lock: toml::Table = std::fs::read_to_string(&lock_path)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_default();
    let packages = lock
        .get("package")
        .and_then(|p| p.as_array())
        .cloned()
        .unwrap_or_default();
    for (crate_name, env_name) in [
        ("wasmtime", "WPI_WASMTIME_VERSION"),
        ("wasm-opt", "WPI_WASM_OPT_VERSION"),
        ("walrus", "WPI_WALRUS_VERSION"),
    ] {
        let version = packages
            .iter()
            .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(crate_name))
            .and_then(|p| p.get("version")?.as_str())
            .unwrap_or("unknown");
        println!("cargo::rustc-env={env_name}={version}");
    }
}
