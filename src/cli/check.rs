use super::{Format, OutputArgs, append_step_summary, manifest_path_of};
use cargo_wasmpack_infer::budget::{self, BudgetResult};
use cargo_wasmpack_infer::exit::{CHECK_FAILED, input_error};
use cargo_wasmpack_infer::manifest::AnyManifest;
use cargo_wasmpack_infer::report;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Compare a bundle's measured metrics with its budgets; exit 1 when one is exceeded.
///
/// Budgets come from the kernel's [package.metadata.wasmpack-infer.budgets] (recorded in the
/// manifest at build time) or from --budgets FILE, one table per variant, e.g.
///   [wasm]  brotli_bytes = "40 KiB"   instantiate_us = 100
///   [ratio] wasm_over_native_steady = 2.0
/// Timing budgets compare medians; the table says how many runs each came from. When
/// GITHUB_STEP_SUMMARY is set, the Markdown table is appended to it.
#[derive(Args)]
pub struct Opts {
    /// Bundle directory, a manifest (.json), or a file inside a bundle.
    bundle: PathBuf,
    /// Budgets file (TOML) used instead of the manifest's.
    #[arg(long)]
    budgets: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let manifest_path = manifest_path_of(&self.bundle)?;
        let manifest = AnyManifest::read(&manifest_path)?;
        let budgets = match &self.budgets {
            Some(path) => budget::read_file(path)?,
            None => manifest.budgets().clone(),
        };
        if budgets.is_empty() {
            return Err(input_error(format!(
                "{} records no budgets: add [package.metadata.wasmpack-infer.budgets] to the kernel's \
                 Cargo.toml ([tool.wasmpack-infer.budgets] to a Python project's pyproject.toml) and \
                 rebuild, or pass --budgets FILE",
                manifest_path.display()
            )));
        }
        let results = budget::check(&manifest.metrics(), &budgets)?;
        print_results(&results, &self.output)?;
        Ok(exit_code(&results))
    }
}

/// Prints results in `format` and appends Markdown to `GITHUB_STEP_SUMMARY` when set.
pub fn print_results(results: &[BudgetResult], output: &OutputArgs) -> anyhow::Result<()> {
    match output.format() {
        _ if output.is_quiet() => {}
        Format::Human => print!(
            "{}",
            report::check::human(results, report::colour_on_stdout())
        ),
        Format::Markdown => print!("{}", report::check::markdown(results)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "passed": results.iter().all(|r| r.passed),
                "results": results,
            }))?
        ),
    }
    append_step_summary(&report::check::markdown(results))
}

pub fn exit_code(results: &[BudgetResult]) -> ExitCode {
    if results.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECK_FAILED)
    }
}
