//! One file per subcommand: an `Opts` struct and its `run`.

mod build;
mod check;
mod diff;
mod inspect;
mod measure;
mod new;
mod report;
mod schema;
mod serve;
mod verify;

use cargo_wasmpack_infer::measure::host::{Host, HostInstall, find_node, find_python_host};
use cargo_wasmpack_infer::measure::timing::{DEFAULT_BATCHES, DEFAULT_STEADY_RUNS, TimingPlan};
use cargo_wasmpack_infer::measure::wasm::DEFAULT_CALL_TIME_LIMIT;
use cargo_wasmpack_infer::report::{Reporter, Silent, human::Human};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the check the command runs failed: a budget exceeded (check, build --check), a size grown
     over --fail-over (diff), a bundle that differs from its manifest (verify)
  2  usage or input error (bad arguments, crate metadata, samples, bundle)
  3  build or tool failure (cargo, wasm-opt, validation, parity between variants)";

/// Build ML inference kernels into a measured release: a small, fast WASM variant and a native
/// sibling, described side by side in one manifest.
#[derive(Parser)]
#[command(name = "cargo-wasmpack-infer", bin_name = "cargo wasmpack-infer", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Build(Box<build::Opts>),
    Check(check::Opts),
    Diff(diff::Opts),
    Inspect(inspect::Opts),
    Measure(measure::Opts),
    New(new::Opts),
    Report(report::Opts),
    Schema(schema::Opts),
    Serve(serve::Opts),
    Verify(verify::Opts),
}

impl Cli {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Build(opts) => opts.run(),
            Command::Check(opts) => opts.run(),
            Command::Diff(opts) => opts.run(),
            Command::Inspect(opts) => opts.run(),
            Command::Measure(opts) => opts.run(),
            Command::New(opts) => opts.run(),
            Command::Report(opts) => opts.run(),
            Command::Schema(opts) => opts.run(),
            Command::Serve(opts) => opts.run(),
            Command::Verify(opts) => opts.run(),
        }
    }
}

/// How results are shown: one set of options, flattened into every subcommand that prints
/// results.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// human: tables, and stage lines on stderr (coloured, with progress, on a terminal only);
    /// json: one JSON document on stdout, for machines; markdown: the tables as Markdown (check
    /// and diff).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Print nothing but errors: the exit code carries the verdict.
    #[arg(short, long, conflicts_with_all = ["format", "json"])]
    quiet: bool,
}

impl OutputArgs {
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }

    pub fn is_json(&self) -> bool {
        matches!(self.format(), Format::Json)
    }

    /// Whether human output is wanted (not JSON, not Markdown, not --quiet).
    pub fn is_human(&self) -> bool {
        !self.quiet && matches!(self.format(), Format::Human)
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// For a subcommand whose results have no Markdown form: refuses `--format markdown`.
    pub fn human_or_json(&self, subcommand: &str) -> anyhow::Result<()> {
        if matches!(self.format(), Format::Markdown) {
            return Err(cargo_wasmpack_infer::exit::input_error(format!(
                "--format markdown: `{subcommand}` prints human or json output; Markdown \
                 tables come from `check` and `diff`"
            )));
        }
        Ok(())
    }

    /// Stage lines go to stderr for humans only; a spinner only on a terminal and never under CI.
    pub fn reporter(&self) -> Box<dyn Reporter> {
        if !self.is_human() {
            return Box::new(Silent);
        }
        let show_progress = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Box::new(Human::new(show_progress))
    }

    /// Prints the final result: the manifest as JSON, or the human summary.
    pub fn print_manifest(
        &self,
        manifest: &cargo_wasmpack_infer::manifest::kernel::KernelManifest,
    ) {
        if self.is_json() {
            print!("{}", manifest.to_json());
        } else if self.is_human() {
            print!(
                "\n{}",
                cargo_wasmpack_infer::report::human::summary(manifest)
            );
        }
    }
}

/// `--python-host [PYTHON]` and `--node [NODE]`: also measure a kernel bundle through its own
/// loaders in those hosts; flattened into `build` and `measure`.
#[derive(Args, Debug, Clone)]
pub struct HostOpts {
    /// Also measure the WASM variant through the bundle's loader.py in a Python host (the
    /// sandboxed-plugin deployment): PYTHON, else WPI_PYTHON_HOST, else the venv `python-host` in
    /// the tool's cache, into which the tool installs wasmtime-py (pinned, hash-checked) from
    /// PyPI, or from --wheelhouse DIR only; with --offline and no wheelhouse, exit 2 naming how.
    #[arg(long, value_name = "PYTHON", num_args = 0..=1)]
    python_host: Option<Option<std::path::PathBuf>>,
    /// Also measure the WASM variant through the bundle's loader.mjs in Node (server-side
    /// JavaScript), with the copies across the JS boundary timed apart: NODE, else WPI_NODE, else
    /// `node` on PATH (18 or later).
    #[arg(long, value_name = "NODE", num_args = 0..=1)]
    node: Option<Option<std::path::PathBuf>>,
}

impl HostOpts {
    /// The flag of a host that was asked for, for errors about where it does not apply.
    pub fn requested(&self) -> Option<&'static str> {
        if self.python_host.is_some() {
            Some("--python-host")
        } else if self.node.is_some() {
            Some("--node")
        } else {
            None
        }
    }

    /// The hosts to measure in, each checked to run: before any work starts, so a missing one
    /// costs no build. The tool's own Python host venv gets wasmtime-py as `install` allows.
    pub fn find(&self, install: &HostInstall) -> anyhow::Result<Vec<Host>> {
        let mut hosts = Vec::new();
        if let Some(python) = &self.python_host {
            hosts.push(find_python_host(python.as_deref(), install)?);
        }
        if let Some(node) = &self.node {
            hosts.push(find_node(node.as_deref())?);
        }
        Ok(hosts)
    }
}

/// How long to measure; flattened into every subcommand that measures.
#[derive(Args, Debug, Clone)]
pub struct TimingOpts {
    /// Steady-state runs per batch size (p95 needs at least a few hundred to mean much).
    #[arg(long, default_value_t = DEFAULT_STEADY_RUNS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub steady_runs: u64,
    /// Batch sizes of the steady-state sweep, comma-separated. Every variant (WASM, native CPU,
    /// CUDA when it runs) is timed at each; batches larger than the samples cycle through them.
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', default_values_t = DEFAULT_BATCHES.map(|b| b as u64), value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub batches: Vec<u64>,
    /// Seconds of steady runs per batch size and variant: heavy batches get fewer runs than
    /// --steady-runs (never fewer than 5).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub steady_budget: f64,
    /// Seconds one sandboxed call into the WASM kernel may run before the build fails (a kernel
    /// that never returns is stopped, not waited for).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CALL_TIME_LIMIT.as_secs_f64())]
    pub call_timeout: f64,
}

impl TimingOpts {
    pub fn plan(&self) -> anyhow::Result<TimingPlan> {
        let call_time_limit = std::time::Duration::try_from_secs_f64(self.call_timeout)
            .ok()
            .filter(|limit| !limit.is_zero())
            .ok_or_else(|| {
                cargo_wasmpack_infer::exit::input_error(format!(
                    "--call-timeout {}: expected a positive number of seconds",
                    self.call_timeout
                ))
            })?;
        let steady_budget =
            std::time::Duration::try_from_secs_f64(self.steady_budget).map_err(|_| {
                cargo_wasmpack_infer::exit::input_error(format!(
                    "--steady-budget {}: expected a number of seconds",
                    self.steady_budget
                ))
            })?;
        let mut batches: Vec<usize> = self.batches.iter().map(|&b| b as usize).collect();
        batches.sort_unstable();
        batches.dedup();
        Ok(TimingPlan {
            steady_runs: self.steady_runs as usize,
            steady_budget,
            batches,
            call_time_limit,
            ..TimingPlan::default()
        })
    }
}

/// The bundle directory a path names: the directory itself, or the one holding a file of it.
pub fn bundle_dir_of(path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    if path.is_dir() {
        Ok(path.to_path_buf())
    } else if path.is_file() {
        Ok(path
            .parent()
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| ".".into()))
    } else {
        Err(cargo_wasmpack_infer::exit::input_error(format!(
            "{} does not exist",
            path.display()
        )))
    }
}

/// The manifest a path names: a `.json` file itself, else the manifest of the bundle it names.
pub fn manifest_path_of(path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    if path.extension().is_some_and(|e| e == "json") && path.is_file() {
        return Ok(path.to_path_buf());
    }
    Ok(bundle_dir_of(path)?.join(cargo_wasmpack_infer::manifest::FILE_NAME))
}

/// The bundle directory holding a manifest file (the current directory for a bare file name).
pub fn dir_of(manifest: &std::path::Path) -> std::path::PathBuf {
    manifest
        .parent()
        .map(std::path::PathBuf::from)
        .unwrap_or_default()
}

/// Output format, chosen with `--format` (see [`OutputArgs`]).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Markdown,
}

/// Appends Markdown to the GitHub Actions job summary when `GITHUB_STEP_SUMMARY` is set.
pub fn append_step_summary(markdown: &str) -> anyhow::Result<()> {
    let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&summary)
        .map_err(|e| {
            anyhow::anyhow!(
                "opening GITHUB_STEP_SUMMARY {}: {e}",
                summary.to_string_lossy()
            )
        })?;
    std::io::Write::write_all(&mut file, markdown.as_bytes())?;
    Ok(())
}
