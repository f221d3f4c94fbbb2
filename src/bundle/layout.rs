//! File names inside a bundle, for the pipelines that write them and for `verify`, `inspect`,
//! `serve` and `measure`, which read them back.

/// Both kinds: the loader a page or Node imports, its TypeScript types, and the demo page.
pub const LOADER_FILE: &str = "loader.mjs";
pub const LOADER_TYPES_FILE: &str = "loader.d.ts";
pub const DEMO_FILE: &str = "index.html";

/// Kernel bundles: the loader a Python host imports to run the kernel under wasmtime.
pub const PYTHON_LOADER_FILE: &str = "loader.py";

/// Kernel bundles: the parity and timing samples, as raw little-endian tensors.
pub const KERNEL_SAMPLES_FILE: &str = "samples.bin";

/// Python bundles: the directory the runtime files ship in, the app (and its pure-Python
/// dependencies) inside it, the samples, and the memory snapshot.
pub const PYTHON_RUNTIME_DIR: &str = "pyodide";
pub const PYTHON_APP_ARCHIVE: &str = "app.zip";
pub const PYTHON_SAMPLES_FILE: &str = "samples.json";
pub const PYTHON_SNAPSHOT_FILE: &str = "snapshot.bin";

/// `name` inside a Python bundle's runtime directory, as a bundle-relative path.
pub fn python_runtime_path(name: &str) -> String {
    format!("{PYTHON_RUNTIME_DIR}/{name}")
}
