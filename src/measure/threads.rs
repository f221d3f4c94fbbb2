//! How many CPU threads a native call ran on, measured from the OS rather than taken from the
//! kernel: a kernel on candle, burn or tract spreads work over its own thread pool (rayon's),
//! which the helper crate's `wpi_last_call_threads` cannot see.

use std::collections::HashMap;
use std::time::Instant;

/// A thread counts when it was on a CPU for at least this share of the call's wall time: a pool
/// worker that took part in the call does, even on a machine busy enough to give it only part
/// of a core; the tool's own tickers, and a worker that only woke to find nothing to do, do not.
const SHARE_OF_CALL: f64 = 0.1;

/// Runs `call` and returns its result with the number of this process's threads that ran for a
/// meaningful share of it; `None` where the OS does not tell (not Linux, or no schedstat).
pub fn threads_during<T>(call: impl FnOnce() -> T) -> (T, Option<u32>) {
    let before = on_cpu_ns();
    let started = Instant::now();
    let result = call();
    let wall_ns = started.elapsed().as_nanos() as f64;
    let after = on_cpu_ns();
    let threads = before
        .zip(after)
        .map(|(before, after)| threads_that_ran(&before, &after, wall_ns));
    (result, threads)
}

/// Threads on a CPU for at least [`SHARE_OF_CALL`] of `wall_ns` between the two readings; a
/// thread born in between counts from zero, one that ended is not seen.
fn threads_that_ran(
    before: &HashMap<String, u64>,
    after: &HashMap<String, u64>,
    wall_ns: f64,
) -> u32 {
    let counted = after
        .iter()
        .filter(|&(tid, &ns)| {
            let ran = ns.saturating_sub(before.get(tid).copied().unwrap_or(0));
            ran as f64 >= SHARE_OF_CALL * wall_ns
        })
        .count();
    // The calling thread ran the call, however the scheduler accounted it.
    counted.max(1) as u32
}

/// Nanoseconds each thread of this process has spent on a CPU, by thread id
/// (`/proc/self/task/*/schedstat`, whose first field the kernel brings up to date on read).
fn on_cpu_ns() -> Option<HashMap<String, u64>> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut times = HashMap::new();
    for task in tasks.flatten() {
        // A thread may end between listing and reading; it is simply not counted.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = stat.split_whitespace().next().and_then(|f| f.parse().ok()) {
            times.insert(task.file_name().to_string_lossy().into_owned(), ns);
        }
    }
    (!times.is_empty()).then_some(times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::time::Duration;

    fn spin(for_how_long: Duration) {
        let until = Instant::now() + for_how_long;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    /// Two long-lived workers (as a pool keeps them) that spin through the call, and one that
    /// sleeps through it: the call ran on three threads, the caller included.
    #[test]
    #[cfg(target_os = "linux")]
    fn counts_the_pool_threads_that_worked() {
        let [go, done, measured] = [(); 3].map(|()| Barrier::new(4));
        std::thread::scope(|scope| {
            for works in [true, true, false] {
                let (go, done, measured) = (&go, &done, &measured);
                scope.spawn(move || {
                    go.wait();
                    if works {
                        spin(Duration::from_millis(40));
                    } else {
                        std::thread::sleep(Duration::from_millis(40));
                    }
                    done.wait();
                    // Alive until the threads are counted, as a pool's workers are.
                    measured.wait();
                });
            }
            let ((), threads) = threads_during(|| {
                go.wait();
                spin(Duration::from_millis(40));
                done.wait();
            });
            measured.wait();
            // Other tests of this process may run beside it and add to the count, never take.
            assert!(threads >= Some(3), "{threads:?}");
        });
    }

    #[test]
    fn a_thread_counts_for_a_tenth_of_the_call() {
        let times = |pairs: &[(&str, u64)]| -> HashMap<String, u64> {
            pairs.iter().map(|(t, ns)| (t.to_string(), *ns)).collect()
        };
        let before = times(&[
            ("caller", 1_000),
            ("worker", 5_000),
            ("idle", 7_000),
            ("gone", 1),
        ]);
        let after = times(&[
            ("caller", 1_000_000),
            ("worker", 105_000),
            ("idle", 9_000),
            ("born", 150_000),
        ]);
        // 1 ms call: caller, worker (100 µs) and born (150 µs) ran; idle ran 2 µs.
        assert_eq!(threads_that_ran(&before, &after, 1e6), 3);
        assert_eq!(
            threads_that_ran(&before, &before, 1e6),
            1,
            "the caller at least"
        );
    }
}
