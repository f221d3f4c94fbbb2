//! Stage 2: tree-shake the module with walrus. Only the ABI exports stay roots; everything they
//! cannot reach, and every custom section (names, producers, debug info), goes.

use anyhow::{Context, Result};
use walrus::ModuleConfig;

#[derive(Debug, Clone)]
pub struct Shaken {
    pub wasm: Vec<u8>,
    pub functions_before: usize,
    pub functions_after: usize,
    /// Exports that were not part of the ABI (e.g. `__data_end`, `__heap_base`).
    pub exports_removed: Vec<String>,
    /// Custom sections dropped, with their sizes in bytes.
    pub custom_sections_removed: Vec<(String, usize)>,
}

/// Shakes `wasm`, keeping exports named in `keep_exports`. With `keep_names` the `name` section
/// survives (for profiling and `inspect`); everything else custom is dropped.
pub fn shake(wasm: &[u8], keep_exports: &[&str], keep_names: bool) -> Result<Shaken> {
    let custom_sections_removed: Vec<(String, usize)> = custom_sections(wasm)?
        .into_iter()
        .filter(|(name, _)| !(keep_names && name == "name"))
        .collect();
    let mut module = ModuleConfig::new()
        .generate_name_section(keep_names)
        .generate_producers_section(false)
        .generate_dwarf(false)
        .parse(wasm)
        .context("walrus could not read the module")?;
    let functions_before = module.funcs.iter().count();

    let removed: Vec<(walrus::ExportId, String)> = module
        .exports
        .iter()
        .filter(|e| !keep_exports.contains(&e.name.as_str()))
        .map(|e| (e.id(), e.name.clone()))
        .collect();
    for (id, _) in &removed {
        module.exports.delete(*id);
    }
    let custom_ids: Vec<_> = module.customs.iter().map(|(id, _)| id).collect();
    for id in custom_ids {
        module.customs.delete(id);
    }
    if !keep_names {
        module.name = None;
        for func in module.funcs.iter_mut() {
            func.name = None;
        }
    }
    walrus::passes::gc::run(&mut module);
    let functions_after = module.funcs.iter().count();
    Ok(Shaken {
        wasm: module.emit_wasm(),
        functions_before,
        functions_after,
        exports_removed: removed.into_iter().map(|(_, name)| name).collect(),
        custom_sections_removed,
    })
}

/// Names and sizes of the custom sections in `wasm`.
pub fn custom_sections(wasm: &[u8]) -> Result<Vec<(String, usize)>> {
    let mut sections = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CustomSection(reader) = payload.context("parsing the module")? {
            sections.push((reader.name().to_string(), reader.data().len()));
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"(module
        (memory (export "memory") 1)
        (global (export "__heap_base") i32 (i32.const 1024))
        (func $used (result i32) i32.const 7)
        (func $dead (result i32) i32.const 9)
        (func $only_exported_extra (export "helper") (result i32) call $dead)
        (func $main (export "wpi_abi_version") (result i32) call $used))"#;

    fn module_with_names() -> Vec<u8> {
        let mut wasm = wat::parse_str(MODULE).unwrap();
        // wat emits a name section for $identifiers; add a producers-like custom section too.
        wasm.extend_from_slice(&[0, 6, 5, b'h', b'e', b'l', b'l', b'o']);
        wasm
    }

    #[test]
    fn drops_unreachable_functions_foreign_exports_and_custom_sections() {
        let wasm = module_with_names();
        let shaken = shake(&wasm, &["wpi_abi_version", "memory"], false).unwrap();
        assert_eq!(shaken.functions_before, 4);
        assert_eq!(
            shaken.functions_after, 2,
            "$dead and the helper are unreachable once unexported"
        );
        assert_eq!(
            shaken.exports_removed,
            vec!["__heap_base".to_string(), "helper".to_string()]
        );
        let removed: Vec<&str> = shaken
            .custom_sections_removed
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(
            removed.contains(&"name") && removed.contains(&"hello"),
            "{removed:?}"
        );
        assert!(custom_sections(&shaken.wasm).unwrap().is_empty());
        assert!(shaken.wasm.len() < wasm.len());
    }

    #[test]
    fn keep_names_keeps_the_name_section() {
        let shaken = shake(&module_with_names(), &["wpi_abi_version", "memory"], true).unwrap();
        let names: Vec<String> = custom_sections(&shaken.wasm)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec!["name".to_string()]);
    }

    #[test]
    fn shaken_module_computes_the_same_result() {
        let shaken = shake(&module_with_names(), &["wpi_abi_version", "memory"], false).unwrap();
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &shaken.wasm).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance
            .get_typed_func::<(), i32>(&mut store, "wpi_abi_version")
            .unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 7);
    }
}
