//! Byte counts: raw, and as each compressor a host or CDN would use ships them.

use crate::manifest::Sizes;
use anyhow::{Context, Result};
use std::io::Write;

pub const ZSTD_LEVEL: i32 = 19;
pub const GZIP_LEVEL: u32 = 9;
pub const BROTLI_QUALITY: u32 = 11;
pub const BROTLI_WINDOW: u32 = 22;

pub fn zstd(bytes: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::compress(bytes, ZSTD_LEVEL).context("zstd compression")
}

/// gzip at [`GZIP_LEVEL`], with no file name and a zero timestamp in its header: the same bytes
/// in give the same bytes out.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
    gzip.write_all(bytes).context("gzip compression")?;
    gzip.finish().context("gzip compression")
}

/// Compressed sizes, the three compressors on their own threads: brotli-11 of a multi-megabyte
/// runtime or memory snapshot takes tens of seconds alone.
pub fn sizes(bytes: &[u8]) -> Result<Sizes> {
    let gzip_len = || -> Result<u64> { Ok(gzip(bytes)?.len() as u64) };
    let brotli_len = || -> Result<u64> {
        let mut brotli = Vec::new();
        let params = brotli::enc::BrotliEncoderParams {
            quality: BROTLI_QUALITY as i32,
            lgwin: BROTLI_WINDOW as i32,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut &bytes[..], &mut brotli, &params)
            .context("brotli compression")?;
        Ok(brotli.len() as u64)
    };
    let (gzip_bytes, brotli_bytes, zstd_bytes) = std::thread::scope(|scope| {
        let gzip = scope.spawn(gzip_len);
        let brotli = scope.spawn(brotli_len);
        let zstd_bytes = zstd(bytes).map(|z| z.len() as u64);
        let join = |handle: std::thread::ScopedJoinHandle<'_, Result<u64>>| {
            handle
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a compressor thread panicked")))
        };
        (join(gzip), join(brotli), zstd_bytes)
    });
    Ok(Sizes {
        raw_bytes: bytes.len() as u64,
        zstd_bytes: zstd_bytes?,
        gzip_bytes: gzip_bytes?,
        brotli_bytes: brotli_bytes?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitive_input_compresses_and_roundtrips() {
        let input = b"wasmpack ".repeat(1000);
        let sizes = sizes(&input).unwrap();
        assert_eq!(sizes.raw_bytes, 9000);
        for compressed in [sizes.zstd_bytes, sizes.gzip_bytes, sizes.brotli_bytes] {
            assert!(compressed < 200, "{sizes:?}");
        }
        assert_eq!(
            zstd::bulk::decompress(&zstd(&input).unwrap(), 10_000).unwrap(),
            input
        );
    }
}
