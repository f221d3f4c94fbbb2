//! Kernel ABI v1: the exports every kernel provides, and the check that a module has them.

use crate::exit::input_error;
use anyhow::{Context, Result};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType};

pub const ABI_VERSION: u32 = 1;
pub const ABI_VERSION_EXPORT: &str = "wpi_abi_version";
pub const ALLOC_EXPORT: &str = "wpi_alloc";
pub const FREE_EXPORT: &str = "wpi_free";
pub const INFER_EXPORT: &str = "wpi_infer";
pub const INIT_EXPORT: &str = "wpi_init";
pub const MEMORY_EXPORT: &str = "memory";
/// Optional native exports: the device description, a request for the CPU path, the last
/// call's transfer/compute split, a cap on CPU threads and the threads the last call ran on.
pub const DEVICE_INFO_EXPORT: &str = "wpi_device_info";
pub const FORCE_CPU_EXPORT: &str = "wpi_force_cpu";
pub const LAST_CALL_EXPORT: &str = "wpi_last_call_ns";
pub const SET_THREADS_EXPORT: &str = "wpi_set_threads";
pub const LAST_CALL_THREADS_EXPORT: &str = "wpi_last_call_threads";

/// Signature of each ABI function on wasm32 (`usize`, `isize` and pointers are `i32`).
const FUNCTIONS: &[(&str, &[ValType], &[ValType], bool)] = {
    use ValType::I32;
    &[
        (ABI_VERSION_EXPORT, &[], &[I32], true),
        (ALLOC_EXPORT, &[I32], &[I32], true),
        (FREE_EXPORT, &[I32, I32], &[], true),
        (INFER_EXPORT, &[I32, I32, I32, I32], &[I32], true),
        (INIT_EXPORT, &[], &[I32], false),
    ]
};

/// Every export name the ABI defines; the shaker keeps exactly these.
pub fn export_names() -> Vec<&'static str> {
    FUNCTIONS
        .iter()
        .map(|(name, ..)| *name)
        .chain([MEMORY_EXPORT])
        .collect()
}

/// What the ABI check found in a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmAbi {
    pub has_init: bool,
    /// Every export name, in module order.
    pub exports: Vec<String>,
    /// Imports the module needs from its host (`module.name`).
    pub imports: Vec<String>,
}

/// Checks that `wasm` exports ABI v1 with the right signatures; a missing or mistyped export is
/// an input error naming `crate_name`.
pub fn check_wasm(wasm: &[u8], crate_name: &str) -> Result<WasmAbi> {
    let mut types: Vec<(Vec<ValType>, Vec<ValType>)> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    let mut imports = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.context("parsing the built module")? {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    let ty = ty.context("reading the type section")?;
                    types.push((ty.params().to_vec(), ty.results().to_vec()));
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.context("reading the import section")?;
                    if let TypeRef::Func(ty) = import.ty {
                        func_types.push(ty);
                    }
                    imports.push(format!("{}.{}", import.module, import.name));
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    func_types.push(ty.context("reading the function section")?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.context("reading the export section")?;
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            _ => {}
        }
    }
    let find = |name: &str| exports.iter().find(|(n, ..)| n == name);
    let mut problems = Vec::new();
    let mut has_init = false;
    for (name, params, results, required) in FUNCTIONS {
        match find(name) {
            None if *required => problems.push(format!("missing export `{name}`")),
            None => {}
            Some((_, ExternalKind::Func, index)) => {
                let signature = func_types
                    .get(*index as usize)
                    .and_then(|t| types.get(*t as usize));
                match signature {
                    Some((p, r)) if p == params && r == results => has_init |= *name == INIT_EXPORT,
                    Some((p, r)) => problems.push(format!(
                        "`{name}` has type {p:?} -> {r:?}, ABI v1 needs {params:?} -> {results:?}"
                    )),
                    None => problems.push(format!("`{name}` has no readable type")),
                }
            }
            Some(_) => problems.push(format!("`{name}` is exported but is not a function")),
        }
    }
    match find(MEMORY_EXPORT) {
        Some((_, ExternalKind::Memory, _)) => {}
        _ => problems.push(format!(
            "missing export `{MEMORY_EXPORT}` (a linear memory)"
        )),
    }
    if !problems.is_empty() {
        return Err(input_error(format!(
            "crate `{crate_name}` does not implement kernel ABI v{ABI_VERSION}: {}\n\
             (use `wasmpack_infer_kernel::export_kernel!`, or export the functions with \
             #[unsafe(no_mangle)] pub extern \"C\")",
            problems.join("; ")
        )));
    }
    Ok(WasmAbi {
        has_init,
        imports,
        exports: exports.into_iter().map(|(name, ..)| name).collect(),
    })
}

/// What `wpi_infer`'s negative return codes mean (the kernel helper's `ERR_*`).
pub fn describe_error_code(code: i64) -> &'static str {
    match code {
        -1 => "input length is not a whole number of samples",
        -2 => "output buffer too small",
        -3 => "kernel initialisation failed",
        -4 => "null buffer",
        _ => "kernel-defined error",
    }
}

/// Checks `wpi_init`'s return value.
pub fn check_init(code: i32) -> Result<()> {
    if code != 0 {
        anyhow::bail!("wpi_init returned {code} (0 means ok)");
    }
    Ok(())
}

/// Checks `wpi_infer`'s return value against the bytes the batch must produce.
pub fn check_written(returned: i64, expected: usize, capacity: usize) -> Result<()> {
    if returned < 0 {
        anyhow::bail!(
            "wpi_infer returned error {returned} ({})",
            describe_error_code(returned)
        );
    }
    let written = returned as usize;
    if written > capacity {
        anyhow::bail!(
            "wpi_infer returned {written} bytes written, more than its {capacity}-byte output buffer"
        );
    }
    if written != expected {
        anyhow::bail!(
            "wpi_infer wrote {written} bytes, but the declared output shape needs {expected}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETE: &str = r#"(module
        (memory (export "memory") 1)
        (func (export "wpi_abi_version") (result i32) i32.const 1)
        (func (export "wpi_alloc") (param i32) (result i32) i32.const 16)
        (func (export "wpi_free") (param i32 i32))
        (func (export "wpi_infer") (param i32 i32 i32 i32) (result i32) i32.const 0))"#;

    #[test]
    fn complete_abi_passes_without_init() {
        let abi = check_wasm(&wat::parse_str(COMPLETE).unwrap(), "k").unwrap();
        assert!(!abi.has_init);
        assert!(abi.imports.is_empty());
    }

    #[test]
    fn missing_and_mistyped_exports_are_all_listed() {
        let wat = COMPLETE
            .replace(r#"(func (export "wpi_free") (param i32 i32))"#, "")
            .replace(
                r#"(param i32 i32 i32 i32) (result i32)"#,
                r#"(param i32) (result i32)"#,
            );
        let err = check_wasm(&wat::parse_str(wat).unwrap(), "bad-kernel").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bad-kernel"), "{text}");
        assert!(text.contains("missing export `wpi_free`"), "{text}");
        assert!(text.contains("`wpi_infer` has type"), "{text}");
        assert!(err.is::<crate::exit::InputError>());
    }
}
