//! Timing both variants with one procedure: cold start per fresh instance, then steady latency at
//! each batch size, driven through [`KernelRunner`] so the loop is the same code for both.

use crate::manifest::{BatchRatio, ColdStart, NativeTimings, RuntimeFit, Steady, WasmTimings};
use crate::measure::native::NativeKernel;
use crate::measure::runner::KernelRunner;
use crate::measure::stats::{distribution, time_runs, timed};
use crate::measure::wasm::WasmHost;
use anyhow::{Context, Result};
use std::path::Path;

/// Steady-state runs per batch size unless asked otherwise.
pub const DEFAULT_STEADY_RUNS: usize = 200;

/// How many times each thing is measured.
#[derive(Debug, Clone)]
pub struct TimingPlan {
    pub compile_runs: usize,
    pub deserialize_runs: usize,
    pub instantiate_runs: usize,
    /// Fresh instances (WASM) or fresh library copies (native) for cold-start figures.
    pub cold_runs: usize,
    pub warmup_runs: usize,
    pub steady_runs: usize,
    pub batches: Vec<usize>,
    /// How long one sandboxed call (validation, parity) may run before the build fails.
    pub call_time_limit: std::time::Duration,
}

impl Default for TimingPlan {
    fn default() -> Self {
        Self {
            compile_runs: 5,
            deserialize_runs: 50,
            instantiate_runs: 200,
            cold_runs: 10,
            warmup_runs: 20,
            steady_runs: DEFAULT_STEADY_RUNS,
            batches: vec![1, 32],
            call_time_limit: crate::measure::wasm::DEFAULT_CALL_TIME_LIMIT,
        }
    }
}

impl TimingPlan {
    /// Samples the plan runs through each variant, to size a watchdog from a known per-sample cost.
    pub fn sample_inferences(&self) -> usize {
        let per_batch_size = self.warmup_runs + self.steady_runs;
        self.cold_runs
            + self
                .batches
                .iter()
                .map(|b| b * per_batch_size)
                .sum::<usize>()
    }
}

/// Samples as the timing loops feed them.
pub struct SampleSet<'a> {
    pub data: &'a [u8],
    pub input_bytes: usize,
    pub output_bytes: usize,
}

impl SampleSet<'_> {
    fn count(&self) -> usize {
        self.data.len() / self.input_bytes
    }

    /// The samples repeated so any window of `batch` samples starting at a sample index is
    /// contiguous: batches larger than the sample file cycle through it.
    fn cycled(&self, batch: usize) -> Vec<u8> {
        let needed = (self.count() + batch) * self.input_bytes;
        self.data.iter().copied().cycle().take(needed).collect()
    }
}

/// Steady-state latency at each batch size of `plan`.
fn steady(
    runner: &mut dyn KernelRunner,
    samples: &SampleSet,
    plan: &TimingPlan,
) -> Result<Vec<Steady>> {
    let count = samples.count();
    plan.batches
        .iter()
        .map(|&batch| {
            let cycled = samples.cycled(batch);
            let mut output = vec![0u8; batch * samples.output_bytes];
            let mut next = 0usize;
            let mut run = || {
                let start = (next % count) * samples.input_bytes;
                next += batch;
                runner.infer_into(
                    &cycled[start..start + batch * samples.input_bytes],
                    &mut output,
                )
            };
            time_runs(plan.warmup_runs, &mut run)?;
            let latency = distribution(&time_runs(plan.steady_runs, &mut run)?);
            Ok(Steady {
                batch,
                latency,
                samples_per_second: batch as f64 / (latency.median_us.max(1e-3) * 1e-6),
            })
        })
        .collect::<Result<_>>()
        .with_context(|| "timing steady inference")
}

/// Init and first-inference latency over `runs` fresh runners from `fresh`.
fn cold<R: KernelRunner>(
    runs: usize,
    first_input: &[u8],
    output_bytes: usize,
    mut fresh: impl FnMut() -> Result<R>,
) -> Result<ColdStart> {
    let (mut init_times, mut first_times) = (Vec::new(), Vec::new());
    let mut output = vec![0u8; output_bytes];
    for _ in 0..runs {
        let mut runner = fresh()?;
        let (result, took) = timed(|| runner.init());
        result?;
        init_times.push(took);
        let (result, took) = timed(|| runner.infer_into(first_input, &mut output));
        result.context("first inference")?;
        first_times.push(took);
    }
    Ok(ColdStart {
        init: distribution(&init_times),
        first_inference: distribution(&first_times),
    })
}

/// Times the WASM variant on an uncapped host (see [`WasmHost`]): call only for a module whose
/// samples already ran to completion on a capped host, and under a [`Watchdog`].
///
/// [`Watchdog`]: crate::measure::watchdog::Watchdog
pub fn measure_wasm(wasm: &[u8], samples: &SampleSet, plan: &TimingPlan) -> Result<WasmTimings> {
    let host = &WasmHost::uncapped()?;
    let mut module = None;
    let compile = distribution(&time_runs(plan.compile_runs, || {
        module = Some(host.compile(wasm)?);
        Ok(())
    })?);
    let module = module.context("compile_runs must be at least 1")?;
    let precompiled = host.precompile(&module)?;
    let deserialize = distribution(&time_runs(plan.deserialize_runs, || {
        host.deserialize(&precompiled).map(drop)
    })?);
    let pre = host.prepare(&host.deserialize(&precompiled)?)?;
    let instantiate = distribution(&time_runs(plan.instantiate_runs, || {
        host.instantiate(&pre).map(drop)
    })?);

    let first_input = &samples.data[..samples.input_bytes];
    let cold = cold(plan.cold_runs, first_input, samples.output_bytes, || {
        host.instantiate(&pre)
    })
    .context("timing WASM cold start")?;

    let mut kernel = host.instantiate(&pre)?;
    kernel.init()?;
    let steady = steady(&mut kernel, samples, plan)?;
    Ok(WasmTimings {
        compile,
        deserialize,
        instantiate,
        cold,
        steady,
    })
}

pub fn measure_native(
    library: &Path,
    samples: &SampleSet,
    plan: &TimingPlan,
) -> Result<NativeTimings> {
    // Each cold run loads a fresh copy: the dynamic loader would hand back the already-loaded
    // library (and its initialised state) for the same path.
    let bytes = crate::fsx::read(library)?;
    let copies = tempfile::tempdir().context("creating a directory for library copies")?;
    let extension = library.extension().and_then(|e| e.to_str()).unwrap_or("so");
    let mut load_times = Vec::new();
    let mut copy_index = 0;
    let first_input = &samples.data[..samples.input_bytes];
    let cold = cold(plan.cold_runs, first_input, samples.output_bytes, || {
        copy_index += 1;
        let copy = copies
            .path()
            .join(format!("kernel-{copy_index}.{extension}"));
        crate::fsx::write(&copy, &bytes)?;
        let (kernel, took) = timed(|| NativeKernel::load(&copy));
        load_times.push(took);
        kernel
    })
    .context("timing native cold start")?;

    let mut kernel = NativeKernel::load(library)?;
    kernel.init()?;
    let steady = steady(&mut kernel, samples, plan)?;
    Ok(NativeTimings {
        load: distribution(&load_times),
        cold,
        steady,
    })
}

/// The WASM variant's costs relative to native, from the medians of one run.
pub fn runtime_fit(wasm: &WasmTimings, native: &NativeTimings, download_bytes: u64) -> RuntimeFit {
    let steady_ratio: Vec<BatchRatio> = wasm
        .steady
        .iter()
        .filter_map(|w| {
            let n = native.steady.iter().find(|n| n.batch == w.batch)?;
            Some(BatchRatio {
                batch: w.batch,
                wasm_over_native: ratio(w.latency.median_us, n.latency.median_us),
            })
        })
        .collect();
    let first_and_init = wasm.cold.init.median_us + wasm.cold.first_inference.median_us;
    let wasm_cold_start_us =
        round(wasm.deserialize.median_us + wasm.instantiate.median_us + first_and_init);
    let wasm_cold_start_compiling_us =
        round(wasm.compile.median_us + wasm.instantiate.median_us + first_and_init);
    let native_cold_start_us = round(
        native.load.median_us + native.cold.init.median_us + native.cold.first_inference.median_us,
    );
    let instantiate_over_first_inference = ratio(
        wasm.instantiate.median_us,
        wasm.cold.first_inference.median_us,
    );
    let verdict = verdict(
        &steady_ratio,
        wasm_cold_start_us,
        native_cold_start_us,
        download_bytes,
    );
    RuntimeFit {
        steady_ratio,
        wasm_cold_start_us,
        wasm_cold_start_compiling_us,
        native_cold_start_us,
        instantiate_over_first_inference,
        download_bytes,
        verdict,
    }
}

fn verdict(steady: &[BatchRatio], wasm_cold_us: f64, native_cold_us: f64, download: u64) -> String {
    let speed = steady
        .iter()
        .map(|r| format!("{:.2}x native at batch {}", r.wasm_over_native, r.batch))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WASM steady inference runs at {speed}; cold start {} (precompiled) vs {} native; {} to download (brotli)",
        format_duration_us(wasm_cold_us),
        format_duration_us(native_cold_us),
        crate::report::format_bytes(download)
    )
}

pub fn format_duration_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { round(a / b) } else { f64::INFINITY }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycled_samples_cover_any_window() {
        let data: Vec<u8> = (0..6).collect();
        let set = SampleSet {
            data: &data,
            input_bytes: 2,
            output_bytes: 1,
        };
        let cycled = set.cycled(4);
        assert_eq!(cycled, vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1]);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration_us(12.34), "12.3 µs");
        assert_eq!(format_duration_us(2500.0), "2.50 ms");
        assert_eq!(format_duration_us(3_200_000.0), "3.20 s");
    }
}
