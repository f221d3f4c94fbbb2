//! Placeholders defined inside the split primary instead of imported from JavaScript.
//!
//! binaryen's `wasm-split` leaves one imported placeholder per table slot whose function moved to
//! the secondary module: 12 096 imports for Pyodide. An engine links every imported JS function at
//! instantiation (V8 builds an import record and a table entry for each), which made the primary's
//! instantiation the costliest step of a snapshot boot after Python's own start-up. Here each
//! placeholder becomes a small function of the same type in the primary: it calls the one import
//! `placeholder.load` (which instantiates the secondary, whose element segments put the real
//! functions into the table), then calls its own slot through the table with its arguments. That
//! is what the JavaScript placeholder did, so behaviour is unchanged; the function indices of
//! everything after the removed imports shift, and every reference is rewritten with
//! wasm-encoder's re-encoder.

use super::link_plan::table_slots;
use super::split::PLACEHOLDER_NAMESPACE;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use wasm_encoder::reencode::{Error as ReencodeError, Reencode, utils};
use wasmparser::{Parser, Payload, TypeRef};

/// The import each defined placeholder calls before it forwards its call.
pub const LOAD_IMPORT: &str = "load";
/// The table the placeholders' slots index (Emscripten's).
const FUNCTION_TABLE_EXPORT: &str = "__indirect_function_table";

/// A primary whose placeholders are its own functions.
#[derive(Debug)]
pub struct DefinedPlaceholders {
    pub wasm: Vec<u8>,
    /// How many placeholder imports became functions.
    pub placeholders: usize,
}

/// One placeholder: its function type and the table slot it stands in for.
#[derive(Debug, Clone, Copy)]
struct Placeholder {
    type_index: u32,
    params: u32,
    slot: u32,
}

/// Rewrites `primary` (as `wasm-split` wrote it) so that its placeholders are defined functions,
/// after checking that each placeholder sits in the slot its name gives and that `secondary`
/// writes every one of those slots (else a defined placeholder would call itself).
pub fn define_placeholders(primary: &[u8], secondary: &[u8]) -> Result<DefinedPlaceholders> {
    let plan = Plan::read(primary).context("reading the split primary module")?;
    if plan.placeholders.is_empty() {
        return Ok(DefinedPlaceholders {
            wasm: primary.to_vec(),
            placeholders: 0,
        });
    }
    let written = constant_element_slots(secondary, None)
        .context("reading the secondary module's element segments")?;
    for placeholder in plan.placeholders.values() {
        if !written.contains_key(&placeholder.slot) {
            bail!(
                "the secondary module does not fill table slot {}, which a placeholder stands in for",
                placeholder.slot
            );
        }
    }
    let count = plan.placeholders.len();
    let mut rewriter = Rewriter::new(plan);
    let mut module = wasm_encoder::Module::new();
    rewriter
        .parse_core_module(&mut module, Parser::new(0), primary)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("rewriting the split primary module")?;
    let wasm = module.finish();
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&wasm)
        .context("the primary with defined placeholders does not validate")?;
    Ok(DefinedPlaceholders {
        wasm,
        placeholders: count,
    })
}

/// What the rewrite needs to know about the primary before it starts.
struct Plan {
    /// A type `[] -> []` the module already has, else the index one appended gets.
    void_type: u32,
    void_type_exists: bool,
    /// Imported functions before the rewrite.
    imported_functions: u32,
    /// Defined functions before the rewrite.
    defined_functions: u32,
    /// Placeholders by their old function index.
    placeholders: BTreeMap<u32, Placeholder>,
    table: u32,
}

impl Plan {
    fn read(wasm: &[u8]) -> Result<Self> {
        let mut params = Vec::new();
        let mut void_type = None;
        let mut imported_functions = 0;
        let mut defined_functions = 0;
        let mut placeholder_imports = Vec::new();
        let mut table = None;
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for group in reader {
                        for sub in group?.into_types() {
                            let index = params.len() as u32;
                            params.push(match &sub.composite_type.inner {
                                wasmparser::CompositeInnerType::Func(func) => {
                                    if func.params().is_empty() && func.results().is_empty() {
                                        void_type.get_or_insert(index);
                                    }
                                    Some(func.params().len() as u32)
                                }
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import?;
                        let TypeRef::Func(type_index) = import.ty else {
                            continue;
                        };
                        if import.module == PLACEHOLDER_NAMESPACE {
                            let slot: u32 = import.name.parse().with_context(|| {
                                format!(
                                    "placeholder import `{}` is not named by a table slot",
                                    import.name
                                )
                            })?;
                            placeholder_imports.push((imported_functions, type_index, slot));
                        }
                        imported_functions += 1;
                    }
                }
                Payload::FunctionSection(reader) => defined_functions = reader.count(),
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        if export.name == FUNCTION_TABLE_EXPORT
                            && export.kind == wasmparser::ExternalKind::Table
                        {
                            table = Some(export.index);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut placeholders = BTreeMap::new();
        if placeholder_imports.is_empty() {
            return Ok(Self {
                void_type: 0,
                void_type_exists: true,
                imported_functions,
                defined_functions,
                placeholders,
                table: 0,
            });
        }
        if defined_functions == 0 {
            bail!("the module has placeholders but defines no functions to add them to");
        }
        let table = table.with_context(|| {
            format!("the module has placeholders but exports no `{FUNCTION_TABLE_EXPORT}`")
        })?;
        for (function, type_index, slot) in placeholder_imports {
            let params = params
                .get(type_index as usize)
                .copied()
                .flatten()
                .with_context(|| format!("placeholder `{slot}` has no function type"))?;
            placeholders.insert(
                function,
                Placeholder {
                    type_index,
                    params,
                    slot,
                },
            );
        }
        // A placeholder forwards to its slot: it must be what that slot holds.
        let slots = constant_element_slots(wasm, Some(table))?;
        for (function, placeholder) in &placeholders {
            if slots.get(&placeholder.slot) != Some(function) {
                bail!(
                    "placeholder `{}` is not in table slot {0} of `{FUNCTION_TABLE_EXPORT}`",
                    placeholder.slot
                );
            }
        }
        let void_type_exists = void_type.is_some();
        Ok(Self {
            void_type: void_type.unwrap_or(params.len() as u32),
            void_type_exists,
            imported_functions,
            defined_functions,
            placeholders,
            table,
        })
    }
}

/// Which function each slot of table `table` (of every table when `None`) holds once `wasm`'s
/// active element segments have run.
fn constant_element_slots(wasm: &[u8], table: Option<u32>) -> Result<BTreeMap<u32, u32>> {
    let mut segments = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ElementSection(reader) = payload? {
            for segment in reader {
                segments.push(segment?);
            }
        }
    }
    table_slots(segments, table)
}

/// The re-encoder: drops the placeholder imports, adds `placeholder.load`, appends one function
/// per placeholder and renumbers every function reference.
struct Rewriter {
    plan: Plan,
    /// New index of each old imported function (placeholders map to their defined function).
    imported: Vec<u32>,
    /// New index of the first function defined before the rewrite.
    first_defined: u32,
    load_function: u32,
}

impl Rewriter {
    fn new(plan: Plan) -> Self {
        let kept = plan.imported_functions - plan.placeholders.len() as u32;
        let load_function = kept;
        let first_defined = kept + 1;
        let first_placeholder = first_defined + plan.defined_functions;
        let mut imported = Vec::with_capacity(plan.imported_functions as usize);
        let (mut next_kept, mut next_placeholder) = (0, first_placeholder);
        for old in 0..plan.imported_functions {
            if plan.placeholders.contains_key(&old) {
                imported.push(next_placeholder);
                next_placeholder += 1;
            } else {
                imported.push(next_kept);
                next_kept += 1;
            }
        }
        Self {
            plan,
            imported,
            first_defined,
            load_function,
        }
    }

    fn placeholder_body(&self, placeholder: &Placeholder) -> wasm_encoder::Function {
        use wasm_encoder::Instruction as I;
        let mut body = wasm_encoder::Function::new([]);
        body.instruction(&I::Call(self.load_function));
        for param in 0..placeholder.params {
            body.instruction(&I::LocalGet(param));
        }
        body.instruction(&I::I32Const(placeholder.slot as i32));
        body.instruction(&I::CallIndirect {
            type_index: placeholder.type_index,
            table_index: self.plan.table,
        });
        body.instruction(&I::End);
        body
    }
}

impl Reencode for Rewriter {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError> {
        Ok(match self.imported.get(func as usize) {
            Some(&new) => new,
            None => func - self.plan.imported_functions + self.first_defined,
        })
    }

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_type_section(self, types, section)?;
        if !self.plan.void_type_exists {
            types.ty().function([], []);
        }
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        for import in section.into_imports() {
            let import = import?;
            if import.module == PLACEHOLDER_NAMESPACE && matches!(import.ty, TypeRef::Func(_)) {
                continue;
            }
            let ty = self.entity_type(import.ty)?;
            imports.import(import.module, import.name, ty);
        }
        imports.import(
            PLACEHOLDER_NAMESPACE,
            LOAD_IMPORT,
            wasm_encoder::EntityType::Function(self.plan.void_type),
        );
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        utils::parse_function_section(self, functions, section)?;
        for placeholder in self.plan.placeholders.values() {
            functions.function(placeholder.type_index);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        for body in section {
            self.parse_function_body(code, body?)?;
        }
        for placeholder in self.plan.placeholders.values() {
            code.function(&self.placeholder_body(placeholder));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A primary as `wasm-split` writes it: placeholders for slots 1 and 3 among its own functions,
    /// functions defined after the imports (so renumbered), reached by `call`, `ref.func` and the
    /// table, and one export the secondary imports.
    const PRIMARY: &str = r#"(module
        (type $unary (func (param i32) (result i32)))
        (type $wide (func (param i64 f64) (result i64)))
        (import "env" "log" (func $log (param i32)))
        (import "placeholder" "1" (func $p1 (type $unary)))
        (import "placeholder" "3" (func $p3 (type $wide)))
        (table $t (export "__indirect_function_table") 8 funcref)
        (global $fp (export "fp") funcref (ref.func $twice))
        (elem (table $t) (i32.const 0) func $twice $p1 $inc $p3)
        (func $twice (export "%twice") (type $unary) (i32.mul (local.get 0) (i32.const 2)))
        (func $inc (type $unary) (i32.add (local.get 0) (i32.const 1)))
        (func (export "run") (param $x i32) (result i64)
          (call $log (local.get $x))
          (i64.add
            (i64.extend_i32_s (call_indirect $t (type $unary) (call $inc (local.get $x)) (i32.const 1)))
            (call_indirect $t (type $wide) (i64.const 5) (f64.const 2.5) (i32.const 3)))))"#;

    /// Its secondary: the moved functions, put into slots 1 and 3 of the primary's table.
    const SECONDARY: &str = r#"(module
        (type $unary (func (param i32) (result i32)))
        (import "primary" "__indirect_function_table" (table $t 8 funcref))
        (import "primary" "%twice" (func $twice (type $unary)))
        (func $moved (type $unary) (i32.add (call $twice (local.get 0)) (i32.const 100)))
        (func $widened (param i64 f64) (result i64)
          (i64.add (local.get 0) (i64.trunc_f64_s (f64.mul (local.get 1) (f64.const 10)))))
        (elem (table $t) (i32.const 1) func $moved)
        (elem (table $t) (i32.const 3) func $widened))"#;

    fn modules() -> (Vec<u8>, Vec<u8>) {
        (
            wat::parse_str(PRIMARY).unwrap(),
            wat::parse_str(SECONDARY).unwrap(),
        )
    }

    /// Differential: the rewritten primary, loaded by runtime-hooks.js, gives what the one
    /// `wasm-split` wrote gives with a JavaScript placeholder per slot, and loads the secondary once.
    #[test]
    fn defined_placeholders_behave_as_the_javascript_ones() {
        let (primary, secondary) = modules();
        let defined = define_placeholders(&primary, &secondary).unwrap();
        assert_eq!(defined.placeholders, 2);
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("split.wasm", &primary),
            ("defined.wasm", &defined.wasm),
            ("secondary.wasm", &secondary),
        ] {
            crate::fsx::write(&dir.path().join(name), bytes).unwrap();
        }
        let script = format!(
            r#"import fs from "node:fs";
{hooks}
const secondary = new WebAssembly.Module(fs.readFileSync("secondary.wasm"));
const logged = [];
const env = {{ log: (x) => logged.push(x) }};
async function viaJsPlaceholders() {{
  let instance, loads = 0;
  const placeholder = new Proxy({{}}, {{ get: (_, slot) => (...args) => {{
    if (!loads++) new WebAssembly.Instance(secondary, {{ primary: instance.exports }});
    return instance.exports.__indirect_function_table.get(Number(slot))(...args);
  }} }});
  instance = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync("split.wasm")), {{ env, placeholder }});
  return {{ results: [1, 2, 3].map((x) => String(instance.exports.run(x))), loads }};
}}
async function viaRuntimeHooks() {{
  let loads = 0;
  const runtime = splitRuntime(() => (loads++, secondary));
  const {{ instance }} = await WebAssembly.instantiate(fs.readFileSync("defined.wasm"), {{ env }});
  runtime.restore();
  return {{ results: [1, 2, 3].map((x) => String(instance.exports.run(x))), loads }};
}}
console.log(JSON.stringify({{ js: await viaJsPlaceholders(), defined: await viaRuntimeHooks(), logged }}));
"#,
            hooks = include_str!("../../templates/pyodide/runtime-hooks.js")
        );
        let out: serde_json::Value =
            serde_json::from_str(&crate::python::run::node_script_in(dir.path(), &script)).unwrap();
        assert_eq!(out["defined"], out["js"], "{out}");
        // run(1) = (twice(inc(1)) + 100) + (5 + 25) = 104 + 30.
        assert_eq!(
            out["js"]["results"],
            serde_json::json!(["134", "136", "138"])
        );
        assert_eq!(out["defined"]["loads"], 1);
        assert_eq!(out["logged"], serde_json::json!([1, 2, 3, 1, 2, 3]));
    }

    #[test]
    fn only_one_placeholder_import_is_left_and_the_module_validates() {
        let (primary, secondary) = modules();
        let defined = define_placeholders(&primary, &secondary).unwrap();
        let module = wasmparser::Parser::new(0).parse_all(&defined.wasm);
        let mut imports = Vec::new();
        for payload in module {
            if let Payload::ImportSection(reader) = payload.unwrap() {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    imports.push(format!("{}.{}", import.module, import.name));
                }
            }
        }
        assert_eq!(imports, ["env.log", "placeholder.load"]);
    }

    #[test]
    fn a_primary_without_placeholders_is_left_as_it_is() {
        let wasm = wat::parse_str(r#"(module (func (export "f")))"#).unwrap();
        let defined = define_placeholders(&wasm, &wasm).unwrap();
        assert_eq!((defined.wasm, defined.placeholders), (wasm, 0));
    }

    #[test]
    fn a_placeholder_away_from_its_slot_is_refused() {
        let (_, secondary) = modules();
        let moved =
            wat::parse_str(PRIMARY.replace("func $twice $p1 $inc $p3", "func $p1 $twice $inc $p3"))
                .unwrap();
        let err = define_placeholders(&moved, &secondary).unwrap_err();
        assert!(
            format!("{err:#}").contains("placeholder `1` is not in table slot 1"),
            "{err:#}"
        );
    }

    #[test]
    fn a_slot_the_secondary_does_not_fill_is_refused() {
        let (primary, _) = modules();
        let partial =
            wat::parse_str(SECONDARY.replace("(elem (table $t) (i32.const 3) func $widened)", ""))
                .unwrap();
        let err = define_placeholders(&primary, &partial).unwrap_err();
        assert!(
            format!("{err:#}").contains("does not fill table slot 3"),
            "{err:#}"
        );
    }
}
