//! Timing both variants with one procedure: cold start per fresh instance, then steady latency at
//! each batch size, driven through [`KernelRunner`] so the loop is the same code for both.

use crate::manifest::kernel::{ColdStart, NativeTimings, Steady, WasmTimings};
use crate::manifest::{Distribution, TransferBreakdown};
use crate::measure::native::{DeviceChoice, LibraryCopies, NativeKernel};
use crate::measure::runner::KernelRunner;
use crate::measure::stats::{distribution, samples_per_second, time_runs, time_runs_within, timed};
use crate::measure::threads;
use crate::measure::wasm::WasmHost;
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
/// Calls per batch timed in parts (copy in, compute, copy out) after the steady runs: a quarter
/// as many as were timed whole, within these bounds, so a heavy batch's few runs cost little more.
const BOUNDARY_CALLS: std::ops::RangeInclusive<usize> = 3..=50;

/// Feeds one batch size: each call takes the next window of `batch` samples.
struct BatchFeed {
    cycled: Vec<u8>,
    output: Vec<u8>,
    batch: usize,
    count: usize,
    input_bytes: usize,
    next: usize,
}

impl BatchFeed {
    fn new(samples: &SampleSet, batch: usize) -> Self {
        Self {
            cycled: samples.cycled(batch),
            output: vec![0u8; batch * samples.output_bytes],
            batch,
            count: samples.count(),
            input_bytes: samples.input_bytes,
            next: 0,
        }
    }

    fn call(&mut self, runner: &mut dyn KernelRunner) -> Result<()> {
        let start = (self.next % self.count) * self.input_bytes;
        self.next += self.batch;
        runner.infer_into(
            &self.cycled[start..start + self.batch * self.input_bytes],
            &mut self.output,
        )
    }
}

/// Steady-state latency at each batch size of `plan`.
fn steady(
    runner: &mut dyn KernelRunner,
    samples: &SampleSet,
    plan: &TimingPlan,
) -> Result<Vec<Steady>> {
    plan.batches
        .iter()
        .map(|&batch| {
            let mut feed = BatchFeed::new(samples, batch);
            let mut breakdowns = Vec::new();
            let mut threads = None;
            let mut run = || {
                feed.call(runner)?;
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
                    let (ran, seen) = threads::threads_during(|| feed.call(runner));
                    ran?;
                    threads = threads.max(seen);
                }
            }
            let mut transfer =
                transfer_medians(&breakdowns[breakdowns.len().saturating_sub(runs)..]);
            // A sandbox's boundary, timed on calls of their own: reading the clock inside a
            // call would add to the latency above.
            if transfer.is_none() && runner.split_boundary(true) {
                let mut split = Vec::new();
                let calls = (runs / 4).clamp(*BOUNDARY_CALLS.start(), *BOUNDARY_CALLS.end());
                for _ in 0..calls {
                    feed.call(runner)?;
                    split.extend(runner.last_call_ns());
                }
                runner.split_boundary(false);
                transfer = transfer_medians(&split);
            }
            Ok(Steady {
                batch,
                latency,
                samples_per_second: samples_per_second(batch, &latency),
                transfer,
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
    let (compile, module) = time_compile(host, wasm, plan)?;
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

/// A further feature-level variant's compile and steady latency, timed like [`measure_wasm`]'s
/// (uncapped, under a watchdog); cold start is the primary's to report.
pub fn measure_wasm_steady(
    wasm: &[u8],
    samples: &SampleSet,
    plan: &TimingPlan,
) -> Result<(Distribution, Vec<Steady>)> {
    let host = &WasmHost::uncapped()?;
    let (compile, module) = time_compile(host, wasm, plan)?;
    let mut kernel = host.instantiate(&host.prepare(&module)?)?;
    kernel.init()?;
    Ok((compile, steady(&mut kernel, samples, plan)?))
}

/// Compiles `wasm` as often as the plan's runs and budget allow; the timings and the last module.
fn time_compile(
    host: &WasmHost,
    wasm: &[u8],
    plan: &TimingPlan,
) -> Result<(Distribution, wasmtime::Module)> {
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
    Ok((compile, module.context("compile_runs must be at least 1")?))
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
}
