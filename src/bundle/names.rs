//! The sidecar name map (`<crate>.names.json`): function names and body sizes of the shipped
//! module, which itself ships without its `name` section. `diff` reads two of them to say which
//! functions grew. The map comes from a twin of the module built with names kept, and is only
//! written when that twin, stripped, is byte for byte the shipped module — so every entry
//! describes a function that ships.

use crate::bundle::inspect::{self, FunctionSize};
use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wasmparser::{Parser, Payload};

pub const SUFFIX: &str = ".names.json";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NameMap {
    /// sha256 of the shipped module the map describes.
    pub module_sha256: String,
    /// Every function body, in index order.
    pub functions: Vec<FunctionSize>,
}

/// `wasm` without its `name` custom section; every other section is copied byte for byte.
pub fn strip_name_section(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(wasm.len());
    let mut section_start = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.context("parsing the module")?;
        if let Payload::Version { range, .. } = &payload {
            out.extend_from_slice(&wasm[..range.end]);
            section_start = range.end;
            continue;
        }
        // A section spans from the end of the previous one (its id and size come first) to the
        // end of its contents.
        if let Some((_, range)) = payload.as_section() {
            let is_names =
                matches!(&payload, Payload::CustomSection(reader) if reader.name() == "name");
            if !is_names {
                out.extend_from_slice(&wasm[section_start..range.end]);
            }
            section_start = range.end;
        }
    }
    Ok(out)
}

impl NameMap {
    /// The map of `named` (a module with its `name` section), when stripping its names gives
    /// exactly `shipped`; `None` when the twin differs and its names would describe another module.
    pub fn for_shipped(named: &[u8], shipped: &[u8]) -> Result<Option<NameMap>> {
        let has_names = strip_name_section(shipped)?.len() != shipped.len();
        let matches = if has_names {
            named == shipped
        } else {
            strip_name_section(named)? == shipped
        };
        if !matches {
            return Ok(None);
        }
        let report = inspect::inspect(named, usize::MAX)?;
        let mut functions = report.largest_functions;
        functions.sort_by_key(|f| f.index);
        Ok(Some(NameMap {
            module_sha256: crate::fsx::sha256_hex(shipped),
            functions,
        }))
    }

    pub fn read(path: &std::path::Path) -> Result<NameMap> {
        let bytes = crate::fsx::read(path)?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a name map", path.display()))
    }

    /// Body bytes per function name (functions sharing a name are summed; unnamed ones are
    /// `func[INDEX]`).
    fn bytes_by_name(&self) -> BTreeMap<String, u64> {
        let mut by_name = BTreeMap::new();
        for f in &self.functions {
            let name = f
                .name
                .clone()
                .unwrap_or_else(|| format!("func[{}]", f.index));
            *by_name.entry(name).or_insert(0) += f.bytes;
        }
        by_name
    }
}

/// A named part (function, file) whose size differs between two builds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SizeChange {
    pub name: String,
    /// `None`: it is new.
    pub old_bytes: Option<u64>,
    /// `None`: it is gone.
    pub new_bytes: Option<u64>,
    pub change: i64,
}

/// Every part whose size differs (added and removed ones included), largest absolute change
/// first.
pub fn size_changes(old: &BTreeMap<String, u64>, new: &BTreeMap<String, u64>) -> Vec<SizeChange> {
    let mut changes: Vec<SizeChange> = old
        .keys()
        .chain(new.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|name| {
            let (o, n) = (old.get(name).copied(), new.get(name).copied());
            let change = n.unwrap_or(0) as i64 - o.unwrap_or(0) as i64;
            (change != 0).then(|| SizeChange {
                name: name.clone(),
                old_bytes: o,
                new_bytes: n,
                change,
            })
        })
        .collect();
    changes.sort_by(|a, b| {
        b.change
            .abs()
            .cmp(&a.change.abs())
            .then(a.name.cmp(&b.name))
    });
    changes
}

/// The `top` functions whose size changed most.
pub fn function_changes(old: &NameMap, new: &NameMap, top: usize) -> Vec<SizeChange> {
    let mut changes = size_changes(&old.bytes_by_name(), &new.bytes_by_name());
    changes.truncate(top);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMED: &str = r#"(module $m
        (func $small (export "small") (result i32) i32.const 1)
        (func $large (export "large") (param i32) (result i32)
            local.get 0 i32.const 2 i32.mul i32.const 3 i32.add))"#;

    #[test]
    fn stripping_names_keeps_every_other_byte() {
        let named = wat::parse_str(NAMED).unwrap();
        let stripped = strip_name_section(&named).unwrap();
        assert!(stripped.len() < named.len());
        wasmparser::validate(&stripped).unwrap();
        let report = inspect::inspect(&stripped, 10).unwrap();
        assert!(report.largest_functions.iter().all(|f| f.name.is_none()));
        assert_eq!(
            strip_name_section(&stripped).unwrap(),
            stripped,
            "idempotent"
        );
    }

    #[test]
    fn maps_only_the_module_they_describe_and_diff_by_name() {
        let named = wat::parse_str(NAMED).unwrap();
        let shipped = strip_name_section(&named).unwrap();
        let map = NameMap::for_shipped(&named, &shipped).unwrap().unwrap();
        assert_eq!(map.module_sha256, crate::fsx::sha256_hex(&shipped));
        let names: Vec<_> = map
            .functions
            .iter()
            .map(|f| f.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["small", "large"]);
        let other = wat::parse_str("(module (func (export \"x\")))").unwrap();
        assert!(NameMap::for_shipped(&named, &other).unwrap().is_none());

        let mut grown = map.clone();
        grown.functions[1].bytes += 40;
        grown.functions[0].name = Some("renamed".into());
        let changes = function_changes(&map, &grown, 10);
        let summary: Vec<_> = changes
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.old_bytes.is_some(),
                    c.new_bytes.is_some(),
                    c.change,
                )
            })
            .collect();
        let small = map.functions[0].bytes as i64;
        assert_eq!(
            summary,
            [
                ("large", true, true, 40),
                ("renamed", false, true, small),
                ("small", true, false, -small)
            ]
        );
    }
}
