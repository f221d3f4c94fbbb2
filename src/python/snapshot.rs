//! The memory snapshot as a bundle ships it: Pyodide's own (`makeMemorySnapshot`), with the
//! runtime's static data taken out. Every byte the runtime's data segments write at
//! instantiation is stored XORed with what they write, so static data the interpreter never
//! changed (most of it: rodata, type tables, strings) ships as zeros and costs brotli almost
//! nothing. `shippedSnapshot` in `templates/pyodide/runtime-hooks.js` undoes it the moment the
//! runtime is instantiated, when memory holds exactly those segments, before Pyodide restores the
//! snapshot.
//!
//! Layout: Pyodide's header with its magic changed (so Pyodide refuses the file as it ships),
//! Pyodide's body XORed over `[start, end)`, then a trailer of four little-endian words:
//! `start`, `end`, the FNV-1a checksum of the memory XORed with, and [`TRAILER_MAGIC`].

use crate::manifest::python::SnapshotStaticData;
use anyhow::{Context, Result, bail, ensure};
use wasmparser::{DataKind, Operator, Parser, Payload};

/// `makeMemorySnapshot`'s first word ("\0snp").
const PYODIDE_MAGIC: u32 = 0x706e_7300;
/// The first word of a snapshot as shipped ("\0wpi").
const SHIPPED_MAGIC: u32 = 0x6970_7700;
/// The trailer's last word ("wpi1").
const TRAILER_MAGIC: u32 = 0x3169_7077;

/// A snapshot ready to ship, and how much of the runtime's static data it no longer carries.
#[derive(Debug, Clone)]
pub struct EncodedSnapshot {
    pub bytes: Vec<u8>,
    pub static_data: SnapshotStaticData,
}

/// `snapshot` (as `makeMemorySnapshot` wrote it) with the static data of `runtime` (the
/// `pyodide.asm.wasm` that ships beside it) taken out.
pub fn encode(snapshot: &[u8], runtime: &[u8]) -> Result<EncodedSnapshot> {
    let word = |at: usize| {
        snapshot
            .get(at..at + 4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
    };
    ensure!(
        word(0) == Some(PYODIDE_MAGIC),
        "the memory snapshot does not start with Pyodide's header"
    );
    let body_offset = word(4).context("the memory snapshot's header is cut short")? as usize;
    let (start, initial) = initial_static_data(runtime)?;
    let end = start + initial.len();
    let body = snapshot
        .get(body_offset..)
        .filter(|body| body.len() >= end)
        .with_context(|| {
            format!("the memory snapshot is smaller than the runtime's static data (ends at {end})")
        })?;
    let mut bytes = Vec::with_capacity(snapshot.len() + 16);
    bytes.extend_from_slice(&SHIPPED_MAGIC.to_le_bytes());
    bytes.extend_from_slice(&snapshot[4..body_offset + start]);
    let mut unchanged = 0;
    for (live, instantiated) in body[start..end].iter().zip(&initial) {
        unchanged += u64::from(live == instantiated);
        bytes.push(live ^ instantiated);
    }
    bytes.extend_from_slice(&body[end..]);
    for word in [start as u32, end as u32, checksum(&initial), TRAILER_MAGIC] {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    Ok(EncodedSnapshot {
        bytes,
        static_data: SnapshotStaticData {
            bytes: initial.len() as u64,
            unchanged_bytes: unchanged,
        },
    })
}

/// The memory the runtime's active data segments write at instantiation, from the first
/// segment's (4-aligned) start to the last one's (4-aligned) end: the bytes and where they start.
fn initial_static_data(runtime: &[u8]) -> Result<(usize, Vec<u8>)> {
    let segments = active_data_segments(runtime)?;
    let start = segments.iter().map(|s| s.address).min().unwrap_or(0) & !3;
    let end = segments
        .iter()
        .map(|s| s.address + s.data.len())
        .max()
        .unwrap_or(0)
        .next_multiple_of(4);
    let mut memory = vec![0; end.saturating_sub(start)];
    // In section order, as instantiation writes them: a later segment wins where they overlap.
    for segment in segments {
        let at = segment.address - start;
        memory[at..at + segment.data.len()].copy_from_slice(segment.data);
    }
    Ok((start, memory))
}

/// One active data segment of memory 0: where instantiation writes it, and what.
pub(crate) struct DataSegment<'a> {
    pub address: usize,
    pub data: &'a [u8],
}

/// The runtime's active data segments for memory 0, in section order. Each must be placed by a
/// constant, as Emscripten's main modules place them.
pub(crate) fn active_data_segments(runtime: &[u8]) -> Result<Vec<DataSegment<'_>>> {
    let mut segments = Vec::new();
    for payload in Parser::new(0).parse_all(runtime) {
        let Payload::DataSection(reader) = payload.context("reading pyodide.asm.wasm")? else {
            continue;
        };
        for (index, segment) in reader.into_iter().enumerate() {
            let segment = segment.context("reading pyodide.asm.wasm's data section")?;
            let DataKind::Active {
                memory_index: 0,
                offset_expr,
            } = segment.kind
            else {
                continue;
            };
            let mut operators = offset_expr.get_operators_reader();
            let Operator::I32Const { value } = operators.read()? else {
                bail!(
                    "pyodide.asm.wasm's data segment {index} is placed by an expression, not a \
                     constant"
                );
            };
            segments.push(DataSegment {
                address: value as u32 as usize,
                data: segment.data,
            });
        }
    }
    Ok(segments)
}

/// FNV-1a over little-endian words, as `shippedSnapshot` computes it over live memory: whether
/// the runtime beside the snapshot is the one it was made for.
fn checksum(bytes: &[u8]) -> u32 {
    bytes.chunks_exact(4).fold(0x811c_9dc5, |hash, word| {
        (hash ^ u32::from_le_bytes(word.try_into().expect("4 bytes"))).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNTIME: &str = r#"(module
        (memory (export "memory") 1)
        (data (i32.const 1025) "static text the program never changes")
        (data (i32.const 2000) "\01\02\03\04")
        (data (i32.const 2002) "\ff"))"#;

    /// A snapshot as `makeMemorySnapshot` writes it: header, JSON, body (the whole memory).
    fn pyodide_snapshot(memory: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0; 64];
        bytes[..4].copy_from_slice(&PYODIDE_MAGIC.to_le_bytes());
        bytes[4..8].copy_from_slice(&64u32.to_le_bytes());
        bytes[48..52].copy_from_slice(b"{}  ");
        bytes.extend_from_slice(memory);
        bytes
    }

    fn instantiated_memory() -> Vec<u8> {
        let mut memory = vec![0; 65536];
        memory[1025..1025 + 37].copy_from_slice(b"static text the program never changes");
        memory[2000..2004].copy_from_slice(&[1, 2, 0xff, 4]);
        memory
    }

    #[test]
    fn unchanged_static_data_ships_as_zeros_and_the_rest_as_it_was() {
        let mut live = instantiated_memory();
        live[2001] = 9; // the program changed a static byte
        live[40000] = 7; // and wrote to the heap
        let snapshot = pyodide_snapshot(&live);
        let shipped = encode(&snapshot, &wat::parse_str(RUNTIME).unwrap()).unwrap();
        let (start, end) = (1024, 2004);
        assert_eq!(shipped.static_data.bytes, (end - start) as u64);
        assert_eq!(
            shipped.static_data.unchanged_bytes,
            (end - start - 1) as u64
        );
        assert_eq!(shipped.bytes.len(), snapshot.len() + 16);
        assert_eq!(shipped.bytes[..4], SHIPPED_MAGIC.to_le_bytes());
        assert_eq!(
            shipped.bytes[4..64],
            snapshot[4..64],
            "the rest of the header is Pyodide's"
        );
        let body = &shipped.bytes[64..64 + live.len()];
        assert!(
            body[start..end]
                .iter()
                .enumerate()
                .all(|(i, &b)| (b == 0) == (start + i != 2001))
        );
        assert_eq!(body[2001], 9 ^ 2);
        assert_eq!(
            body[end..],
            live[end..],
            "beyond the static data the memory ships as it is"
        );
        let trailer: Vec<u32> = shipped.bytes[shipped.bytes.len() - 16..]
            .chunks(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
            .collect();
        let initial = &instantiated_memory()[start..end];
        assert_eq!(
            trailer,
            [start as u32, end as u32, checksum(initial), TRAILER_MAGIC]
        );
    }

    #[test]
    fn what_encode_cannot_take_apart_is_an_error() {
        let runtime = wat::parse_str(RUNTIME).unwrap();
        let not_pyodide = encode(&[0; 128], &runtime).unwrap_err();
        assert!(format!("{not_pyodide:#}").contains("Pyodide's header"));
        let too_small = encode(&pyodide_snapshot(&[0; 1500]), &runtime).unwrap_err();
        assert!(format!("{too_small:#}").contains("smaller than the runtime's static data"));
        let placed = wat::parse_str(
            r#"(module (import "env" "base" (global i32)) (memory 1) (data (global.get 0) "x"))"#,
        )
        .unwrap();
        let placed = encode(&pyodide_snapshot(&[0; 4096]), &placed).unwrap_err();
        assert!(format!("{placed:#}").contains("placed by an expression"));
    }

    /// The loader's decoder (runtime-hooks.js, in Node) gives back Pyodide's snapshot byte for
    /// byte once the runtime is instantiated, and refuses a runtime with other static data.
    #[test]
    fn runtime_hooks_decode_what_encode_wrote() {
        let work = tempfile::tempdir().unwrap();
        let mut live = instantiated_memory();
        live[1030] = b'X';
        live[50000..50004].copy_from_slice(b"heap");
        let snapshot = pyodide_snapshot(&live);
        let runtime = wat::parse_str(RUNTIME).unwrap();
        let other = wat::parse_str(RUNTIME.replace("never changes", "never CHANGES")).unwrap();
        let shipped = encode(&snapshot, &runtime).unwrap();
        for (name, bytes) in [
            ("shipped.bin", &shipped.bytes),
            ("runtime.wasm", &runtime),
            ("other.wasm", &other),
        ] {
            std::fs::write(work.path().join(name), bytes).unwrap();
        }
        let script = format!(
            "{}\n{}",
            include_str!("../../templates/pyodide/runtime-hooks.js"),
            r#"
import { readFileSync, writeFileSync } from "node:fs";
const decode = async (runtime) => {
  const shipped = shippedSnapshot(readFileSync("shipped.bin"));
  try {
    await WebAssembly.instantiate(readFileSync(runtime), {});
    return shipped.snapshot;
  } finally {
    shipped.restore();
  }
};
writeFileSync("decoded.bin", await decode("runtime.wasm"));
try {
  await decode("other.wasm");
  console.log("decoded against another runtime");
} catch (e) {
  console.log(e.message);
}
"#
        );
        std::fs::write(work.path().join("decode.mjs"), script).unwrap();
        let output = std::process::Command::new("node")
            .arg("decode.mjs")
            .current_dir(work.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            std::fs::read(work.path().join("decoded.bin")).unwrap(),
            snapshot
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("made for another pyodide.asm.wasm"),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}
