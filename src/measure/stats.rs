//! Turning repeated timings into a distribution.

use crate::manifest::{Distribution, TransferBreakdown};
use std::time::{Duration, Instant};

/// Median, 95th percentile (nearest rank) and minimum of `samples`.
pub fn distribution(samples: &[Duration]) -> Distribution {
    let mut micros: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    micros.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        if micros.is_empty() {
            return 0.0;
        }
        let index = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len()) - 1;
        micros[index]
    };
    Distribution {
        runs: micros.len(),
        median_us: round3(rank(0.5)),
        p95_us: round3(rank(0.95)),
        min_us: round3(micros.first().copied().unwrap_or(0.0)),
    }
}

/// Keeps three decimals (nanoseconds, for µs; a tenth of a percent, for shares): finer digits are
/// noise and bloat the manifest.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// `a / b` to three decimals; infinite when `b` is not positive.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        round3(a / b)
    } else {
        f64::INFINITY
    }
}

/// What reading the clock twice costs on this machine (the median of many back-to-back reads),
/// to take out of intervals short enough for it to matter.
pub fn clock_read_cost() -> Duration {
    static COST: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *COST.get_or_init(|| {
        let mut reads: Vec<Duration> = (0..1001)
            .map(|_| {
                let start = Instant::now();
                start.elapsed()
            })
            .collect();
        reads.sort();
        reads[reads.len() / 2]
    })
}

/// Runs `f` `runs` times and returns each run's duration; stops at the first error.
pub fn time_runs(
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Duration>> {
    let mut durations = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        durations.push(start.elapsed());
    }
    Ok(durations)
}

/// Times `f` up to `max_runs` times, as many as fit `budget` judging by the first run, but at
/// least `min_runs` (fewer if `max_runs` is lower): a multi-megabyte module that takes half a
/// minute to compile gets three compiles, not five, and a small one all five.
pub fn time_runs_within(
    max_runs: usize,
    min_runs: usize,
    budget: Duration,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Duration>> {
    let mut durations = time_runs(max_runs.min(1), &mut f)?;
    if let Some(first) = durations.first() {
        let fit = (budget.as_secs_f64() / first.as_secs_f64().max(1e-9)) as usize;
        let runs = fit.clamp(min_runs.min(max_runs), max_runs);
        durations.extend(time_runs(runs.saturating_sub(1), f)?);
    }
    Ok(durations)
}

/// Times one call, returning its value and duration.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// The distribution of timings given in microseconds (by a browser page or a Python host).
pub fn distribution_us(values: impl IntoIterator<Item = f64>) -> Distribution {
    let durations: Vec<Duration> = values
        .into_iter()
        .map(|us| Duration::from_secs_f64(us.max(0.0) / 1e6))
        .collect();
    distribution(&durations)
}

/// Samples per second at a batch's median latency (0 when the median is 0).
/// Where a call's time goes, as the medians of each step's timings (µs); `None` when the host
/// timed no steps.
pub fn transfer_medians(
    upload_us: &[f64],
    compute_us: &[f64],
    download_us: &[f64],
) -> Option<TransferBreakdown> {
    let median = |values: &[f64]| distribution_us(values.iter().copied()).median_us;
    (!upload_us.is_empty() && !compute_us.is_empty() && !download_us.is_empty()).then(|| {
        TransferBreakdown {
            upload_us: median(upload_us),
            compute_us: median(compute_us),
            download_us: median(download_us),
        }
    })
}

pub fn samples_per_second(batch: usize, latency: &Distribution) -> f64 {
    if latency.median_us > 0.0 {
        (batch as f64 * 1e6 / latency.median_us).round()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let d = distribution(&samples);
        assert_eq!(
            (d.runs, d.median_us, d.p95_us, d.min_us),
            (100, 50.0, 95.0, 1.0)
        );
        let d = distribution(&[Duration::from_micros(7)]);
        assert_eq!((d.median_us, d.p95_us), (7.0, 7.0));
    }

    #[test]
    fn runs_within_a_budget_keep_a_floor() {
        let mut calls = 0;
        let slow = time_runs_within(5, 3, Duration::from_millis(1), || {
            calls += 1;
            std::thread::sleep(Duration::from_millis(2));
            Ok(())
        })
        .unwrap();
        assert_eq!((slow.len(), calls), (3, 3), "a slow call gets the floor");
        let fast = time_runs_within(5, 3, Duration::from_secs(10), || Ok(())).unwrap();
        assert_eq!(fast.len(), 5, "a fast call gets every run");
        let one = time_runs_within(1, 3, Duration::from_secs(10), || Ok(())).unwrap();
        assert_eq!(one.len(), 1, "never more than asked");
    }
}
