//! The JavaScript loader shipped in every WASM bundle (`templates/loader.mjs`), filled in with the
//! module's file name, SRI hash, tensor specs and imports so it needs no manifest fetch.

use crate::bundle::layout::{LOADER_FILE, LOADER_TYPES_FILE};
use crate::bundle::pack::BundleFile;
use crate::manifest::TensorSpec;
use serde::Serialize;

const LOADER: &str = include_str!("../../templates/loader.mjs");
const LOADER_TYPES: &str = include_str!("../../templates/loader.d.ts");
const CONFIG_SLOT: &str = "/*WPI_CONFIG*/ {} /*END_WPI_CONFIG*/";

/// What the loader needs to know, as `LoaderManifest` in loader.d.ts declares it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoaderConfig<'a> {
    pub abi_version: u32,
    pub kernel: KernelName<'a>,
    pub wasm: WasmFile<'a>,
    pub input: &'a TensorSpec,
    pub output: &'a TensorSpec,
    pub imports: &'a [String],
}

#[derive(Serialize)]
pub struct KernelName<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

#[derive(Serialize)]
pub struct WasmFile<'a> {
    pub file: &'a str,
    pub sri: &'a str,
    pub bytes: u64,
}

/// `loader.mjs` with `config` filled in, and `loader.d.ts`.
pub fn loader_files(config: &LoaderConfig) -> Vec<BundleFile> {
    let json = serde_json::to_string(config).expect("loader config serializes");
    debug_assert!(
        LOADER.contains(CONFIG_SLOT),
        "templates/loader.mjs lost its config slot"
    );
    vec![
        BundleFile::new(
            LOADER_FILE,
            LOADER.replacen(CONFIG_SLOT, &json, 1).into_bytes(),
        ),
        BundleFile::new(LOADER_TYPES_FILE, LOADER_TYPES.as_bytes().to_vec()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Dtype;

    #[test]
    fn config_replaces_the_slot_once() {
        let spec = TensorSpec {
            dtype: Dtype::F32,
            shape: vec![4],
        };
        let config = LoaderConfig {
            abi_version: 1,
            kernel: KernelName {
                name: "k",
                version: "0.1.0",
            },
            wasm: WasmFile {
                file: "k.wasm",
                sri: "sha384-x",
                bytes: 10,
            },
            input: &spec,
            output: &spec,
            imports: &[],
        };
        let files = loader_files(&config);
        let loader = String::from_utf8(files[0].bytes.clone()).unwrap();
        assert!(!loader.contains("WPI_CONFIG"));
        assert!(
            loader.contains(r#"const CONFIG = {"abiVersion":1,"kernel":{"name":"k""#),
            "{loader}"
        );
    }
}
