//! Stage 2: tree-shake the module with walrus. Only the ABI exports stay roots; everything they
//! cannot reach, and every custom section (names, producers, debug info), goes.
//!
//! lld already drops what no export reaches, so most of what shaking removes is reached only
//! through panics: with `panic = "abort"` a panic still formats its message (pulling in
//! `core::fmt` and the table of `Display` impls it calls indirectly) before it traps. In a module
//! without imports that message can go nowhere, so the panic entry points can trap at once with
//! the same observable result, and the formatting machinery becomes unreachable.
//!
//! What the exports still reach of wasm-bindgen's JavaScript glue (a crate that spawns a future
//! or drops a JS object on some path, like burn's environment crate) becomes functions that trap,
//! so the shipped module imports nothing and every host runs it as it is; the differential run
//! then shows that no sample takes such a path.

use anyhow::{Context, Result};
use walrus::{FunctionKind, ModuleConfig};

/// Where every Rust panic goes before it aborts, by demangled name (without hash). Old and new
/// std names are both listed; any that a module lacks is skipped.
const PANIC_ENTRY_POINTS: &[&str] = &[
    "core::panicking::panic_fmt",
    "core::panicking::panic_nounwind_fmt",
    "std::panicking::begin_panic_handler",
    "std::panicking::panic_handler",
    "std::panicking::rust_panic_with_hook",
    "std::panicking::panic_with_hook",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
];

#[derive(Debug, Clone, Copy)]
pub struct ShakeOptions {
    /// Keep the `name` section (for profilers and `inspect`).
    pub keep_names: bool,
    /// Make panic entry points trap without formatting (only applied to modules without imports).
    pub strip_panic_formatting: bool,
}

#[derive(Debug, Clone)]
pub struct Shaken {
    pub wasm: Vec<u8>,
    pub functions_before: usize,
    pub functions_after: usize,
    /// Exports that were not part of the ABI (e.g. `__data_end`, `__heap_base`).
    pub exports_removed: Vec<String>,
    /// Custom sections dropped, with their sizes in bytes.
    pub custom_sections_removed: Vec<(String, usize)>,
    /// Panic entry points whose bodies became `unreachable`.
    pub panic_entry_points_stubbed: Vec<String>,
    /// wasm-bindgen glue imports (`module.name`) the exports reach, each now a function that
    /// traps.
    pub glue_stubbed: Vec<String>,
}

/// The import modules of wasm-bindgen's generated glue.
pub const WASM_BINDGEN_MODULES: [&str; 2] =
    ["__wbindgen_placeholder__", "__wbindgen_externref_xform__"];

/// Shakes `wasm`, keeping exports named in `keep_exports`.
pub fn shake(wasm: &[u8], keep_exports: &[&str], options: ShakeOptions) -> Result<Shaken> {
    let keep_names = options.keep_names;
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
    // Imports only the dropped exports reached (wasm-bindgen's describe functions, say) go
    // first, so that they do not keep a module that needs no host from losing its panic path.
    walrus::passes::gc::run(&mut module);
    let glue_stubbed = stub_glue_imports(&mut module)?;
    let has_imports = module.imports.iter().next().is_some();
    let panic_entry_points_stubbed = if options.strip_panic_formatting && !has_imports {
        stub_panic_entry_points(&mut module)
    } else {
        Vec::new()
    };
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
        panic_entry_points_stubbed,
        glue_stubbed,
    })
}

/// Replaces each function imported from wasm-bindgen's glue with one that traps; returns their
/// `module.name`s, sorted. Glue that is not a function (a table, a global) stays an import, which
/// the build then refuses.
fn stub_glue_imports(module: &mut walrus::Module) -> Result<Vec<String>> {
    let glue: Vec<(walrus::FunctionId, String)> = module
        .imports
        .iter()
        .filter(|import| WASM_BINDGEN_MODULES.contains(&import.module.as_str()))
        .filter_map(|import| match import.kind {
            walrus::ImportKind::Function(id) => {
                Some((id, format!("{}.{}", import.module, import.name)))
            }
            _ => None,
        })
        .collect();
    for (id, name) in &glue {
        module
            .replace_imported_func(*id, |(body, _)| {
                body.unreachable();
            })
            .with_context(|| format!("replacing `{name}` with a trap"))?;
    }
    let mut names: Vec<String> = glue.into_iter().map(|(_, name)| name).collect();
    names.sort();
    Ok(names)
}

/// Replaces the body of each panic entry point with `unreachable`; returns their names.
fn stub_panic_entry_points(module: &mut walrus::Module) -> Vec<String> {
    let mut stubbed = Vec::new();
    for func in module.funcs.iter_mut() {
        let Some(name) = &func.name else { continue };
        let demangled = format!("{:#}", rustc_demangle::demangle(name));
        if !PANIC_ENTRY_POINTS.contains(&demangled.as_str()) {
            continue;
        }
        if let FunctionKind::Local(local) = &mut func.kind {
            let mut body = local.builder_mut().func_body();
            body.instrs_mut().clear();
            body.unreachable();
            stubbed.push(demangled);
        }
    }
    stubbed.sort();
    stubbed
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

    const NO_NAMES: ShakeOptions = ShakeOptions {
        keep_names: false,
        strip_panic_formatting: true,
    };

    /// A panic path as rustc emits it: a checked access whose failure formats through a table.
    const PANICKING: &str = r#"(module
        (memory (export "memory") 1)
        (table 2 funcref)
        (elem (i32.const 0) $display $debug)
        (func $display (param i32) (result i32) local.get 0)
        (func $debug (param i32) (result i32) local.get 0 i32.const 1 i32.add)
        (func $_ZN4core9panicking9panic_fmt17h0123456789abcdefE (param i32)
          local.get 0 i32.const 0 call_indirect (param i32) (result i32) drop unreachable)
        (func (export "wpi_abi_version") (param i32) (result i32)
          local.get 0 i32.const 10 i32.ge_u
          if local.get 0 call $_ZN4core9panicking9panic_fmt17h0123456789abcdefE end
          local.get 0))"#;

    #[test]
    fn panic_formatting_becomes_unreachable_and_the_table_goes() {
        let wasm = wat::parse_str(PANICKING).unwrap();
        let shaken = shake(&wasm, &["wpi_abi_version", "memory"], NO_NAMES).unwrap();
        assert_eq!(
            shaken.panic_entry_points_stubbed,
            vec!["core::panicking::panic_fmt".to_string()]
        );
        assert_eq!(shaken.functions_before, 4);
        assert_eq!(
            shaken.functions_after, 2,
            "the formatting impls reached only through the table are gone"
        );

        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &shaken.wasm).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance
            .get_typed_func::<i32, i32>(&mut store, "wpi_abi_version")
            .unwrap();
        assert_eq!(f.call(&mut store, 3).unwrap(), 3);
        assert!(f.call(&mut store, 11).is_err(), "a panic still traps");

        let kept = ShakeOptions {
            strip_panic_formatting: false,
            ..NO_NAMES
        };
        let shaken = shake(&wasm, &["wpi_abi_version", "memory"], kept).unwrap();
        assert!(shaken.panic_entry_points_stubbed.is_empty());
        assert_eq!(shaken.functions_after, 4);
    }

    #[test]
    fn modules_with_imports_keep_their_panic_path() {
        let with_import = PANICKING
            .replace(
                "(memory (export \"memory\") 1)",
                "(import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32))) (memory (export \"memory\") 1)",
            )
            .replace("drop unreachable)", "drop i32.const 101 call $exit unreachable)");
        let shaken = shake(
            &wat::parse_str(with_import).unwrap(),
            &["wpi_abi_version", "memory"],
            NO_NAMES,
        )
        .unwrap();
        assert!(shaken.panic_entry_points_stubbed.is_empty());
    }

    /// wasm-bindgen's describe functions import from its placeholder module; once their exports
    /// go, nothing needs a host and the panic path may trap at once.
    #[test]
    fn imports_only_dropped_exports_reach_do_not_count() {
        let with_import = PANICKING.replace(
            "(memory (export \"memory\") 1)",
            "(import \"__wbindgen_placeholder__\" \"__wbindgen_describe\" (func $describe (param i32)))
             (func (export \"__wbindgen_describe_x\") i32.const 0 call $describe)
             (memory (export \"memory\") 1)",
        );
        let shaken = shake(
            &wat::parse_str(with_import).unwrap(),
            &["wpi_abi_version", "memory"],
            NO_NAMES,
        )
        .unwrap();
        assert_eq!(
            shaken.panic_entry_points_stubbed,
            vec!["core::panicking::panic_fmt".to_string()]
        );
        let module = walrus::Module::from_buffer(&shaken.wasm).unwrap();
        assert_eq!(module.imports.iter().count(), 0);
    }

    /// Glue the ABI exports reach (here on a path only a negative input takes) becomes a trap:
    /// the module imports nothing, the usual path computes as before, the glue path traps.
    #[test]
    fn reachable_glue_becomes_a_trap_and_the_module_imports_nothing() {
        let with_glue = PANICKING.replace(
            "(memory (export \"memory\") 1)",
            "(import \"__wbindgen_placeholder__\" \"__wbindgen_object_drop_ref\" (func $drop (param i32)))
             (memory (export \"memory\") 1)
             (func (export \"wpi_infer\") (param i32) (result i32)
               local.get 0 i32.const 0 i32.lt_s if local.get 0 call $drop end
               local.get 0 i32.const 2 i32.mul)",
        );
        let wasm = wat::parse_str(with_glue).unwrap();
        let shaken = shake(&wasm, &["wpi_abi_version", "wpi_infer", "memory"], NO_NAMES).unwrap();
        assert_eq!(
            shaken.glue_stubbed,
            vec!["__wbindgen_placeholder__.__wbindgen_object_drop_ref".to_string()]
        );
        assert_eq!(
            shaken.panic_entry_points_stubbed,
            vec!["core::panicking::panic_fmt".to_string()],
            "with no import left, the panic path traps at once too"
        );

        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, &shaken.wasm).unwrap();
        assert_eq!(module.imports().count(), 0);
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let infer = instance
            .get_typed_func::<i32, i32>(&mut store, "wpi_infer")
            .unwrap();
        assert_eq!(infer.call(&mut store, 21).unwrap(), 42);
        assert!(infer.call(&mut store, -1).is_err(), "the glue path traps");
    }

    fn module_with_names() -> Vec<u8> {
        let mut wasm = wat::parse_str(MODULE).unwrap();
        // wat emits a name section for $identifiers; add a producers-like custom section too.
        wasm.extend_from_slice(&[0, 6, 5, b'h', b'e', b'l', b'l', b'o']);
        wasm
    }

    #[test]
    fn drops_unreachable_functions_foreign_exports_and_custom_sections() {
        let wasm = module_with_names();
        let shaken = shake(&wasm, &["wpi_abi_version", "memory"], NO_NAMES).unwrap();
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

    /// Found by the differential test (wasm-smith seed 5299): an active segment whose offset is
    /// out of bounds traps at instantiation even when empty; dropping it would remove the trap.
    #[test]
    fn out_of_bounds_active_segments_still_trap_at_instantiation() {
        for wat in [
            r#"(module (table (export "t") 10 funcref) (elem (i32.const -5) func))"#,
            r#"(module (memory (export "m") 1) (data (i32.const 70000) ""))"#,
        ] {
            let wasm = wat::parse_str(wat).unwrap();
            let shaken = shake(&wasm, &["t", "m"], NO_NAMES).unwrap();
            let engine = wasmtime::Engine::default();
            for (stage, bytes) in [("original", &wasm), ("shaken", &shaken.wasm)] {
                let module = wasmtime::Module::new(&engine, bytes).unwrap();
                let mut store = wasmtime::Store::new(&engine, ());
                assert!(
                    wasmtime::Instance::new(&mut store, &module, &[]).is_err(),
                    "{stage} of {wat} must trap"
                );
            }
        }
    }

    #[test]
    fn keep_names_keeps_the_name_section() {
        let options = ShakeOptions {
            keep_names: true,
            ..NO_NAMES
        };
        let shaken = shake(
            &module_with_names(),
            &["wpi_abi_version", "memory"],
            options,
        )
        .unwrap();
        let names: Vec<String> = custom_sections(&shaken.wasm)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec!["name".to_string()]);
    }

    #[test]
    fn shaken_module_computes_the_same_result() {
        let shaken = shake(
            &module_with_names(),
            &["wpi_abi_version", "memory"],
            NO_NAMES,
        )
        .unwrap();
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
