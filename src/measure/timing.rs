//! Timing both variants with one procedure: cold start per fresh instance, then steady latency at
//! each batch size, driven through [`KernelRunner`] so the loop is the same code for both.

use crate::manifest::kernel::{
    BatchFit, BatchRatio, ColdStart, NativeTimings, RuntimeFit, Steady, TransferBreakdown,
    WasmTimings,
};
use crate::measure::native::{DeviceChoice, LibraryCopies, NativeKernel};
use crate::measure::runner::KernelRunner;
use crate::measure::stats::{distribution, time_runs, time_runs_within, timed};
use crate::measure::threads;
use crate::measure::wasm::WasmHost;
use crate::units::{format_bytes, format_duration_us};
use anyhow::{Context, Result};
use std::time::Duration;

/// Steady-state runs per batch size unless asked otherwise (or the time budget runs out first).
pub const DEFAULT_STEADY_RUNS: usize = 200;
/// The batch sweep: where per-call overhead dominates, and where throughput does.
pub const DEFAULT_BATCHES: [usize; 4] = [1, 16, 256, 4096];
/// Fewer runs than this make no median worth recording.
const MIN_STEADY_RUNS: usize = 5;
/// Compiles of one module, at least, when they do not all fit [`TimingPlan::compile_budget`].
const MIN_COMPILE_RUNS: usize = 3;

/// How many times each thing is measured.
#[derive(Debug, Clone)]
pub struct TimingPlan {
    pub compile_runs: usize,
    /// Roughly how long compiling the module again and again may take: a module of megabytes
    /// (tract's are 14 MB) gets fewer compiles, at least three.
    pub compile_budget: Duration,
    pub deserialize_runs: usize,
    pub instantiate_runs: usize,
    /// Fresh instances (WASM) or fresh library copies (native) for cold-start figures.
    pub cold_runs: usize,
    pub warmup_runs: usize,
    pub steady_runs: usize,
    /// Roughly how long steady runs of one batch size on one variant may take: large batches of
    /// a heavy model get fewer runs (at least five), so a sweep to 4096 stays affordable.
    pub steady_budget: Duration,
    pub batches: Vec<usize>,
    /// How long one sandboxed call (validation, parity) may run before the build fails.
    pub call_time_limit: std::time::Duration,
}

impl Default for TimingPlan {
    fn default() -> Self {
        Self {
            compile_runs: 5,
            compile_budget: Duration::from_secs(10),
            deserialize_runs: 50,
            instantiate_runs: 200,
            cold_runs: 10,
            warmup_runs: 20,
            steady_runs: DEFAULT_STEADY_RUNS,
            steady_budget: Duration::from_secs(1),
            batches: DEFAULT_BATCHES.to_vec(),
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

    /// Steady runs for a call that took `per_call`: as many as fit the budget, within
    /// [MIN_STEADY_RUNS, steady_runs].
    fn steady_runs_for(&self, per_call: Duration) -> usize {
        let fit = self.steady_budget.as_secs_f64() / per_call.as_secs_f64().max(1e-9);
        (fit as usize).clamp(MIN_STEADY_RUNS.min(self.steady_runs), self.steady_runs)
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

/// Untimed calls per batch whose threads the OS is asked about: a pool may sit one call out.
const WATCHED_CALLS: usize = 3;

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
            let mut breakdowns = Vec::new();
            let mut threads = None;
            let mut next = 0usize;
            let mut run = || {
                let start = (next % count) * samples.input_bytes;
                next += batch;
                runner.infer_into(
                    &cycled[start..start + batch * samples.input_bytes],
                    &mut output,
                )?;
                breakdowns.extend(runner.last_call_ns());
                threads = threads.max(runner.last_call_threads());
                Ok(())
            };
            // The first call warms up and estimates what the others cost.
            let first = time_runs(1, &mut run)?[0];
            let runs = plan.steady_runs_for(first);
            time_runs(plan.warmup_runs.min(runs.div_ceil(4)), &mut run)?;
            let latency = distribution(&time_runs(runs, &mut run)?);
            // A native kernel's claim, checked against a few more calls the OS watched (a pool
            // of the kernel's own, rayon's under candle say, is invisible to the claim).
            if threads.is_some() {
                for _ in 0..WATCHED_CALLS {
                    let start = (next % count) * samples.input_bytes;
                    next += batch;
                    let input = &cycled[start..start + batch * samples.input_bytes];
                    let (ran, seen) =
                        threads::threads_during(|| runner.infer_into(input, &mut output));
                    ran?;
                    threads = threads.max(seen);
                }
            }
            let measured = &breakdowns[breakdowns.len().saturating_sub(runs)..];
            Ok(Steady {
                batch,
                latency,
                samples_per_second: batch as f64 / (latency.median_us.max(1e-3) * 1e-6),
                transfer: transfer_medians(measured),
                threads,
            })
        })
        .collect::<Result<_>>()
        .with_context(|| "timing steady inference")
}

/// Medians of upload, compute and download time, when the kernel reported them.
fn transfer_medians(breakdowns: &[[u64; 3]]) -> Option<TransferBreakdown> {
    if breakdowns.is_empty() {
        return None;
    }
    let median = |part: usize| {
        let durations: Vec<Duration> = breakdowns
            .iter()
            .map(|b| Duration::from_nanos(b[part]))
            .collect();
        distribution(&durations).median_us
    };
    Some(TransferBreakdown {
        upload_us: median(0),
        compute_us: median(1),
        download_us: median(2),
    })
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
    let compile = distribution(&time_runs_within(
        plan.compile_runs,
        MIN_COMPILE_RUNS,
        plan.compile_budget,
        || {
            module = Some(host.compile(wasm)?);
            Ok(())
        },
    )?);
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

/// Times the native library on `choice`'s device, every cold run on a fresh copy.
pub fn measure_native(
    copies: &mut LibraryCopies,
    choice: DeviceChoice,
    samples: &SampleSet,
    plan: &TimingPlan,
) -> Result<NativeTimings> {
    let mut load_times = Vec::new();
    let first_input = &samples.data[..samples.input_bytes];
    let cold = cold(plan.cold_runs, first_input, samples.output_bytes, || {
        let (kernel, took) = timed(|| copies.load(choice));
        load_times.push(took);
        kernel
    })
    .context("timing native cold start")?;

    let mut kernel = copies.load(choice)?;
    kernel.init()?;
    let steady = steady(&mut kernel, samples, plan)?;
    let single_thread = single_thread(&mut kernel, &steady, samples, plan)?;
    Ok(NativeTimings {
        load: distribution(&load_times),
        cold,
        steady,
        single_thread,
    })
}

/// The batches that ran on more than one thread, again on one: the WASM variant has one thread,
/// so this is the like-for-like figure next to it. Empty when no batch used more than one, or
/// the kernel cannot be capped.
fn single_thread(
    kernel: &mut NativeKernel,
    steady_runs: &[Steady],
    samples: &SampleSet,
    plan: &TimingPlan,
) -> Result<Vec<Steady>> {
    let batches: Vec<usize> = steady_runs
        .iter()
        .filter(|s| s.threads.is_some_and(|t| t > 1))
        .map(|s| s.batch)
        .collect();
    if batches.is_empty() || kernel.limit_threads(1).is_none() {
        return Ok(Vec::new());
    }
    let capped = TimingPlan {
        batches,
        ..plan.clone()
    };
    let result = steady(kernel, samples, &capped).context("timing one thread");
    kernel.limit_threads(0);
    // A kernel whose own pool ignores the cap still ran on several threads: no one-thread figure.
    Ok(result?
        .into_iter()
        .filter(|s| s.threads.is_none_or(|t| t <= 1))
        .collect())
}

/// The WASM variant's costs relative to native, from the medians of one run; `cuda` is the
/// native library's CUDA path when it ran.
pub fn runtime_fit(
    wasm: &WasmTimings,
    native: &NativeTimings,
    cuda: Option<&[Steady]>,
    download_bytes: u64,
) -> RuntimeFit {
    let median_at = |steady: &[Steady], batch: usize| {
        steady
            .iter()
            .find(|s| s.batch == batch)
            .map(|s| s.latency.median_us)
    };
    let steady_ratio: Vec<BatchRatio> = wasm
        .steady
        .iter()
        .filter_map(|w| {
            Some(BatchRatio {
                batch: w.batch,
                wasm_over_native: ratio(w.latency.median_us, median_at(&native.steady, w.batch)?),
                wasm_over_native_single_thread: median_at(&native.single_thread, w.batch)
                    .map(|single| ratio(w.latency.median_us, single)),
            })
        })
        .collect();
    let batches: Vec<BatchFit> = wasm
        .steady
        .iter()
        .filter_map(|w| {
            let native_cpu_us = median_at(&native.steady, w.batch)?;
            Some(batch_fit(
                w.batch,
                w.latency.median_us,
                native_cpu_us,
                cuda.and_then(|c| median_at(c, w.batch)),
            ))
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
        &batches,
        wasm_cold_start_us,
        native_cold_start_us,
        download_bytes,
    );
    RuntimeFit {
        steady_ratio,
        batches,
        wasm_cold_start_us,
        wasm_cold_start_compiling_us,
        native_cold_start_us,
        instantiate_over_first_inference,
        download_bytes,
        verdict,
    }
}

/// Which variant wins at one batch size, and by how much over each other one.
fn batch_fit(batch: usize, wasm_us: f64, native_cpu_us: f64, cuda_us: Option<f64>) -> BatchFit {
    let mut variants = vec![("wasm", wasm_us), ("native-cpu", native_cpu_us)];
    variants.extend(cuda_us.map(|us| ("cuda", us)));
    let (fastest, best) = variants
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(("wasm", wasm_us));
    let margins: Vec<String> = variants
        .iter()
        .filter(|(name, _)| *name != fastest)
        .map(|(name, us)| format!("{:.2}x {name}", ratio(*us, best)))
        .collect();
    BatchFit {
        batch,
        wasm_us,
        native_cpu_us,
        cuda_us,
        fastest: fastest.to_string(),
        summary: format!("{fastest} fastest: {}", margins.join(", ")),
    }
}

fn verdict(
    steady: &[BatchRatio],
    batches: &[BatchFit],
    wasm_cold_us: f64,
    native_cold_us: f64,
    download: u64,
) -> String {
    let speed = steady
        .iter()
        .map(|r| match r.wasm_over_native_single_thread {
            Some(single) => format!(
                "{:.2}x native ({single:.2}x native on one thread) at batch {}",
                r.wasm_over_native, r.batch
            ),
            None => format!("{:.2}x native at batch {}", r.wasm_over_native, r.batch),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "WASM steady inference runs at {speed}; cold start {} (precompiled) vs {} native; {} to download (brotli)",
        format_duration_us(wasm_cold_us),
        format_duration_us(native_cold_us),
        format_bytes(download)
    );
    let cuda_wins: Vec<String> = batches
        .iter()
        .filter(|b| b.cuda_us.is_some())
        .map(|b| format!("batch {}: {}", b.batch, b.summary))
        .collect();
    if !cuda_wins.is_empty() {
        text.push_str(&format!("; with CUDA, {}", cuda_wins.join("; ")));
    }
    text
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
    fn batch_fit_names_the_fastest_variant_and_its_margins() {
        let fit = batch_fit(4096, 9000.0, 6000.0, Some(500.0));
        assert_eq!(fit.fastest, "cuda");
        assert_eq!(fit.summary, "cuda fastest: 18.00x wasm, 12.00x native-cpu");
        let fit = batch_fit(1, 3.0, 2.0, Some(40.0));
        assert_eq!(fit.fastest, "native-cpu");
        assert_eq!(fit.summary, "native-cpu fastest: 1.50x wasm, 20.00x cuda");
        assert_eq!(
            batch_fit(16, 1.0, 2.0, None).summary,
            "wasm fastest: 2.00x native-cpu"
        );
    }

    #[test]
    fn steady_runs_fit_the_budget_within_bounds() {
        let plan = TimingPlan::default();
        assert_eq!(
            plan.steady_runs_for(Duration::from_micros(1)),
            DEFAULT_STEADY_RUNS
        );
        assert_eq!(plan.steady_runs_for(Duration::from_millis(10)), 100);
        assert_eq!(
            plan.steady_runs_for(Duration::from_secs(3)),
            MIN_STEADY_RUNS
        );
        let few = TimingPlan {
            steady_runs: 2,
            ..TimingPlan::default()
        };
        assert_eq!(few.steady_runs_for(Duration::from_secs(3)), 2);
    }

    #[test]
    fn durations_read_naturally() {}
}
