//! The memory snapshot as a bundle ships it: Pyodide's own (`makeMemorySnapshot`), with the
//! runtime's static data taken out and its zero pages left out. Every byte the runtime's data
//! segments write at instantiation is stored XORed with what they write, so static data the
//! interpreter never changed (most of it: rodata, type tables, strings) becomes zeros; then only
//! the 4 KiB pages of memory that are not all zeros are written (a third of them: the heap above
//! what Python uses, and the free heap zeroed before the snapshot, are zeros). The file is a
//! third the size to read and hash, and brotli has less to do. `shippedSnapshot` in
//! `templates/pyodide/runtime-hooks.js` puts the pages back into a zeroed buffer, and undoes the
//! XOR the moment the runtime is instantiated, when memory holds exactly those segments, before
//! Pyodide restores the snapshot.
//!
//! Layout: Pyodide's header up to its body, with its magic changed (so Pyodide refuses the file
//! as it ships); a bitmap of the body's pages, bit `i % 8` of byte `i / 8` set when page `i` is
//! written; those pages in order (the last one may be short); then a trailer of five
//! little-endian words: `start` and `end` of the XORed range (relative to the body), the FNV-1a
//! checksum of the memory it was XORed with, the body's length, and [`TRAILER_MAGIC`].

use crate::manifest::python::SnapshotStaticData;
use anyhow::{Context, Result, bail, ensure};
use wasmparser::{DataKind, Operator, Parser, Payload};

/// `makeMemorySnapshot`'s first word ("\0snp").
const PYODIDE_MAGIC: u32 = 0x706e_7300;
/// The first word of a snapshot as shipped ("\0wpi").
const SHIPPED_MAGIC: u32 = 0x6970_7700;
/// The trailer's last word ("wpi2").
const TRAILER_MAGIC: u32 = 0x3269_7077;
/// The granule of zero pages left out (as `runtime-hooks.js` reads them).
const PAGE: usize = 4096;

/// A snapshot ready to ship, and how much of the runtime's static data it no longer carries.
#[derive(Debug, Clone)]
pub struct EncodedSnapshot {
    pub bytes: Vec<u8>,
    pub static_data: SnapshotStaticData,
}

/// `snapshot` (as `makeMemorySnapshot` wrote it) with the static data of `runtime` (the
/// `pyodide.asm.wasm` that ships beside it) taken out and its zero pages left out.
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
    let mut body = snapshot
        .get(body_offset..)
        .filter(|body| body.len() >= end)
        .with_context(|| {
            format!("the memory snapshot is smaller than the runtime's static data (ends at {end})")
        })?
        .to_vec();
    let mut unchanged = 0;
    for (live, instantiated) in body[start..end].iter_mut().zip(&initial) {
        unchanged += u64::from(*live == *instantiated);
        *live ^= instantiated;
    }
    let pages: Vec<&[u8]> = body.chunks(PAGE).collect();
    let mut map = vec![0u8; pages.len().div_ceil(8)];
    let mut written = Vec::new();
    for (index, page) in pages.iter().enumerate() {
        if page.iter().any(|&b| b != 0) {
            map[index / 8] |= 1 << (index % 8);
            written.extend_from_slice(page);
        }
    }
    let mut bytes = Vec::with_capacity(body_offset + map.len() + written.len() + 20);
    bytes.extend_from_slice(&SHIPPED_MAGIC.to_le_bytes());
    bytes.extend_from_slice(&snapshot[4..body_offset]);
    bytes.extend_from_slice(&map);
    bytes.extend_from_slice(&written);
    let trailer = [
        start as u32,
        end as u32,
        checksum(&initial),
        body.len() as u32,
        TRAILER_MAGIC,
    ];
    for word in trailer {
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
    fn unchanged_static_data_ships_as_zeros_and_zero_pages_not_at_all() {
        let mut live = instantiated_memory();
        live[2001] = 9; // the program changed a static byte (page 0)
        live[40000] = 7; // and wrote to the heap (page 9)
        let snapshot = pyodide_snapshot(&live);
        let shipped = encode(&snapshot, &wat::parse_str(RUNTIME).unwrap()).unwrap();
        let (start, end) = (1024, 2004);
        assert_eq!(shipped.static_data.bytes, (end - start) as u64);
        assert_eq!(
            shipped.static_data.unchanged_bytes,
            (end - start - 1) as u64
        );
        let bytes = &shipped.bytes;
        assert_eq!(bytes[..4], SHIPPED_MAGIC.to_le_bytes());
        assert_eq!(
            bytes[4..64],
            snapshot[4..64],
            "the rest of the header is Pyodide's"
        );
        assert_eq!(
            bytes[64..66],
            [0b1, 0b10],
            "pages 0 and 9 of 16 are written"
        );
        let page_0 = &bytes[66..66 + PAGE];
        assert!(
            page_0
                .iter()
                .enumerate()
                .all(|(at, &b)| (b == 0) == (at != 2001)),
            "static data as instantiated is zeros"
        );
        assert_eq!(page_0[2001], 9 ^ 2);
        let page_9 = &bytes[66 + PAGE..66 + 2 * PAGE];
        assert_eq!(
            page_9,
            &live[9 * PAGE..10 * PAGE],
            "the heap ships as it is"
        );
        let trailer: Vec<u32> = bytes[66 + 2 * PAGE..]
            .chunks(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
            .collect();
        let initial = &instantiated_memory()[start..end];
        assert_eq!(
            trailer,
            [
                start as u32,
                end as u32,
                checksum(initial),
                live.len() as u32,
                TRAILER_MAGIC
            ]
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
    /// byte once the runtime is instantiated and Pyodide copies the body in (memory written since
    /// instantiation where the snapshot has zeros included), and refuses a runtime with other
    /// static data.
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
    const { instance } = await WebAssembly.instantiate(readFileSync(runtime), {});
    const heap = new Int8Array(instance.exports.memory.buffer);
    heap.fill(7, 20000, 20010); // written after instantiation, zeros in the snapshot
    // What Pyodide's restoreSnapshot does with the snapshot it is given.
    const header = shipped.snapshot;
    heap.set(header.subarray(new DataView(header.buffer).getUint32(4, true)));
    if (!shipped.restored) throw new Error("the pages were not put back");
    return Buffer.concat([header, new Uint8Array(heap.buffer)]);
  } finally {
    shipped.restore();
  }
};
writeFileSync("decoded.bin", await decode("runtime.wasm"));
console.log("set restored:", !Object.hasOwn(Int8Array.prototype, "set"));
try {
  await decode("other.wasm");
  console.log("decoded against another runtime");
} catch (e) {
  console.log(e.message);
}
"#
        );
        let stdout = crate::python::run::node_script_in(work.path(), &script);
        assert_eq!(
            std::fs::read(work.path().join("decoded.bin")).unwrap(),
            snapshot
        );
        assert!(
            stdout.contains("made for another pyodide.asm.wasm"),
            "{stdout}"
        );
        assert!(stdout.contains("set restored: true"), "{stdout}");
    }
}
