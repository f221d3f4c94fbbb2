//! Emscripten's dynamic-linking set-up at boot, made cheaper without changing its outcome.
//!
//! Pyodide's runtime is an Emscripten main module. At every boot, also from a memory snapshot,
//! its JS glue gives each of the runtime's ~8 000 exported functions a table slot (`updateGOT`):
//! it looks each one up in a map from function to slot, which it first builds by reading every
//! slot of the table (a wrapper made for each of ~13 000 functions), and it wraps each of the
//! ~260 JS functions that the GOT still needs in a WebAssembly module of its own
//! (`convertJsFunctionToWasm`). Measured in Node on a snapshot boot, that is a fifth of it.
//!
//! [`annotate`] writes into `pyodide.asm.wasm` a custom section, [`SECTION`], listing the only
//! table slots such a lookup can find at boot: those whose element is an exported function or an
//! import other than a split runtime's placeholders (a lookup at boot asks for an export, or for a
//! function the glue imported). [`patch_glue`] inserts `templates/pyodide/link-plan.js` into
//! `pyodide.asm.mjs`: while the main module links, the map starts from those slots and takes in the
//! rest of the table at the first lookup after, and the JS functions are wrapped in one module.
//! The GOT's entries (one `WebAssembly.Global` per export, ~8 600, each read twice more to find
//! the undefined ones) are made when something first reads them; the values are computed as
//! before, in the same order.
//! Every slot, every GOT entry and the map itself come out as Emscripten's own code leaves them;
//! the build's check run (`__wasmpackInferCheckLinkPlan`) fails if any slot left out of the plan
//! holds a function that was looked up. A runtime without the section links as before.

use super::split::PLACEHOLDER_NAMESPACE;
use crate::manifest::python::LinkPlanInfo;
use anyhow::{Context, Result, bail, ensure};
use std::collections::{BTreeMap, BTreeSet};
use wasmparser::{ElementItems, ElementKind, ExternalKind, Operator, Parser, Payload, TypeRef};

/// The custom section of `pyodide.asm.wasm` that lists the planned slots, ascending, each as the
/// LEB128 difference from the one before (the first from 0).
pub const SECTION: &str = "wasmpack-infer.link-slots";
/// What `pyodide.asm.mjs` must contain for [`patch_glue`], each exactly once: the text it
/// replaces (or inserts after), and what goes there.
const GLUE_PATCHES: [(&str, &str); 7] = [
    (
        "var getFunctionAddress=func=>{if(!functionsInTableMap){functionsInTableMap=new WeakMap;updateTableMap(0,wasmTable.length)}return functionsInTableMap.get(func)||0};",
        LINK_PLAN_JS,
    ),
    (
        "updateGOT(origExports);LDSO.init();loadDylibs();",
        "wpiLinkStart(module);updateGOT(origExports);LDSO.init();loadDylibs();wpiLinkEnd();",
    ),
    (
        "var reportUndefinedSymbols=()=>{",
        "var reportUndefinedSymbols=()=>{wpiWrapJsFunctions();",
    ),
    (
        "var convertJsFunctionToWasm=(func,sig)=>{",
        "var convertJsFunctionToWasm=(func,sig)=>{var wpi=wpiWrapped.get(func);if(wpi&&wpi.sig===sig)return wpi.wrapped;",
    ),
    // The GOT makes an entry (a `WebAssembly.Global`) only when something asks for it.
    ("var GOT={};", "var GOT=wpiLazyGOT();"),
    (
        "var existingEntry=GOT[symName]&&GOT[symName].value!=-1;if(replace||!existingEntry){var newValue;if(typeof value==\"function\"){newValue=addFunction(value)}else if(typeof value.value==\"number\"){newValue=value}else{continue}GOT[symName]??=new WebAssembly.Global({value:\"i32\",mutable:true});GOT[symName].value=newValue}",
        "var entry=wpiGOTEntries[symName];var existingEntry=entry===null||entry&&entry.value!=-1;if(replace||!existingEntry){var newValue;if(typeof value==\"function\"){newValue=addFunction(value)}else if(typeof value.value==\"number\"){newValue=value}else{continue}wpiGOTSet(symName,entry,newValue)}",
    ),
    (
        "for(var[symName,entry]of Object.entries(GOT)){if(entry.value==-1){",
        "for(var[symName,entry]of Object.entries(wpiGOTEntries)){if(entry&&entry.value==-1){",
    ),
];
/// The glue's own names that the inserted code uses: each must be one of its identifiers.
const GLUE_NAMES: [&str; 7] = [
    "functionsInTableMap",
    "updateTableMap",
    "getWasmTableEntry",
    "wasmTable",
    "GOT",
    "resolveGlobalSymbol",
    "generateTypePack",
];
const LINK_PLAN_JS: &str = include_str!("../../templates/pyodide/link-plan.js");

/// The stock runtime's two files with the link plan in.
#[derive(Debug, Clone)]
pub struct PlannedRuntime {
    pub glue: Vec<u8>,
    pub wasm: Vec<u8>,
    pub plan: LinkPlanInfo,
}

/// Plans the stock runtime: its glue (`pyodide.asm.mjs`) patched, its module annotated.
pub fn plan_runtime(glue: &[u8], wasm: &[u8]) -> Result<PlannedRuntime> {
    let glue = std::str::from_utf8(glue).context("pyodide.asm.mjs is not UTF-8")?;
    let glue = patch_glue(glue)?.into_bytes();
    let (wasm, plan) = annotate(wasm)?;
    Ok(PlannedRuntime { glue, wasm, plan })
}

/// `wasm` (an Emscripten main module, whole or a split primary) with [`SECTION`] written for it,
/// replacing one already there.
pub fn annotate(wasm: &[u8]) -> Result<(Vec<u8>, LinkPlanInfo)> {
    let mut imported_functions = 0u32;
    let mut findable = BTreeSet::new();
    let mut table = None;
    let mut segments = Vec::new();
    let mut old_section = None;
    // Where the section being read starts (its id byte): where the one before it ended.
    let mut section_start = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.context("reading pyodide.asm.wasm")?;
        let this_section_start = section_start;
        if let Some((_, range)) = payload.as_section() {
            section_start = range.end;
        }
        match payload {
            Payload::Version { range, .. } => section_start = range.end,
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.context("reading pyodide.asm.wasm's imports")?;
                    if matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        if import.module != PLACEHOLDER_NAMESPACE {
                            findable.insert(imported_functions);
                        }
                        imported_functions += 1;
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.context("reading pyodide.asm.wasm's exports")?;
                    match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => {
                            findable.insert(export.index);
                        }
                        ExternalKind::Table if export.name == "__indirect_function_table" => {
                            table = Some(export.index)
                        }
                        _ => {}
                    }
                }
            }
            Payload::ElementSection(reader) => {
                for element in reader {
                    segments.push(element.context("reading pyodide.asm.wasm's element segments")?);
                }
            }
            Payload::CustomSection(reader) if reader.name() == SECTION => {
                old_section = Some(this_section_start..reader.range().end);
            }
            _ => {}
        }
    }
    let table = table.context(
        "pyodide.asm.wasm exports no `__indirect_function_table`: not an Emscripten main module",
    )?;
    let slots = table_slots(segments, Some(table))
        .context("reading pyodide.asm.wasm's element segments")?;
    let planned: Vec<u32> = slots
        .iter()
        .filter(|(_, function)| findable.contains(function))
        .map(|(&slot, _)| slot)
        .collect();
    let mut data = Vec::new();
    let mut previous = 0;
    for &slot in &planned {
        wasm_encoder::Encode::encode(&(slot - previous), &mut data);
        previous = slot;
    }
    let mut out = match old_section {
        Some(range) => [&wasm[..range.start], &wasm[range.end..]].concat(),
        None => wasm.to_vec(),
    };
    wasm_encoder::Section::append_to(
        &wasm_encoder::CustomSection {
            name: SECTION.into(),
            data: data.into(),
        },
        &mut out,
    );
    Ok((
        out,
        LinkPlanInfo {
            table_slots: slots.len() as u32,
            planned_slots: planned.len() as u32,
        },
    ))
}

/// Which function each table slot holds once the active element `segments` have run, in order
/// (a later segment overwrites, a null clears): of table `table`, or of every table when `None`.
/// Only constant offsets can be read ahead of time; any other offset or element is an error.
pub(super) fn table_slots(
    segments: Vec<wasmparser::Element<'_>>,
    table: Option<u32>,
) -> Result<BTreeMap<u32, u32>> {
    let mut slots = BTreeMap::new();
    for segment in segments {
        let ElementKind::Active {
            table_index,
            offset_expr,
        } = segment.kind
        else {
            continue;
        };
        if table.is_some_and(|table| table != table_index.unwrap_or(0)) {
            continue;
        }
        let mut ops = offset_expr.get_operators_reader();
        let offset = match (ops.read()?, ops.read()?) {
            (Operator::I32Const { value }, Operator::End) => value as u32,
            _ => bail!("an element segment has an offset that is not a constant"),
        };
        let functions: Vec<Option<u32>> = match segment.items {
            ElementItems::Functions(reader) => reader
                .into_iter()
                .map(|f| f.map(Some))
                .collect::<std::result::Result<_, _>>()?,
            ElementItems::Expressions(_, reader) => reader
                .into_iter()
                .map(|expr| -> Result<Option<u32>> {
                    let mut ops = expr?.get_operators_reader();
                    Ok(match ops.read()? {
                        Operator::RefFunc { function_index } => Some(function_index),
                        Operator::RefNull { .. } => None,
                        other => bail!("an element is {other:?}"),
                    })
                })
                .collect::<Result<_>>()?,
        };
        for (i, function) in functions.into_iter().enumerate() {
            let slot = offset
                .checked_add(i as u32)
                .context("an element segment runs past 2^32 slots")?;
            match function {
                Some(function) => slots.insert(slot, function),
                None => slots.remove(&slot),
            };
        }
    }
    Ok(slots)
}

/// Whether `name` occurs in `code` as a whole identifier.
fn mentions(code: &str, name: &str) -> bool {
    let identifier = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    code.match_indices(name).any(|(at, _)| {
        !code[..at].ends_with(identifier) && !code[at + name.len()..].starts_with(identifier)
    })
}

/// `pyodide.asm.mjs` with `templates/pyodide/link-plan.js` patched in; an error names the first
/// piece of Emscripten's glue it did not find as expected (another Pyodide's glue differs).
pub fn patch_glue(glue: &str) -> Result<String> {
    let mut patched = glue.to_string();
    for (expected, replacement) in GLUE_PATCHES {
        let found = patched.matches(expected).count();
        ensure!(
            found == 1,
            "pyodide.asm.mjs has {found} copies of Emscripten's `{}…`, not one",
            &expected[..expected.len().min(40)]
        );
        patched = patched.replacen(expected, replacement, 1);
    }
    for name in GLUE_NAMES {
        ensure!(
            mentions(glue, name),
            "pyodide.asm.mjs has no `{name}`, which the link plan uses"
        );
    }
    ensure!(
        patched.contains("function receiveInstance(instance,module){"),
        "pyodide.asm.mjs has no `receiveInstance(instance, module)`, where the link plan starts"
    );
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned_slots(wasm: &[u8]) -> Vec<u32> {
        let section = Parser::new(0)
            .parse_all(wasm)
            .find_map(|payload| match payload.unwrap() {
                Payload::CustomSection(reader) if reader.name() == SECTION => {
                    Some(reader.data().to_vec())
                }
                _ => None,
            })
            .expect("the section is written");
        let mut reader = wasmparser::BinaryReader::new(&section, 0);
        let mut slots = Vec::new();
        let mut slot = 0;
        while !reader.eof() {
            slot += reader.read_var_u32().unwrap();
            slots.push(slot);
        }
        slots
    }

    const RUNTIME: &str = r#"(module
        (import "env" "js_helper" (func $js (param i32)))
        (import "placeholder" "7" (func $deferred))
        (func $exported)
        (func $internal)
        (func $also_exported)
        (table $t (export "__indirect_function_table") 300 funcref)
        (table $other (export "other") 4 funcref)
        (elem (table $t) (i32.const 1) func $internal $exported $deferred $js)
        (elem (table $t) (i32.const 200) funcref (ref.func $also_exported) (ref.null func) (ref.func $internal))
        (elem (table $other) (i32.const 0) func $exported)
        (export "exported" (func $exported))
        (export "also" (func $also_exported))
        (export "alias" (func $exported)))"#;

    #[test]
    fn the_plan_holds_the_slots_of_exports_and_of_imports_other_than_placeholders() {
        let wasm = wat::parse_str(RUNTIME).unwrap();
        let (annotated, plan) = annotate(&wasm).unwrap();
        assert_eq!(planned_slots(&annotated), [2, 4, 200]);
        assert_eq!(
            plan,
            LinkPlanInfo {
                table_slots: 6,
                planned_slots: 3
            }
        );
        wasmparser::Validator::new()
            .validate_all(&annotated)
            .unwrap();
    }

    #[test]
    fn annotating_again_replaces_the_section() {
        let wasm = wat::parse_str(RUNTIME).unwrap();
        let (once, _) = annotate(&wasm).unwrap();
        let (twice, _) = annotate(&once).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn a_module_without_emscriptens_table_is_refused() {
        let wasm = wat::parse_str("(module (table 1 funcref))").unwrap();
        let error = annotate(&wasm).unwrap_err();
        assert!(format!("{error:#}").contains("__indirect_function_table"));
    }

    #[test]
    fn a_segment_at_a_computed_offset_is_refused() {
        let wasm = wat::parse_str(
            r#"(module (import "env" "base" (global $base i32)) (func $f)
                (table (export "__indirect_function_table") 10 funcref)
                (elem (global.get $base) func $f))"#,
        )
        .unwrap();
        let error = annotate(&wasm).unwrap_err();
        assert!(format!("{error:#}").contains("not a constant"));
    }

    fn glue() -> String {
        let mut glue = String::from("function receiveInstance(instance,module){");
        for (expected, _) in GLUE_PATCHES {
            glue.push_str(expected);
        }
        glue + "var updateTableMap=()=>{};var getWasmTableEntry=()=>{};var wasmTable;\
                var resolveGlobalSymbol=()=>{};var generateTypePack=()=>{};}"
    }

    #[test]
    fn the_glue_is_patched_at_each_place_once() {
        let patched = patch_glue(&glue()).unwrap();
        assert!(patched.contains("wpiLinkStart(module);updateGOT(origExports)"));
        assert!(patched.contains("()=>{wpiWrapJsFunctions();"));
        assert!(patched.contains("var GOT=wpiLazyGOT();"));
        assert_eq!(patched.matches("var getFunctionAddress").count(), 1);
        assert!(patched.contains("var getFunctionAddress = (func) =>"));
    }

    #[test]
    fn glue_of_another_shape_is_refused_naming_what_is_missing() {
        let glue = glue().replace("LDSO.init();", "LDSO.init(1);");
        let error = patch_glue(&glue).unwrap_err();
        assert!(
            format!("{error:#}").contains("updateGOT(origExports)"),
            "{error:#}"
        );
        let glue = self::glue().replace("generateTypePack", "makeTypePack");
        let error = patch_glue(&glue).unwrap_err();
        assert!(
            format!("{error:#}").contains("`generateTypePack`"),
            "{error:#}"
        );
    }

    /// The patched lookup against Emscripten's own (the text it replaces), in Node over a real
    /// table: every lookup while linking and after gives the same slot, the check passes, and a
    /// plan that leaves out a slot that is looked up fails the check.
    #[test]
    fn the_planned_lookup_finds_what_emscriptens_finds() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = wat::parse_str(RUNTIME).unwrap();
        let (annotated, _) = annotate(&wasm).unwrap();
        crate::fsx::write(&dir.path().join("planned.wasm"), &annotated).unwrap();
        // A plan of slot 2 alone leaves out slot 200, which holds an export.
        let mut short = wasm.clone();
        short.extend([0, SECTION.len() as u8 + 2, SECTION.len() as u8]);
        short.extend(SECTION.as_bytes());
        short.push(2);
        crate::fsx::write(&dir.path().join("short.wasm"), &short).unwrap();
        let script = r#"import fs from "node:fs";
// The pieces of Emscripten's glue that the lookup uses, as pyodide.asm.mjs has them.
function link(file, patched, check) {
  globalThis.__wasmpackInferCheckLinkPlan = check;
  const module = new WebAssembly.Module(fs.readFileSync(file));
  const instance = new WebAssembly.Instance(module, { env: { js_helper() {} }, placeholder: { 7() {} } });
  const wasmTable = instance.exports.__indirect_function_table;
  const wasmTableMirror = [];
  const getWasmTableEntry = (i) => (wasmTableMirror[i] ??= wasmTable.get(i));
  var functionsInTableMap;
  const updateTableMap = (offset, count) => {
    if (functionsInTableMap) for (let i = offset; i < offset + count; i++) {
      const item = getWasmTableEntry(i);
      if (item) functionsInTableMap.set(item, i);
    }
  };
  {lookup}
  const found = [];
  if (patched) wpiLinkStart(module);
  for (const name of ["exported", "also", "alias"]) found.push(getFunctionAddress(instance.exports[name]));
  found.push(getFunctionAddress(() => {}));
  if (patched) wpiLinkEnd();
  for (let i = 0; i < wasmTable.length; i++) found.push(getFunctionAddress(getWasmTableEntry(i) ?? (() => {})));
  return found;
}
let refused = "";
if (PATCHED) try { link("short.wasm", true, true); } catch (e) { refused = e.message; }
console.log(JSON.stringify({ found: link("planned.wasm", PATCHED, PATCHED), refused }));
"#;
        let run = |patched: bool, lookup: &str| -> serde_json::Value {
            let script = format!(
                "const PATCHED = {patched};\n{}",
                script.replace("{lookup}", lookup)
            );
            serde_json::from_str(&crate::python::run::node_script_in(dir.path(), &script)).unwrap()
        };
        let stock = run(false, GLUE_PATCHES[0].0);
        let planned = run(true, LINK_PLAN_JS);
        assert_eq!(planned["found"], stock["found"]);
        // The exports at slots 2 and 200, a JS function nowhere, and `$internal` at its last slot.
        assert_eq!(
            stock["found"].as_array().unwrap()[..6],
            [2, 200, 2, 0, 0, 202],
            "{stock}"
        );
        assert!(
            planned["refused"]
                .as_str()
                .unwrap()
                .contains("left out table slot 200"),
            "{planned}"
        );
    }

    /// Differential: after the calls linking makes (the GOT imports asked for, exports added,
    /// replaced and kept, undefined symbols reported), the lazy GOT reads from outside as
    /// Emscripten's does: the same entries in the same order, values, flags and table slots; and
    /// the entries nothing asked for were not made until then.
    #[test]
    fn the_lazy_got_reads_as_emscriptens() {
        let dir = tempfile::tempdir().unwrap();
        let [.., got, update, scan] = GLUE_PATCHES;
        let script = r#"// Emscripten's glue around the GOT, as pyodide.asm.mjs has it.
var isInternalSym = (symName) => ["memory"].includes(symName) || symName.startsWith("__em_js__");
var slots = [];
var addFunction = (func, sig) => (slots.includes(func) ? slots.indexOf(func) : slots.push(func) - 1) + 1;
var GOTHandler={get(weakImports,symName){var rtn=GOT[symName];if(!rtn){rtn=GOT[symName]=new WebAssembly.Global({value:"i32",mutable:true},-1)}if(!weakImports.has(symName)){rtn.required=true}return rtn}};
var symbols = {};
var resolveGlobalSymbol = (name) => ({ sym: symbols[name], name });
{got}
var updateGOT=(exports,replace)=>{for(var symName in exports){if(isInternalSym(symName)){continue}var value=exports[symName];{update}}};
var reportUndefinedSymbols=()=>{{scan}var value=resolveGlobalSymbol(symName,true).sym;if(!value&&!entry.required){entry.value=0;continue}else if(!value){throw new Error(`undefined symbol '${symName}'`)}if(typeof value=="function"){entry.value=addFunction(value,value.sig)}else if(typeof value.value=="number"){entry.value=value}}}};
{link_plan}
const imported = {};
for (const name of ["f_used", "d_used", "js_fn", "weak_missing"]) imported[name] = GOTHandler.get(new Set(["weak_missing"]), name);
const [f1, f2, f3] = [() => 1, () => 2, () => 3];
symbols.js_fn = Object.assign(() => 4, { sig: "v" });
const address = (at) => new WebAssembly.Global({ value: "i32" }, at);
updateGOT({ memory: 0, f_used: f1, d_used: address(1234), f_other: f2, d_other: address(77), __em_js__x: f3, text: "no" });
updateGOT({ f_other: f3, d_other: address(88), f_new: f1 }, true);
updateGOT({ f_used: f2, f_new: f3 });
const notMade = typeof wpiGOTPending == "object" && wpiGOTPending ? [...wpiGOTPending.keys()] : [];
reportUndefinedSymbols();
console.log(JSON.stringify({
  entries: Object.entries(GOT).map(([name, entry]) => [name, entry.value, entry.required ?? false]),
  imported: Object.entries(imported).map(([name, entry]) => [name, entry === GOT[name], entry.value]),
  keys: Object.keys(GOT),
  has: ["f_other", "nothing"].map((name) => name in GOT),
  slots: slots.map((f) => f()),
  notMade,
}));
"#;
        let run = |patched: bool| -> serde_json::Value {
            let pick = |(stock, replacement): (&'static str, &'static str)| {
                if patched { replacement } else { stock }
            };
            let script = script
                .replace("{got}", pick(got))
                .replace("{update}", pick(update))
                .replace("{scan}", pick(scan))
                .replace("{link_plan}", LINK_PLAN_JS);
            serde_json::from_str(&crate::python::run::node_script_in(dir.path(), &script)).unwrap()
        };
        let mut stock = run(false);
        let mut lazy = run(true);
        assert_eq!(stock["notMade"], serde_json::json!([]));
        assert_eq!(
            lazy["notMade"],
            serde_json::json!(["f_other", "d_other", "f_new"]),
            "{lazy}"
        );
        stock.as_object_mut().unwrap().remove("notMade");
        lazy.as_object_mut().unwrap().remove("notMade");
        assert_eq!(lazy, stock);
        assert_eq!(
            stock["entries"],
            serde_json::json!([
                ["f_used", 1, true],
                ["d_used", 1234, true],
                ["js_fn", 4, true],
                ["weak_missing", 0, false],
                ["f_other", 3, false],
                ["d_other", 88, false],
                ["f_new", 1, false]
            ])
        );
    }

    /// The JS functions the GOT still needs come out of one module as wasm functions of the
    /// signatures Emscripten gives them, each calling its own JS function.
    #[test]
    fn js_functions_are_wrapped_in_one_module_with_their_signatures() {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            r#"// Emscripten's type encoding, as pyodide.asm.mjs has it.
var wasmTypeCodes = {{ i: 127, p: 127, j: 126, f: 125, d: 124, e: 111 }};
var uleb128EncodeWithLen = (arr) => [(arr.length % 128) | 128, arr.length >> 7, ...arr];
var generateTypePack = (types) => uleb128EncodeWithLen(Array.from(types, (type) => wasmTypeCodes[type]));
var functionsInTableMap = new WeakMap();
var seen = [];
var add = Object.assign((x, y) => x + y, {{ sig: "iii" }});
var log = Object.assign((x) => void seen.push(x), {{ sig: "vi" }});
var wide = Object.assign((x, y) => x * 2n + BigInt(Math.round(y)), {{ sig: "jjd" }});
var symbols = {{ add, log, wide, again: add, linked: log }};
var GOT = wpiLazyGOT();
for (var name of Object.keys(symbols)) {{
  GOT[name] = new WebAssembly.Global({{ value: "i32", mutable: true }}, name === "linked" ? 7 : -1);
}}
var resolveGlobalSymbol = (name) => ({{ sym: symbols[name], name }});
{LINK_PLAN_JS}
wpiWrapJsFunctions();
const table = new WebAssembly.Table({{ element: "anyfunc", initial: 3 }});
[add, log, wide].forEach((f, i) => table.set(i, wpiWrapped.get(f).wrapped));
table.get(1)(42);
console.log(JSON.stringify({{
  wrapped: wpiWrapped.size,
  sigs: [add, log, wide].map((f) => wpiWrapped.get(f).sig),
  add: table.get(0)(2, 3),
  wide: String(table.get(2)(20n, 1.6)),
  seen,
}}));
"#
        );
        let out = crate::python::run::node_script_in(dir.path(), &script);
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            out,
            serde_json::json!({
                "wrapped": 3, "sigs": ["iii", "vi", "jjd"], "add": 5, "wide": "42", "seen": [42]
            })
        );
    }
}
