//! What a module is made of: sections, imports, exports and the largest functions.

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use wasmparser::{KnownCustom, Name, Parser, Payload};

mod retain;
use retain::Keeper;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ModuleReport {
    pub bytes: u64,
    /// Every section with its content size in bytes (without its id and size header), in module
    /// order; custom sections by name.
    pub sections: Vec<SectionSize>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub functions: usize,
    /// The largest function bodies, largest first.
    pub largest_functions: Vec<FunctionSize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SectionSize {
    pub name: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct FunctionSize {
    /// Index in the function index space (imports first).
    pub index: u32,
    /// From the `name` section, demangled; `None` when the module has no names (build with
    /// `--keep-names` to keep them).
    pub name: Option<String>,
    /// Exported as.
    pub exported_as: Vec<String>,
    pub bytes: u64,
    /// Its bytes plus those of every function only it keeps alive (its dominator subtree in the
    /// call graph): what removing it would save.
    #[serde(default)]
    pub retained_bytes: u64,
    /// What keeps it in the module: `export`, `several exports`, `the function table`, or the
    /// function every path to it goes through.
    #[serde(default)]
    pub kept_alive_by: Option<String>,
}

/// Inspects `wasm`, listing the `top` largest functions.
pub fn inspect(wasm: &[u8], top: usize) -> Result<ModuleReport> {
    inspect_named(wasm, top, &HashMap::new())
}

/// [`inspect`], with function names from elsewhere (a sidecar name map) for functions the
/// module's own `name` section does not name.
pub fn inspect_named(
    wasm: &[u8],
    top: usize,
    known_names: &HashMap<u32, String>,
) -> Result<ModuleReport> {
    let mut sections = Vec::new();
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut export_index: HashMap<u32, Vec<String>> = HashMap::new();
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut bodies: Vec<u64> = Vec::new();
    let mut imported_functions = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.context("parsing the module")?;
        if let Some((id, range)) = payload.as_section() {
            let name = match &payload {
                Payload::CustomSection(reader) => format!("custom \"{}\"", reader.name()),
                _ => section_name(id).to_string(),
            };
            sections.push(SectionSize {
                name,
                bytes: range.len() as u64,
            });
        }
        match payload {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.context("reading imports")?;
                    if matches!(import.ty, wasmparser::TypeRef::Func(_)) {
                        imported_functions += 1;
                    }
                    imports.push(format!("{}.{}", import.module, import.name));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.context("reading exports")?;
                    if export.kind == wasmparser::ExternalKind::Func {
                        export_index
                            .entry(export.index)
                            .or_default()
                            .push(export.name.to_string());
                    }
                    exports.push(export.name.to_string());
                }
            }
            Payload::CodeSectionEntry(body) => bodies.push(body.range().len() as u64),
            Payload::CustomSection(reader) => {
                if let KnownCustom::Name(name_reader) = reader.as_known() {
                    for subsection in name_reader.flatten() {
                        if let Name::Function(map) = subsection {
                            for naming in map.into_iter().flatten() {
                                names.insert(
                                    naming.index,
                                    format!("{:#}", rustc_demangle::demangle(naming.name)),
                                );
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for (index, name) in known_names {
        names.entry(*index).or_insert_with(|| name.clone());
    }
    let retention = retain::retention(wasm, imported_functions, &bodies)?;
    let name_of = |index: u32| {
        names
            .get(&index)
            .cloned()
            .unwrap_or_else(|| format!("func[{index}]"))
    };
    let mut largest_functions: Vec<FunctionSize> = bodies
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let index = imported_functions + i as u32;
            let exported_as = export_index.get(&index).cloned().unwrap_or_default();
            let kept_alive_by = match &retention.keepers[index as usize] {
                Keeper::Roots if !exported_as.is_empty() => "export".to_string(),
                Keeper::Roots => "several exports".to_string(),
                Keeper::Table => "the function table".to_string(),
                Keeper::Function(by) => name_of(*by),
                Keeper::Unreachable => "nothing (unreachable)".to_string(),
            };
            FunctionSize {
                index,
                name: names.get(&index).cloned(),
                exported_as,
                bytes: *bytes,
                retained_bytes: retention.retained_bytes[index as usize],
                kept_alive_by: Some(kept_alive_by),
            }
        })
        .collect();
    largest_functions.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.index.cmp(&b.index)));
    largest_functions.truncate(top);
    Ok(ModuleReport {
        bytes: wasm.len() as u64,
        sections,
        imports,
        exports,
        functions: bodies.len(),
        largest_functions,
    })
}

fn section_name(id: u8) -> &'static str {
    match id {
        1 => "type",
        2 => "import",
        3 => "function",
        4 => "table",
        5 => "memory",
        6 => "global",
        7 => "export",
        8 => "start",
        9 => "element",
        10 => "code",
        11 => "data",
        12 => "data count",
        13 => "tag",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_sections_exports_and_functions_by_size() {
        let wasm = wat::parse_str(
            r#"(module
                (import "env" "log" (func $log (param i32)))
                (memory (export "memory") 1)
                (func $small (export "small") (result i32) i32.const 1)
                (func $big (export "big") (result i32)
                  i32.const 1 i32.const 2 i32.add i32.const 3 i32.add i32.const 4 i32.add))"#,
        )
        .unwrap();
        let report = inspect(&wasm, 1).unwrap();
        assert_eq!(report.imports, vec!["env.log"]);
        assert_eq!(report.exports, vec!["memory", "small", "big"]);
        assert_eq!(report.functions, 2);
        let big = &report.largest_functions[0];
        assert_eq!(
            (big.index, big.name.as_deref(), big.exported_as.clone()),
            (2, Some("big"), vec!["big".to_string()])
        );
        assert_eq!(report.largest_functions.len(), 1);
        assert!(report.sections.iter().any(|s| s.name == "code"));
        assert!(report.sections.iter().any(|s| s.name == "custom \"name\""));
        // Section contents, without each section's id and size bytes or the module header.
        assert!(report.sections.iter().map(|s| s.bytes).sum::<u64>() < report.bytes);
    }
}
