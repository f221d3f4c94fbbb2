//! The loaders shipped in every WASM bundle, filled in with the variants' file names, hashes and
//! feature probes, the tensor specs and imports, so they need no manifest read: `loader.mjs` for
//! browsers and Node, `loader.py` for a Python host running the kernel under wasmtime.

use crate::bundle::layout::{LOADER_FILE, LOADER_TYPES_FILE, PYTHON_LOADER_FILE};
use crate::bundle::pack::BundleFile;
use crate::manifest::variant::SimdLevel;
use crate::manifest::{TensorSpec, WasmFeature};
use crate::measure::host::WASMTIME_PY_VERSION;
use base64::Engine as _;
use serde::Serialize;

const LOADER: &str = include_str!("../../templates/loader.mjs");
const LOADER_TYPES: &str = include_str!("../../templates/loader.d.ts");
const CONFIG_SLOT: &str = "/*WPI_CONFIG*/ {} /*END_WPI_CONFIG*/";
const PYTHON_LOADER: &str = include_str!("../../templates/loader.py");
const PYTHON_CONFIG_SLOT: &str = r#"json.loads(r"""{}""")"#;

/// What the loader needs to know, as `LoaderManifest` in loader.d.ts declares it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoaderConfig<'a> {
    pub abi_version: u32,
    pub kernel: KernelName<'a>,
    /// The primary variant: what every engine of the profile's floor runs.
    pub wasm: &'a WasmFile<'a>,
    /// Every variant, most capable first: the loader takes the first the engine validates.
    pub variants: Vec<&'a WasmFile<'a>>,
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
    pub level: SimdLevel,
    pub file: &'a str,
    pub sri: String,
    /// What `loader.py` checks (the manifest's hash of the file).
    pub sha256: String,
    pub bytes: u64,
    pub features: &'a [WasmFeature],
    /// A tiny module using this level's instructions, base64: `WebAssembly.validate` on it says
    /// whether the engine runs the variant. `None` for the baseline.
    pub probe: Option<String>,
}

impl<'a> WasmFile<'a> {
    pub fn new(level: SimdLevel, file: &'a str, bytes: &[u8], features: &'a [WasmFeature]) -> Self {
        Self {
            level,
            file,
            sri: crate::fsx::sri_sha384(bytes),
            sha256: crate::fsx::sha256_hex(bytes),
            bytes: bytes.len() as u64,
            features,
            probe: probe(level)
                .map(|module| base64::engine::general_purpose::STANDARD.encode(module)),
        }
    }
}

/// `variants` most capable first.
pub fn best_first<'a>(variants: &'a [WasmFile<'a>]) -> Vec<&'a WasmFile<'a>> {
    let mut sorted: Vec<&WasmFile> = variants.iter().collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.level));
    sorted
}

/// A module of one function returning a v128 its level's instructions compute: valid exactly on
/// engines with those instructions (the approach of wasm-feature-detect).
fn probe(level: SimdLevel) -> Option<Vec<u8>> {
    use wasm_encoder::{
        CodeSection, Function, FunctionSection, Instruction, Module, TypeSection, ValType,
    };
    let body: &[Instruction] = match level {
        SimdLevel::Baseline => return None,
        SimdLevel::Simd128 => &[Instruction::V128Const(0), Instruction::I32x4Add],
        SimdLevel::RelaxedSimd => &[Instruction::V128Const(0), Instruction::I8x16RelaxedSwizzle],
    };
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::V128]);
    let mut functions = FunctionSection::new();
    functions.function(0);
    let mut function = Function::new([]);
    function.instruction(&Instruction::V128Const(0));
    for instruction in body {
        function.instruction(instruction);
    }
    function.instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&function);
    let mut module = Module::new();
    module.section(&types).section(&functions).section(&code);
    Some(module.finish())
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

/// `loader.py` with `config` and the wasmtime-py version filled in.
pub fn python_loader_file(config: &LoaderConfig) -> BundleFile {
    #[derive(Serialize)]
    struct PythonConfig<'a> {
        #[serde(flatten)]
        loader: &'a LoaderConfig<'a>,
        wasmtime: &'a str,
    }
    let json = serde_json::to_string(&PythonConfig {
        loader: config,
        wasmtime: WASMTIME_PY_VERSION,
    })
    .expect("loader config serializes");
    debug_assert!(
        PYTHON_LOADER.contains(PYTHON_CONFIG_SLOT) && !json.contains(r#"""""#),
        "templates/loader.py lost its config slot, or the config would end its string"
    );
    BundleFile::new(
        PYTHON_LOADER_FILE,
        PYTHON_LOADER
            .replacen(
                PYTHON_CONFIG_SLOT,
                &format!(r#"json.loads(r"""{json}""")"#),
                1,
            )
            .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Dtype;
    use crate::profile::wasmparser_features;

    #[test]
    fn config_replaces_the_slot_once() {
        let spec = TensorSpec {
            dtype: Dtype::F32,
            shape: vec![4],
        };
        let wasm = WasmFile::new(SimdLevel::Simd128, "k.wasm", b"\0asm", &[WasmFeature::Simd]);
        let config = LoaderConfig {
            abi_version: 1,
            kernel: KernelName {
                name: "k",
                version: "0.1.0",
            },
            wasm: &wasm,
            variants: vec![&wasm],
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
        assert!(
            loader.contains(r#""level":"simd128","file":"k.wasm""#),
            "{loader}"
        );
    }

    /// Each probe validates on an engine with exactly its level's features and not on one with
    /// the level below: what the loader's choice rests on.
    #[test]
    fn each_probe_needs_exactly_its_level() {
        let valid = |module: &[u8], level: SimdLevel| {
            wasmparser::Validator::new_with_features(wasmparser_features(level.runtime_features()))
                .validate_all(module)
                .is_ok()
        };
        assert!(probe(SimdLevel::Baseline).is_none());
        let simd = probe(SimdLevel::Simd128).unwrap();
        assert!(valid(&simd, SimdLevel::Simd128));
        assert!(!valid(&simd, SimdLevel::Baseline));
        let relaxed = probe(SimdLevel::RelaxedSimd).unwrap();
        assert!(valid(&relaxed, SimdLevel::RelaxedSimd));
        assert!(!valid(&relaxed, SimdLevel::Simd128));
    }

    #[test]
    fn variants_are_offered_most_capable_first() {
        let files = [
            WasmFile::new(SimdLevel::Baseline, "k.baseline.wasm", b"a", &[]),
            WasmFile::new(SimdLevel::RelaxedSimd, "k.relaxed-simd.wasm", b"b", &[]),
            WasmFile::new(SimdLevel::Simd128, "k.wasm", b"c", &[]),
        ];
        let order: Vec<SimdLevel> = best_first(&files).iter().map(|f| f.level).collect();
        assert_eq!(
            order,
            [
                SimdLevel::RelaxedSimd,
                SimdLevel::Simd128,
                SimdLevel::Baseline
            ]
        );
    }
}
