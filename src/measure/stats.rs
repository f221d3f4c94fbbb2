//! Turning repeated timings into a distribution.

use crate::manifest::Distribution;
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
        median_us: round_us(rank(0.5)),
        p95_us: round_us(rank(0.95)),
        min_us: round_us(micros.first().copied().unwrap_or(0.0)),
    }
}

/// Keeps three decimals (nanoseconds): finer digits are noise and bloat the manifest.
fn round_us(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
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

/// Times one call, returning its value and duration.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
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
}
