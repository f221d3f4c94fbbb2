//! Everything the user sees. Stages report through [`Reporter`]; nothing else prints.

pub mod check;
pub mod diff;
pub mod html;
pub mod human;

use crate::manifest::{CudaRun, FileEntry, Parity};
use crate::stages::shake::Shaken;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Build,
    Shake,
    Optimize,
    Validate,
    Measure,
    Pack,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Shake => "shake",
            Self::Optimize => "optimize",
            Self::Validate => "validate",
            Self::Measure => "measure",
            Self::Pack => "pack",
        }
    }
}

/// What the pipeline did, as typed values; each [`Reporter`] decides how to show it.
#[derive(Debug)]
pub enum Event<'a> {
    Started(Stage),
    TargetInstalled {
        target: &'a str,
    },
    Built {
        wasm_target: &'a str,
        wasm_bytes: u64,
        native_target: &'a str,
        native_bytes: u64,
    },
    Shaken {
        before: u64,
        shaken: &'a Shaken,
    },
    Optimized {
        before: u64,
        after: u64,
        level: &'a str,
    },
    Validated {
        samples: usize,
    },
    Measured {
        parity: &'a Parity,
        cuda: &'a CudaRun,
    },
    Packed {
        dir: &'a Path,
        files: &'a [FileEntry],
    },
    /// A stage of the Python pipeline finished; `summary` says what it did.
    Done {
        stage: Stage,
        summary: String,
    },
}

pub trait Reporter {
    fn event(&mut self, event: Event<'_>);
}

/// Reports nothing: `-q`, `--json`, and library callers.
pub struct Silent;

impl Reporter for Silent {
    fn event(&mut self, _: Event<'_>) {}
}

/// `12.3 KiB`-style sizes (binary units, as browsers' dev tools show them).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Signed percentage change from `before` to `after`, e.g. `−54 %`.
pub fn format_change(before: u64, after: u64) -> String {
    if before == 0 {
        return "n/a".into();
    }
    let percent = (after as f64 - before as f64) / before as f64 * 100.0;
    let sign = if percent < 0.0 { "−" } else { "+" };
    format!("{sign}{:.0} %", percent.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_changes_read_naturally() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(42_188), "41.2 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(format_change(42_188, 19_354), "−54 %");
        assert_eq!(format_change(100, 110), "+10 %");
    }
}
