//! Versions of the tools this binary links or runs, recorded in every manifest. `build.rs` reads
//! the linked ones from Cargo.lock so they can never drift from what was compiled in.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The wasmtime crate version used for measurement.
pub const WASMTIME_VERSION: &str = env!("WPI_WASMTIME_VERSION");
/// The wasm-opt crate version; its minor number is the binaryen release it bundles.
pub const WASM_OPT_CRATE_VERSION: &str = env!("WPI_WASM_OPT_VERSION");
/// The walrus crate version used by the shake stage.
pub const WALRUS_VERSION: &str = env!("WPI_WALRUS_VERSION");

/// The binaryen release bundled by the wasm-opt crate: crate `0.116.1` bundles binaryen `version_116`.
pub fn binaryen_version() -> String {
    let minor = WASM_OPT_CRATE_VERSION
        .split('.')
        .nth(1)
        .unwrap_or("unknown");
    format!("version_{minor}")
}

/// The last `count` lines of a tool's output, each cut to 300 characters: Node prints the
/// offending source line with an error, and Pyodide's glue is one 1.2 MB line.
pub fn tail_lines(text: &str, count: usize) -> String {
    const MAX_LINE: usize = 300;
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..]
        .iter()
        .map(|line| match line.char_indices().nth(MAX_LINE) {
            Some((cut, _)) => format!("{} …", &line[..cut]),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `rustc -vV`, as cargo will run it.
#[derive(Debug, Clone)]
pub struct RustcInfo {
    pub release: String,
    pub host: String,
}

/// The rustc on PATH (or `$RUSTC`): both pipelines record it, and cargo builds with it.
pub fn rustc_info() -> Result<RustcInfo> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("running `{rustc} -vV`"))?;
    if !output.status.success() {
        bail!(
            "`{rustc} -vV` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    Ok(RustcInfo {
        release: field("release:").context("`rustc -vV` printed no release")?,
        host: field("host:").context("`rustc -vV` printed no host")?,
    })
}

/// Runs `command` with its output in a file in `work` (no pipe can fill up), killing it after
/// `limit`; fails with the tail of what it printed. Its result is a file it writes.
pub fn run_logged(mut command: Command, work: &Path, what: &str, limit: Duration) -> Result<()> {
    let stderr_path = work.join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path)?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(stderr.try_clone()?)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("running {what} (is it installed?)"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} ran longer than {limit:?} and was stopped");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        bail!("{what} failed ({status}):\n{}", tail_lines(&log, 25));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tails_are_short_lines() {
        let text = format!("a\nb\n{}\n", "x".repeat(1000));
        let tail = super::tail_lines(&text, 2);
        assert_eq!(tail.lines().count(), 2);
        assert!(tail.starts_with("b\n") && tail.len() < 320, "{tail}");
        assert_eq!(super::tail_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(super::tail_lines("a", 5), "a");
    }

    #[test]
    fn binaryen_version_follows_the_crate_minor() {
        assert!(super::binaryen_version().starts_with("version_1"));
        assert_ne!(super::WASMTIME_VERSION, "");
    }
}
