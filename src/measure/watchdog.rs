//! Ends the process when a measurement overruns. Native code, and WASM on an uncapped host,
//! cannot be interrupted; without this a kernel that never returns would hang the build.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Armed on creation, disarmed on drop.
pub struct Watchdog {
    disarmed: Arc<(Mutex<bool>, Condvar)>,
}

impl Watchdog {
    /// If not dropped within `limit`, prints `error: <what> …` and exits with
    /// [`crate::exit::BUILD_FAILURE`]. A previous bundle is untouched: nothing is committed
    /// before measurement ends, and the staging directory is removed by the next run.
    pub fn start(limit: Duration, what: String) -> Self {
        let disarmed = Arc::new((Mutex::new(false), Condvar::new()));
        let watched = disarmed.clone();
        let spawned = std::thread::Builder::new()
            .name("wpi-watchdog".into())
            .spawn(move || {
                let (lock, signal) = &*watched;
                let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                let (guard, _) = signal
                    .wait_timeout_while(guard, limit, |disarmed| !*disarmed)
                    .unwrap_or_else(|p| p.into_inner());
                if !*guard {
                    eprintln!(
                        "error: {what} ran longer than {}s; the kernel does not seem to return",
                        limit.as_secs()
                    );
                    std::process::exit(crate::exit::BUILD_FAILURE.into());
                }
            });
        // Without a thread there is no watchdog, but measuring can still go on.
        drop(spawned);
        Self { disarmed }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, signal) = &*self.disarmed;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        signal.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disarmed_watchdog_lets_the_process_live() {
        let watchdog = Watchdog::start(Duration::from_millis(50), "test".into());
        drop(watchdog);
        std::thread::sleep(Duration::from_millis(100));
    }
}
