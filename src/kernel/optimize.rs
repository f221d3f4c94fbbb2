//! Stage 3: wasm-opt (binaryen, linked in-process through the `wasm-opt` crate; no download).

use crate::profile::WasmSettings;
use anyhow::{Context, Result, bail};
use wasm_opt::OptimizationOptions;

#[derive(Debug, Clone)]
pub struct Optimized {
    pub wasm: Vec<u8>,
    pub level: String,
}

/// Runs wasm-opt at the profile's level with exactly the runtime's feature set. `keep_names`
/// carries the `name` section through (wasm-opt drops it otherwise).
pub fn optimize(wasm: &[u8], settings: &WasmSettings, keep_names: bool) -> Result<Optimized> {
    let mut options = match settings.wasm_opt_level.as_str() {
        "O0" => OptimizationOptions::new_opt_level_0(),
        "O1" => OptimizationOptions::new_opt_level_1(),
        "O2" => OptimizationOptions::new_opt_level_2(),
        "O3" => OptimizationOptions::new_opt_level_3(),
        "O4" => OptimizationOptions::new_opt_level_4(),
        "Os" => OptimizationOptions::new_optimize_for_size(),
        "Oz" => OptimizationOptions::new_optimize_for_size_aggressively(),
        other => bail!("unknown wasm-opt level `{other}`"),
    };
    options.mvp_features_only();
    for feature in &settings.runtime_features {
        options.enable_feature(feature.binaryen());
    }
    options.debug_info(keep_names);

    // The crate's API is file based; keep both files in a private temp dir.
    let dir = tempfile::tempdir().context("creating a temporary directory for wasm-opt")?;
    let input = dir.path().join("in.wasm");
    let output = dir.path().join("out.wasm");
    crate::fsx::write(&input, wasm)?;
    options
        .run(&input, &output)
        .with_context(|| format!("wasm-opt -{} failed", settings.wasm_opt_level))?;
    Ok(Optimized {
        wasm: crate::fsx::read(&output)?,
        level: settings.wasm_opt_level.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    #[test]
    fn folds_constants_and_keeps_behaviour() {
        let wasm = wat::parse_str(
            r#"(module (func (export "f") (result i32) i32.const 40 i32.const 2 i32.add))"#,
        )
        .unwrap();
        let settings = Profile::load("browser").unwrap().wasm;
        let optimized = optimize(&wasm, &settings, false).unwrap();
        assert!(optimized.wasm.len() <= wasm.len());
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &optimized.wasm).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 42);
    }

    #[test]
    fn a_feature_outside_the_profile_is_rejected() {
        // A SIMD instruction with a profile whose runtime lacks SIMD.
        let wasm = wat::parse_str(
            r#"(module (func (export "f") (result i32) v128.const i32x4 1 2 3 4 i32x4.extract_lane 0))"#,
        )
        .unwrap();
        let mut settings = Profile::load("browser").unwrap().wasm;
        settings
            .runtime_features
            .retain(|f| *f != crate::manifest::WasmFeature::Simd);
        assert!(optimize(&wasm, &settings, false).is_err());
    }
}
