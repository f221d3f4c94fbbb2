//! What both kinds of manifest record the same way: files, sizes, parity, the machine, budgets,
//! and the build settings and tensor shapes a manifest quotes from its inputs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the bundle directory, `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// Subresource-integrity string for `<script integrity>` / `fetch(..., {integrity})`.
    pub sri: String,
}

/// Byte counts of one artifact, raw and as each compressor would ship it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Sizes {
    pub raw_bytes: u64,
    /// zstd level 19.
    pub zstd_bytes: u64,
    /// gzip level 9.
    pub gzip_bytes: u64,
    /// brotli quality 11, window 22: what a browser downloads from a well-configured server.
    pub brotli_bytes: u64,
}

/// WASM against native (CPU path) on every sample.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Parity {
    pub samples: usize,
    pub tolerance: f64,
    /// Largest absolute difference over all output elements.
    pub max_abs_diff: f64,
    /// Samples whose largest output element is the same in both variants.
    pub argmax_agree: usize,
    /// Samples beyond tolerance, or whose argmax differs.
    pub mismatched_samples: Vec<usize>,
    pub passed: bool,
    pub per_sample: PerSampleParity,
}

/// How a re-run's parity compares with the one a manifest records.
#[derive(Debug, Clone, PartialEq)]
pub enum Reproduction {
    /// The same figures, to the bit.
    Exact,
    /// Every sample still within tolerance with the same argmax in both variants, by figures that
    /// moved: the native variant may sum in another order on another CPU, or across threads.
    WithinTolerance { max_abs_diff: f64 },
    /// What departs from the record, for a message.
    Differs(String),
}

impl Parity {
    /// Whether `rerun` reproduces this recorded parity. The WASM variant is deterministic, so its
    /// argmax must not move; the distance between the variants may, but only within tolerance,
    /// and only for a record that passed (a failing record must come out the same again).
    pub fn reproduced_by(&self, rerun: &Parity) -> Reproduction {
        if rerun == self {
            return Reproduction::Exact;
        }
        if self.samples != rerun.samples || self.tolerance != rerun.tolerance {
            return Reproduction::Differs("in the summary".into());
        }
        let (a, b) = (&self.per_sample, &rerun.per_sample);
        let moved = |figure: fn(&PerSampleParity, usize) -> Option<f64>| {
            (0..self.samples).find(|&i| figure(a, i) != figure(b, i))
        };
        let argmax_moved = moved(|p, i| Some(*p.argmax_wasm.get(i)? as f64))
            .into_iter()
            .chain(moved(|p, i| Some(*p.argmax_native.get(i)? as f64)))
            .min();
        if let Some(i) = argmax_moved {
            return Reproduction::Differs(format!("first at sample {i}"));
        }
        let (tolerance, recorded_diff) = (self.tolerance, &a.max_abs_diff);
        let drifted_past_tolerance = (0..self.samples).find(|&i| {
            let (was, now) = (recorded_diff.get(i), b.max_abs_diff.get(i));
            // Written so a NaN or a missing figure counts as drift.
            !was.zip(now)
                .is_some_and(|(was, now)| (was - now).abs() <= tolerance)
        });
        match (self.passed, rerun.passed) {
            (true, true) => match drifted_past_tolerance {
                Some(i) => Reproduction::Differs(format!("first at sample {i}")),
                None => Reproduction::WithinTolerance {
                    max_abs_diff: rerun.max_abs_diff,
                },
            },
            (true, false) => Reproduction::Differs(format!(
                "first at sample {}, now beyond the tolerance",
                rerun.mismatched_samples.first().copied().unwrap_or(0)
            )),
            _ => Reproduction::Differs(
                moved(|p, i| p.max_abs_diff.get(i).copied())
                    .map_or("in the summary".to_string(), |i| {
                        format!("first at sample {i}")
                    }),
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PerSampleParity {
    pub max_abs_diff: Vec<f64>,
    pub argmax_wasm: Vec<usize>,
    pub argmax_native: Vec<usize>,
}

/// A timing distribution in microseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    pub runs: usize,
    pub median_us: f64,
    pub p95_us: f64,
    pub min_us: f64,
}

/// Whether the CUDA driver on the measuring machine sees a device.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CudaPresence {
    pub available: bool,
    /// `2 devices, driver 13.0`, or why none is usable.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub cpu: String,
    pub cores: usize,
    pub os: String,
    pub rustc: String,
    /// The engine the WASM variant was measured in.
    pub wasm_engine: String,
    pub binaryen: String,
    /// Unix time the measurement finished.
    pub measured_at_unix: u64,
}

/// Where a browser measurement ran.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrowserEnvironment {
    /// `chromium --version`.
    pub browser: String,
    pub user_agent: String,
    /// Served with COOP/COEP, so `performance.now()` is fine-grained (5 µs, not 100 µs).
    pub cross_origin_isolated: bool,
    /// The smallest step `performance.now()` took in the page.
    pub timer_resolution_us: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrowserSteady {
    pub batch: usize,
    /// Each run times this many back-to-back calls and records their mean, so a call shorter
    /// than the timer's resolution is still measured.
    pub calls_per_run: usize,
    pub latency: Distribution,
    pub samples_per_second: f64,
    /// A kernel call's copy into linear memory, `wpi_infer` and copy out, timed apart through
    /// the loader's own steps (medians, µs); absent for Pyodide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferBreakdown>,
}

/// Element type of a tensor, little-endian on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F64 | Self::I64 => 8,
        }
    }

    /// Decodes little-endian elements as f64, for parity comparisons across variants.
    pub fn decode(self, bytes: &[u8]) -> Vec<f64> {
        fn each<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f64) -> Vec<f64> {
            bytes
                .chunks_exact(N)
                .map(|c| f(c.try_into().expect("chunks_exact")))
                .collect()
        }
        match self {
            Self::F32 => each(bytes, |b| f32::from_le_bytes(b) as f64),
            Self::F64 => each(bytes, f64::from_le_bytes),
            Self::I8 => each(bytes, |b: [u8; 1]| b[0] as i8 as f64),
            Self::U8 => each(bytes, |b: [u8; 1]| b[0] as f64),
            Self::I16 => each(bytes, |b| i16::from_le_bytes(b) as f64),
            Self::U16 => each(bytes, |b| u16::from_le_bytes(b) as f64),
            Self::I32 => each(bytes, |b| i32::from_le_bytes(b) as f64),
            Self::U32 => each(bytes, |b| u32::from_le_bytes(b) as f64),
            Self::I64 => each(bytes, |b| i64::from_le_bytes(b) as f64),
        }
    }
}

/// Shape and element type of one sample.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

impl TensorSpec {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn bytes(&self) -> usize {
        self.elements() * self.dtype.size()
    }
}

/// Settings of the cargo profile both variants are built with.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CargoSettings {
    /// "0".."3", "s" or "z", as in Cargo.toml.
    pub opt_level: String,
    pub lto: bool,
    pub codegen_units: u32,
    /// "abort" or "unwind".
    pub panic: String,
}

/// A post-MVP WebAssembly feature, named as binaryen names it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum WasmFeature {
    SignExt,
    MutableGlobals,
    NontrappingFloatToInt,
    BulkMemory,
    Multivalue,
    ReferenceTypes,
    Simd,
    /// Relaxed SIMD (`f32x4.relaxed_madd` and friends): results may differ between engines in
    /// the last bits, so parity is checked within the kernel's tolerance.
    RelaxedSimd,
    ExceptionHandling,
    TailCall,
}

/// A limit as written: a number, or a number with a unit (`"40 KiB"`, `"1.5 ms"`, `"100 µs"`).
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Limit {
    Number(f64),
    Text(String),
}

/// Written by hand so that a wrong value says what a limit looks like, where an untagged enum
/// would say only "data did not match any variant".
impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        impl serde::de::Visitor<'_> for LimitVisitor {
            type Value = Limit;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(LIMIT_SHAPE)
            }
            fn visit_f64<E>(self, v: f64) -> Result<Limit, E> {
                Ok(Limit::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Limit, E> {
                Ok(Limit::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Limit, E> {
                Ok(Limit::Number(v as f64))
            }
            fn visit_str<E>(self, v: &str) -> Result<Limit, E> {
                Ok(Limit::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(LimitVisitor)
    }
}

pub(crate) const LIMIT_SHAPE: &str =
    "a limit: a number, or a string with a unit such as \"40 KiB\", \"1.5 ms\" or \"100 us\"";

/// Budgets by flattened metric name (`variant.metric`).
pub type Budgets = BTreeMap<String, Limit>;

/// Where one call spent its time: copying its input in, the work itself, copying the output
/// out (host ↔ device for CUDA, host ↔ linear memory for WASM, JS ↔ Python for Pyodide).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransferBreakdown {
    /// Copying the input in: host → device, into the sandbox's linear memory, or JS → Python.
    pub upload_us: f64,
    /// Kernels on the device, `wpi_infer` in the sandbox, or the Python entry.
    pub compute_us: f64,
    /// Copying the output out: device → host, out of linear memory, or Python → JS.
    pub download_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_decodes_little_endian() {
        assert_eq!(Dtype::F32.decode(&1.5f32.to_le_bytes()), vec![1.5]);
        assert_eq!(Dtype::I8.decode(&[0xff]), vec![-1.0]);
        assert_eq!(Dtype::U16.decode(&[0x01, 0x02]), vec![513.0]);
    }

    fn parity(diffs: &[f64], argmax_native: &[usize], tolerance: f64) -> Parity {
        let argmax_wasm = vec![1; diffs.len()];
        let mismatched_samples: Vec<usize> = (0..diffs.len())
            .filter(|&i| diffs[i] > tolerance || argmax_native[i] != argmax_wasm[i])
            .collect();
        Parity {
            samples: diffs.len(),
            tolerance,
            max_abs_diff: diffs.iter().copied().fold(0.0, f64::max),
            argmax_agree: diffs.len() - mismatched_samples.len(),
            passed: mismatched_samples.is_empty(),
            mismatched_samples,
            per_sample: PerSampleParity {
                max_abs_diff: diffs.to_vec(),
                argmax_wasm,
                argmax_native: argmax_native.to_vec(),
            },
        }
    }

    #[test]
    fn parity_reproduces_within_tolerance_but_not_past_it() {
        let recorded = parity(&[1.2e-8, 0.0, 3.1e-8], &[1, 1, 1], 1e-5);
        assert_eq!(
            recorded.reproduced_by(&recorded.clone()),
            Reproduction::Exact
        );
        let drifted = parity(&[2.4e-8, 1e-9, 3.1e-8], &[1, 1, 1], 1e-5);
        assert_eq!(
            recorded.reproduced_by(&drifted),
            Reproduction::WithinTolerance {
                max_abs_diff: 3.1e-8
            }
        );
        let beyond = parity(&[1.2e-8, 0.0, 2e-5], &[1, 1, 1], 1e-5);
        assert_eq!(
            recorded.reproduced_by(&beyond),
            Reproduction::Differs("first at sample 2, now beyond the tolerance".into())
        );
        // A record edited to a figure no re-run could drift to.
        let mut edited = recorded.clone();
        edited.per_sample.max_abs_diff[1] = 0.5;
        assert_eq!(
            edited.reproduced_by(&recorded),
            Reproduction::Differs("first at sample 1".into())
        );
        let argmax = parity(&[1.2e-8, 0.0, 3.1e-8], &[1, 0, 1], 1e-5);
        assert_eq!(
            recorded.reproduced_by(&argmax),
            Reproduction::Differs("first at sample 1".into())
        );
        let looser = parity(&[1.2e-8, 0.0, 3.1e-8], &[1, 1, 1], 1e-3);
        assert_eq!(
            recorded.reproduced_by(&looser),
            Reproduction::Differs("in the summary".into())
        );
        // A record that failed must fail the same way again.
        let failed = parity(&[0.5, 0.0], &[1, 1], 1e-5);
        let other = parity(&[0.25, 0.0], &[1, 1], 1e-5);
        assert_eq!(
            failed.reproduced_by(&other),
            Reproduction::Differs("first at sample 0".into())
        );
    }

    #[test]
    fn recorded_figures_read_back_to_the_bit() {
        // f32 differences such as these once read back one ULP off, so verify saw a change.
        let diffs = [
            1.4901161193847656e-8,
            5.960464477539063e-8,
            2.9802322387695312e-8,
        ];
        let recorded = parity(&diffs, &[1, 1, 1], 1e-5);
        let text = serde_json::to_string(&recorded).unwrap();
        assert_eq!(serde_json::from_str::<Parity>(&text).unwrap(), recorded);
        for x in (0..2000u32).map(|i| f32::from_bits(0x3300_0000 + i * 7919) as f64) {
            let back: f64 = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e}");
        }
    }
}
