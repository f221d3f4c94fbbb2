//! Which of the runtime's static data the samples read (`inspect --static-data`): every sample
//! runs on a copy of the bundle's `pyodide.asm.wasm` in which each memory read (every load, and
//! the source of every `memory.copy`) first calls an imported hook, `wpi_reads.read(address,
//! bytes)`; the runner marks the bytes of static data read, and they are mapped onto the data
//! segments here. Static data no sample reads is what a page could fetch later, if a transform
//! could prove it is never read first; none can (a read is a plain load through any pointer), so
//! this only reports it. Reads by JavaScript (Emscripten's glue reading a C string out of
//! memory) are not seen: what it reports as unread is an upper bound.

use crate::bundle::layout::{PYTHON_APP_ARCHIVE, PYTHON_RUNTIME_DIR, PYTHON_SAMPLES_FILE};
use crate::manifest::python::PythonManifest;
use crate::python::run::{self, Boot, Mode, RunConfig};
use crate::python::snapshot::{DataSegment, active_data_segments};
use crate::units::format_bytes;
use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;
use walrus::ir::{
    BinaryOp, Binop, Call, Const, Instr, InstrLocId, InstrSeq, Load, LoadKind, LoadSimd,
    LoadSimdKind, LocalGet, LocalSet, LocalTee, MemoryCopy, Value, VisitorMut,
};
use walrus::{FunctionId, LocalId, MemoryId, ModuleConfig, ValType};

/// The import every memory read calls first.
pub const READ_HOOK: (&str, &str) = ("wpi_reads", "read");

/// What the samples read of the runtime's static data.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticDataReads {
    /// Active data segments of the runtime, and their bytes.
    pub segments: usize,
    pub bytes: u64,
    /// Bytes of static data some load or `memory.copy` read, boot and every sample included.
    pub read_bytes: u64,
    /// Segments not one byte of which was read, their bytes and those bytes' brotli size (what
    /// the page would fetch later if they could move out of the up-front half).
    pub unread_segments: usize,
    pub unread_bytes: u64,
    pub unread_brotli_bytes: u64,
    /// The largest unread segments, largest first.
    pub largest_unread: Vec<UnreadSegment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnreadSegment {
    /// Where instantiation writes it.
    pub address: u64,
    pub bytes: u64,
    /// Its longest run of printable text, cut to 60 characters: what it holds, as far as text
    /// tells (the module has no data segment names).
    pub text: String,
}

impl StaticDataReads {
    /// As `inspect` prints it.
    pub fn human(&self) -> String {
        let mut out = format!(
            "\nstatic data in pyodide.asm.wasm: {} in {} segments; boot and the samples read {} of it\n\
             not one byte read: {} segments, {} ({} brotli), an upper bound (reads by JavaScript are not seen)\n",
            format_bytes(self.bytes),
            self.segments,
            format_bytes(self.read_bytes),
            self.unread_segments,
            format_bytes(self.unread_bytes),
            format_bytes(self.unread_brotli_bytes),
        );
        if !self.largest_unread.is_empty() {
            out.push_str("largest unread segments     address       bytes  text\n");
            for segment in &self.largest_unread {
                out.push_str(&format!(
                    "  {:>32}  {:>10}  {:?}\n",
                    format!("{:#x}", segment.address),
                    format_bytes(segment.bytes),
                    segment.text
                ));
            }
        }
        out
    }
}

/// Runs every sample of the Python bundle at `dir` on its runtime instrumented to report its
/// memory reads, and attributes them to the runtime's data segments, listing the `top` largest
/// unread ones.
pub fn measure(dir: &Path, manifest: &PythonManifest, top: usize) -> Result<StaticDataReads> {
    let runtime_dir = crate::bundle::path_in(dir, PYTHON_RUNTIME_DIR)?;
    let runtime = crate::fsx::read(&runtime_dir.join("pyodide.asm.wasm"))?;
    let work = tempfile::tempdir().context("creating a directory for the instrumented runtime")?;
    let copy = work.path().join("pyodide");
    std::fs::create_dir(&copy).context("creating a directory for the instrumented runtime")?;
    for entry in std::fs::read_dir(&runtime_dir)
        .with_context(|| format!("reading {}", runtime_dir.display()))?
    {
        let entry = entry.with_context(|| format!("reading {}", runtime_dir.display()))?;
        if entry.file_name() != "pyodide.asm.wasm" {
            std::fs::copy(entry.path(), copy.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    crate::fsx::write(
        &copy.join("pyodide.asm.wasm"),
        &instrument(&runtime).context("instrumenting pyodide.asm.wasm's memory reads")?,
    )?;
    let segments = active_data_segments(&runtime)?;
    let end = segments
        .iter()
        .map(|s| s.address + s.data.len())
        .max()
        .unwrap_or(0);
    let reads = work.path().join("reads.bin");
    let samples = crate::bundle::path_in(dir, PYTHON_SAMPLES_FILE)?;
    let config = RunConfig {
        entry: &manifest.project.entry,
        samples: &samples,
        passes: 0,
        packages: &manifest.shake.packages,
    };
    run::pyodide(
        &copy,
        &copy.join(PYTHON_APP_ARCHIVE),
        Mode::Measure,
        &config,
        &Boot {
            static_reads: Some((end, &reads)),
            ..Boot::default()
        },
    )
    .context("running every sample on the runtime instrumented to report its memory reads")?;
    let read = crate::fsx::read(&reads)?;
    attribute(&segments, &read, top)
}

/// Maps `read` (one byte per address from 0, non-zero where something read it) onto the
/// runtime's active data `segments`.
fn attribute(segments: &[DataSegment], read: &[u8], top: usize) -> Result<StaticDataReads> {
    let was_read = |address: usize| read.get(address).is_some_and(|&b| b != 0);
    let mut report = StaticDataReads {
        segments: segments.len(),
        bytes: segments.iter().map(|s| s.data.len() as u64).sum(),
        read_bytes: 0,
        unread_segments: 0,
        unread_bytes: 0,
        unread_brotli_bytes: 0,
        largest_unread: Vec::new(),
    };
    let mut unread = Vec::new();
    let mut unread_data = Vec::new();
    for segment in segments {
        let span = segment.address..segment.address + segment.data.len();
        let read_here = span.filter(|&a| was_read(a)).count() as u64;
        report.read_bytes += read_here;
        if read_here == 0 {
            unread_data.extend_from_slice(segment.data);
            unread.push(segment);
        }
    }
    report.unread_segments = unread.len();
    report.unread_bytes = unread_data.len() as u64;
    report.unread_brotli_bytes = crate::measure::sizes::sizes(&unread_data)?.brotli_bytes;
    unread.sort_by_key(|s| (std::cmp::Reverse(s.data.len()), s.address));
    report.largest_unread = unread
        .iter()
        .take(top)
        .map(|s| UnreadSegment {
            address: s.address as u64,
            bytes: s.data.len() as u64,
            text: longest_text(s.data),
        })
        .collect();
    Ok(report)
}

/// The longest run of printable ASCII in `data`, cut to 60 characters.
fn longest_text(data: &[u8]) -> String {
    let longest = data
        .split(|b| !(b.is_ascii_graphic() || *b == b' '))
        .max_by_key(|run| run.len())
        .unwrap_or_default();
    String::from_utf8_lossy(&longest[..longest.len().min(60)]).into_owned()
}

/// `wasm` with a call to the imported [`READ_HOOK`] before every read of memory 0: each load
/// (with its effective address and size) and each `memory.copy` from it (source and length).
pub fn instrument(wasm: &[u8]) -> Result<Vec<u8>> {
    let mut module = ModuleConfig::new()
        .generate_producers_section(false)
        .parse(wasm)
        .context("parsing the module")?;
    let Some(memory) = module.memories.iter().next().map(|m| m.id()) else {
        bail!("the module has no memory");
    };
    let hook_type = module.types.add(&[ValType::I32, ValType::I32], &[]);
    let (hook, _) = module.add_import_func(READ_HOOK.0, READ_HOOK.1, hook_type);
    let mut visitor = ReadHooks {
        hook,
        memory,
        address: module.locals.add(ValType::I32),
        length: module.locals.add(ValType::I32),
        unsupported: None,
    };
    for (_, function) in module.funcs.iter_local_mut() {
        let entry = function.entry_block();
        walrus::ir::dfs_pre_order_mut(&mut visitor, function, entry);
    }
    if let Some(what) = visitor.unsupported {
        bail!("the module reads memory with {what}, which is not instrumented");
    }
    Ok(module.emit_wasm())
}

/// Inserts the hook call before each read of `memory`, in every instruction sequence.
struct ReadHooks {
    hook: FunctionId,
    memory: MemoryId,
    /// Scratch locals (locals are per module in walrus, and each function that uses one gets its
    /// own): the load's address, the copy's length.
    address: LocalId,
    length: LocalId,
    unsupported: Option<&'static str>,
}

impl ReadHooks {
    /// Stack `[address]` → the hook called with (address + offset, size) → `[address]`.
    fn before_load(&self, offset: u64, size: i32) -> Vec<Instr> {
        vec![
            Instr::LocalTee(LocalTee {
                local: self.address,
            }),
            Instr::Const(Const {
                value: Value::I32(offset as u32 as i32),
            }),
            Instr::Binop(Binop {
                op: BinaryOp::I32Add,
            }),
            Instr::Const(Const {
                value: Value::I32(size),
            }),
            Instr::Call(Call { func: self.hook }),
            Instr::LocalGet(LocalGet {
                local: self.address,
            }),
        ]
    }

    /// Stack `[dst, src, len]` → the hook called with (src, len) → `[dst, src, len]`.
    fn before_copy(&self) -> Vec<Instr> {
        let get = |local| Instr::LocalGet(LocalGet { local });
        vec![
            Instr::LocalSet(LocalSet { local: self.length }),
            Instr::LocalTee(LocalTee {
                local: self.address,
            }),
            get(self.length),
            Instr::Call(Call { func: self.hook }),
            get(self.address),
            get(self.length),
        ]
    }
}

impl VisitorMut for ReadHooks {
    fn start_instr_seq_mut(&mut self, seq: &mut InstrSeq) {
        let original = std::mem::take(&mut seq.instrs);
        seq.instrs.reserve(original.len());
        for (instr, location) in original {
            let before = match &instr {
                Instr::Load(Load { memory, kind, arg }) if *memory == self.memory => {
                    self.before_load(arg.offset, load_size(kind))
                }
                Instr::LoadSimd(LoadSimd { memory, kind, arg }) if *memory == self.memory => {
                    match simd_load_size(kind) {
                        Some(size) => self.before_load(arg.offset, size),
                        None => {
                            self.unsupported = Some("a v128 lane load");
                            Vec::new()
                        }
                    }
                }
                Instr::MemoryCopy(MemoryCopy { src, .. }) if *src == self.memory => {
                    self.before_copy()
                }
                Instr::AtomicRmw(_) | Instr::Cmpxchg(_) => {
                    self.unsupported = Some("an atomic read-modify-write");
                    Vec::new()
                }
                _ => Vec::new(),
            };
            seq.instrs
                .extend(before.into_iter().map(|i| (i, InstrLocId::default())));
            seq.instrs.push((instr, location));
        }
    }
}

fn load_size(kind: &LoadKind) -> i32 {
    match kind {
        LoadKind::I32_8 { .. } | LoadKind::I64_8 { .. } => 1,
        LoadKind::I32_16 { .. } | LoadKind::I64_16 { .. } => 2,
        LoadKind::I32 { .. } | LoadKind::F32 | LoadKind::I64_32 { .. } => 4,
        LoadKind::I64 { .. } | LoadKind::F64 => 8,
        LoadKind::V128 => 16,
    }
}

/// The bytes a SIMD load reads; `None` for lane loads, whose stack holds a vector too.
fn simd_load_size(kind: &LoadSimdKind) -> Option<i32> {
    use LoadSimdKind::*;
    Some(match kind {
        Splat8 => 1,
        Splat16 => 2,
        Splat32 | V128Load32Zero => 4,
        Splat64 | V128Load64Zero => 8,
        V128Load8x8S | V128Load8x8U | V128Load16x4S | V128Load16x4U | V128Load32x2S
        | V128Load32x2U => 8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads at 1024 (4 bytes through an offset), 2000 (1 byte, in a block), copies 3 bytes from
    /// 3000; stores to 1500 and never reads it.
    const MODULE: &str = r#"(module
        (import "env" "log" (func $log (param i32)))
        (memory (export "memory") 1)
        (data (i32.const 1024) "\01\02\03\04\05\06\07\08")
        (data (i32.const 1500) "stored, never read")
        (data (i32.const 2000) "\2a")
        (data (i32.const 3000) "abcdef")
        (func (export "run") (result i32)
            (i32.store (i32.const 1500) (i32.const 7))
            (memory.copy (i32.const 8000) (i32.const 3000) (i32.const 3))
            (block (result i32)
                (i32.add
                    (i32.load offset=24 (i32.const 1000))
                    (i32.load8_u (i32.const 2000))))))"#;

    /// Runs `wasm`'s `run` in Node with the hook recording each call; returns its result, the
    /// calls and the bytes at 8000..8003 after it.
    fn run_in_node(wasm: &[u8]) -> serde_json::Value {
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("m.wasm"), wasm).unwrap();
        let script = r#"
import { readFileSync } from "node:fs";
const calls = [];
const { instance } = await WebAssembly.instantiate(readFileSync("m.wasm"), {
  env: { log() {} },
  wpi_reads: { read: (address, bytes) => calls.push([address, bytes]) },
});
const result = instance.exports.run();
const copied = [...new Uint8Array(instance.exports.memory.buffer, 8000, 3)];
console.log(JSON.stringify({ result, calls, copied }));
"#;
        serde_json::from_str(&crate::python::run::node_script_in(work.path(), script)).unwrap()
    }

    #[test]
    fn every_read_calls_the_hook_and_the_module_computes_the_same() {
        let original = wat::parse_str(MODULE).unwrap();
        let instrumented = instrument(&original).unwrap();
        let ran = run_in_node(&instrumented);
        assert_eq!(ran["result"], 0x0403_0201 + 42);
        assert_eq!(ran["copied"], serde_json::json!([97, 98, 99]));
        assert_eq!(
            ran["calls"],
            serde_json::json!([[3000, 3], [1024, 4], [2000, 1]]),
            "the copy's source, then each load's effective address and size; no store"
        );
        // The original needs no hook and gives the same result.
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("m.wasm"), &original).unwrap();
        let ran = crate::python::run::node_script_in(
            work.path(),
            r#"import { readFileSync } from "node:fs";
const { instance } = await WebAssembly.instantiate(readFileSync("m.wasm"), { env: { log() {} } });
console.log(instance.exports.run());"#,
        );
        assert_eq!(ran.trim(), (0x0403_0201 + 42).to_string());
    }

    #[test]
    fn reads_are_attributed_to_segments() {
        let wasm = wat::parse_str(MODULE).unwrap();
        let mut read = vec![0u8; 4096];
        read[1024..1028].fill(1);
        read[2000] = 1;
        read[3000..3003].fill(1);
        let report = attribute(&active_data_segments(&wasm).unwrap(), &read, 5).unwrap();
        assert_eq!((report.segments, report.bytes), (4, 8 + 18 + 1 + 6));
        assert_eq!(report.read_bytes, 4 + 1 + 3);
        assert_eq!((report.unread_segments, report.unread_bytes), (1, 18));
        assert!(report.unread_brotli_bytes > 0);
        assert_eq!(
            report.largest_unread,
            [UnreadSegment {
                address: 1500,
                bytes: 18,
                text: "stored, never read".into()
            }]
        );
    }

    #[test]
    fn the_report_reads_as_text() {
        let report = StaticDataReads {
            segments: 14_579,
            bytes: 3_335_328,
            read_bytes: 506_755,
            unread_segments: 12_001,
            unread_bytes: 2_500_000,
            unread_brotli_bytes: 800_000,
            largest_unread: vec![UnreadSegment {
                address: 0x400,
                bytes: 414_485,
                text: "Return the absolute value".into(),
            }],
        };
        let text = report.human();
        assert!(
            text.contains("3.2 MiB in 14579 segments; boot and the samples read 494.9 KiB"),
            "{text}"
        );
        assert!(
            text.contains("not one byte read: 12001 segments, 2.4 MiB (781.2 KiB brotli)"),
            "{text}"
        );
        assert!(
            text.contains("0x400   404.8 KiB  \"Return the absolute value\""),
            "{text}"
        );
    }

    #[test]
    fn lane_loads_are_refused_by_name() {
        let wasm = wat::parse_str(
            r#"(module (memory 1) (func (param v128) (result v128)
                (v128.load8_lane 0 (i32.const 0) (local.get 0))))"#,
        )
        .unwrap();
        assert!(format!("{:#}", instrument(&wasm).unwrap_err()).contains("a v128 lane load"));
    }
}
