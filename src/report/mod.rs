//! Everything the user sees. Stages report through [`Reporter`]; nothing else prints.

pub mod check;
pub mod diff;
pub mod html;
pub mod human;

use crate::manifest::kernel::CudaRun;
use crate::manifest::variant::{SimdLevel, VariantAgreement};
use crate::manifest::{FileEntry, Parity};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Build,
    Shake,
    Optimize,
    /// Python: the runtime split by a profile of the samples.
    Split,
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
            Self::Split => "split",
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
    /// Every WASM variant (by SIMD level) and the native sibling, as cargo built them.
    Built {
        wasm_target: &'a str,
        wasm_bytes: &'a [(SimdLevel, u64)],
        native_target: &'a str,
        native_bytes: u64,
    },
    /// A variant above the primary that did not compile; the others go on.
    VariantSkipped {
        level: SimdLevel,
        reason: &'a str,
    },
    /// `variant` names the SIMD level when the build makes several.
    Shaken {
        variant: Option<SimdLevel>,
        before: u64,
        after: u64,
        functions_before: usize,
        functions_after: usize,
        exports_removed: usize,
        custom_sections_removed: usize,
        /// wasm-bindgen glue imports the exports reach, made functions that trap.
        glue_stubbed: usize,
    },
    Optimized {
        variant: Option<SimdLevel>,
        before: u64,
        after: u64,
        level: &'a str,
    },
    /// Valid for its runtime features, bit-identical to the module cargo built on `samples`, and
    /// (for all but the lowest variant) compared with the lowest variant.
    Validated {
        variant: Option<SimdLevel>,
        samples: usize,
        agreement: Option<&'a VariantAgreement>,
    },
    Measured {
        parity: &'a Parity,
        cuda: &'a CudaRun,
    },
    Packed {
        dir: &'a Path,
        files: &'a [FileEntry],
    },
    /// Python: the distribution resolved, the app and its dependencies packed.
    AppPacked {
        pyodide_version: &'a str,
        origin: &'a str,
        app_bytes: u64,
        entry: &'a str,
        /// Installed by pip, as locked (`name==version`).
        installed: &'a [String],
        /// Loaded from the distribution's own wheels.
        from_distribution: &'a [String],
    },
    /// Python: the standard library shaken to what the app imports.
    StdlibShaken {
        entries_before: usize,
        entries_after: usize,
        precompiled: usize,
        /// The precompiled modules ship without their sources.
        bytecode_only: bool,
        /// Sources stripped of docstrings and comments, and the bytes that saved.
        stripped: Option<(usize, u64)>,
        bytes_before: u64,
        bytes_after: u64,
        modules_kept: usize,
        top_levels_dropped: usize,
        packages: &'a [String],
    },
    /// Python: `pyodide.asm.wasm` split by a profile of the samples.
    RuntimeSplit {
        profiled_in: &'a [String],
        profiled_functions: usize,
        functions: usize,
        primary_bytes: u64,
        deferred_bytes: u64,
    },
    /// Python: the runtime ships whole, and why.
    RuntimeWhole {
        why: &'a str,
    },
    /// Python: what became of the runtime's linking at boot.
    RuntimeLinking {
        linking: &'a crate::manifest::python::RuntimeLinkingInfo,
    },
    /// Python: the shaken bundle gave stock Pyodide's outputs on every sample.
    BundleValidated {
        samples: usize,
        with_snapshot: bool,
    },
    /// Python: Pyodide against native CPython.
    NativeParity {
        parity: &'a Parity,
    },
    /// The WASM variant measured in another host through the bundle's loader: `host` is
    /// "python host" (`loader.py`) or "node" (`loader.mjs`).
    HostMeasured {
        host: &'a str,
        timings: &'a crate::manifest::kernel::HostTimings,
    },
    /// Either kind, `measure --browser`: the bundle's figures in the browser, and its outputs
    /// against `reference`'s ("wasmtime", "Node").
    BrowserMeasured {
        browser: &'a str,
        load_us: f64,
        snapshot_load_us: Option<f64>,
        steady_us: Option<f64>,
        /// The batch the steady figure is per call of; per sample when `None`.
        batch: Option<usize>,
        reference: &'a str,
        parity: &'a Parity,
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

/// How a line of human output reads: fine, or a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
}

/// Whether human output on stdout gets colour: only on a terminal, and never with `NO_COLOR`.
pub fn colour_on_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `text` in green or red when `colour` is on; as is otherwise.
pub fn paint(text: &str, tone: Tone, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Bad => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_tables_are_coloured_only_when_asked() {
        let result = |metric: &str, passed: bool| crate::budget::BudgetResult {
            metric: metric.into(),
            unit: crate::manifest::metrics::Unit::Bytes,
            limit_text: "1 KiB".into(),
            limit: 1024.0,
            value: if passed { 512.0 } else { 2048.0 },
            headroom: if passed { 0.5 } else { -1.0 },
            runs: None,
            passed,
        };
        let results = [
            result("wasm.raw_bytes", true),
            result("wasm.brotli_bytes", false),
        ];
        let plain = check::human(&results, false);
        assert!(!plain.contains('\x1b'), "{plain}");
        let coloured = check::human(&results, true);
        let failing = coloured.lines().find(|l| l.contains("brotli")).unwrap();
        assert!(
            failing.starts_with("\x1b[31m✗") && failing.ends_with("\x1b[0m"),
            "{failing:?}"
        );
        assert!(
            coloured.contains("\x1b[31m1 of 2 budgets exceeded\x1b[0m"),
            "{coloured}"
        );
        // Without the escapes the coloured table is the plain one.
        let stripped = coloured
            .replace("\x1b[31m", "")
            .replace("\x1b[32m", "")
            .replace("\x1b[0m", "");
        assert_eq!(stripped, plain);
    }
}
