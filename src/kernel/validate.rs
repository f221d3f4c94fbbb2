//! Stage 4: the final module must be valid for the target runtime and compute exactly what the
//! module cargo built computes.

use crate::manifest::variant::{SimdLevel, VariantAgreement};
use crate::manifest::{TensorSpec, WasmFeature};
use crate::measure::parity;
use crate::measure::runner::KernelRunner;
use crate::measure::timing::SampleSet;
use crate::measure::wasm::WasmHost;
use crate::profile::wasmparser_features;
use anyhow::{Context, Result, bail};

#[derive(Debug, Clone)]
pub struct Validated {
    pub differential_samples: usize,
}

/// Validates `final_wasm` with wasmparser against `features`.
pub fn validate_module(final_wasm: &[u8], features: &[WasmFeature]) -> Result<()> {
    wasmparser::Validator::new_with_features(wasmparser_features(features))
        .validate_all(final_wasm)
        .context("the final module does not validate for the profile's runtime features")?;
    Ok(())
}

/// Runs every sample through both modules and fails on the first output that is not
/// bit-identical, naming the sample.
pub fn differential_run(
    host: &WasmHost,
    built_wasm: &[u8],
    final_wasm: &[u8],
    samples: &[u8],
    input_bytes: usize,
    output_bytes: usize,
) -> Result<Validated> {
    let mut reference = host
        .load_unshaken(built_wasm)
        .context("running the module as cargo built it")?;
    let mut candidate = host.load(final_wasm).context("running the final module")?;
    reference
        .init()
        .context("running the module as cargo built it")?;
    candidate.init().context("running the final module")?;
    let count = samples.len() / input_bytes;
    let mut expected = vec![0u8; output_bytes];
    let mut got = vec![0u8; output_bytes];
    for (index, sample) in samples.chunks_exact(input_bytes).enumerate() {
        reference
            .infer_into(sample, &mut expected)
            .with_context(|| format!("sample {index} on the module as cargo built it"))?;
        candidate
            .infer_into(sample, &mut got)
            .with_context(|| format!("sample {index} on the final module"))?;
        if expected != got {
            let byte = expected
                .iter()
                .zip(&got)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            bail!(
                "the shaken and optimized module computes a different result for sample {index} \
                 (first difference at output byte {byte}); refusing to ship it"
            );
        }
    }
    Ok(Validated {
        differential_samples: count,
    })
}

/// Every sample's output from `wasm`, run as one batch.
pub fn outputs(host: &WasmHost, wasm: &[u8], samples: &SampleSet) -> Result<Vec<u8>> {
    let count = samples.data.len() / samples.input_bytes;
    let mut kernel = host.load(wasm)?;
    kernel.init()?;
    kernel
        .infer(samples.data, count, samples.output_bytes)
        .context("running every sample")
}

/// Compares a variant's outputs with the reference variant's on every sample: bit for bit where
/// they are, else within `tolerance` with the same argmax (SIMD code may sum in another order;
/// relaxed SIMD rounds as each engine chooses). Beyond that the variant is refused.
pub fn agreement(
    host: &WasmHost,
    (reference, expected): (SimdLevel, &[u8]),
    (level, wasm): (SimdLevel, &[u8]),
    samples: &SampleSet,
    output: &TensorSpec,
    tolerance: f64,
) -> Result<VariantAgreement> {
    let got = outputs(host, wasm, samples)?;
    let count = samples.data.len() / samples.input_bytes;
    let compared = parity::compare(&got, expected, output.dtype, count, tolerance);
    if !compared.passed {
        let first = compared.mismatched_samples[0];
        bail!(
            "the {level} variant disagrees with the {reference} variant on {} of {count} samples \
             (first: sample {first}, max |difference| {:.3e}); tolerance is {tolerance:e}; \
             refusing to ship it",
            compared.mismatched_samples.len(),
            compared.per_sample.max_abs_diff[first],
        );
    }
    let bit_exact = got == expected;
    let judged = if bit_exact {
        "bit-exact".to_string()
    } else if level.is_nondeterministic() {
        format!(
            "within tolerance {tolerance:e}: {level} may round differently on each engine, so it \
             is never compared bit for bit"
        )
    } else {
        format!("within tolerance {tolerance:e}")
    };
    Ok(VariantAgreement {
        reference,
        samples: count,
        bit_exact,
        max_abs_diff: compared.max_abs_diff,
        judged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNEL: &str = r#"(module
        (memory (export "memory") 1)
        (func (export "wpi_abi_version") (result i32) i32.const 1)
        (func (export "wpi_alloc") (param i32) (result i32) i32.const 1024)
        (func (export "wpi_free") (param i32 i32))
        (func (export "wpi_infer") (param $in i32) (param $len i32) (param $out i32) (param $cap i32) (result i32)
          local.get $out local.get $in i32.load i32.const MUL i32.mul i32.store
          i32.const 4))"#;

    fn kernel(mul: i32) -> Vec<u8> {
        wat::parse_str(KERNEL.replace("MUL", &mul.to_string())).unwrap()
    }

    #[test]
    fn identical_modules_pass() {
        let host = WasmHost::new().unwrap();
        let samples: Vec<u8> = [1i32, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let validated = differential_run(&host, &kernel(3), &kernel(3), &samples, 4, 4).unwrap();
        assert_eq!(validated.differential_samples, 3);
    }

    #[test]
    fn a_different_result_names_the_sample() {
        let host = WasmHost::new().unwrap();
        // 0 * 3 == 0 * 5, so the first sample agrees and the second does not.
        let samples: Vec<u8> = [0i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let err = differential_run(&host, &kernel(3), &kernel(5), &samples, 4, 4).unwrap_err();
        assert!(err.to_string().contains("sample 1"), "{err}");
    }

    /// Regression (differential test, wasm-smith seed 5299): binaryen 116 `-O3` drops an empty
    /// active segment whose offset is out of bounds, so the optimized module instantiates where
    /// the original traps. The differential run must refuse such a pair.
    #[test]
    fn an_instantiation_trap_removed_by_wasm_opt_is_refused() {
        let built = wat::parse_str(KERNEL.replace("MUL", "3").replace(
            "(memory (export \"memory\") 1)",
            "(memory (export \"memory\") 1) (table 10 funcref) (elem (i32.const -5) func)",
        ))
        .unwrap();
        let settings = crate::profile::Profile::load("browser").unwrap().wasm;
        let optimized = crate::kernel::optimize::optimize(&built, &settings, false)
            .unwrap()
            .wasm;
        let host = WasmHost::new().unwrap();
        assert!(
            host.load(&built).is_err(),
            "the original traps at instantiation"
        );
        let samples = 2i32.to_le_bytes();
        assert!(differential_run(&host, &built, &optimized, &samples, 4, 4).is_err());
    }

    #[test]
    fn a_variant_is_compared_with_the_reference_and_refused_beyond_tolerance() {
        let host = WasmHost::new().unwrap();
        // The test kernel takes one sample a call.
        let data = 2i32.to_le_bytes();
        let samples = SampleSet {
            data: &data,
            input_bytes: 4,
            output_bytes: 4,
        };
        let output = TensorSpec {
            dtype: crate::manifest::Dtype::I32,
            shape: vec![1],
        };
        let reference = outputs(&host, &kernel(3), &samples).unwrap();
        let same = agreement(
            &host,
            (SimdLevel::Baseline, &reference),
            (SimdLevel::Simd128, &kernel(3)),
            &samples,
            &output,
            0.0,
        )
        .unwrap();
        assert!(same.bit_exact);
        assert_eq!(same.judged, "bit-exact");
        let err = agreement(
            &host,
            (SimdLevel::Baseline, &reference),
            (SimdLevel::RelaxedSimd, &kernel(5)),
            &samples,
            &output,
            1.0,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("relaxed-simd variant disagrees with the baseline variant on 1 of 1"),
            "{err}"
        );
        let close = agreement(
            &host,
            (SimdLevel::Baseline, &reference),
            (SimdLevel::RelaxedSimd, &kernel(5)),
            &samples,
            &output,
            10.0,
        )
        .unwrap();
        assert!(!close.bit_exact);
        assert_eq!(close.max_abs_diff, 4.0);
        assert!(
            close.judged.contains("never compared bit for bit"),
            "{}",
            close.judged
        );
    }

    #[test]
    fn simd_is_invalid_for_a_runtime_without_it() {
        let wasm = wat::parse_str(r#"(module (func (result v128) v128.const i64x2 0 0))"#).unwrap();
        assert!(validate_module(&wasm, &[WasmFeature::Simd]).is_ok());
        assert!(validate_module(&wasm, &[WasmFeature::BulkMemory]).is_err());
    }
}
