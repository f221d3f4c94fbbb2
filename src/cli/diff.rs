use super::{Format, OutputArgs, append_step_summary, dir_of, manifest_path_of};
use cargo_wasmpack_infer::diff;
use cargo_wasmpack_infer::exit::{CHECK_FAILED, input_error};
use cargo_wasmpack_infer::manifest::AnyManifest;
use cargo_wasmpack_infer::report;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Compare two bundles (or manifests) metric by metric, largest relative change first.
///
/// With --fail-over, a byte metric that grew by more than the threshold exits 1; timings are
/// shown but not gated (gate them with timing budgets, which compare medians). When
/// GITHUB_STEP_SUMMARY is set, the Markdown table is appended to it.
#[derive(Args)]
pub struct Opts {
    /// The previous bundle, or its manifest.
    old: PathBuf,
    /// The new bundle, or its manifest.
    new: PathBuf,
    /// Exit 1 when a size grew by more than this, e.g. `5%` or `0.05`.
    #[arg(long, value_name = "PERCENT")]
    fail_over: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let threshold = self.fail_over.as_deref().map(parse_threshold).transpose()?;
        let (old_path, new_path) = (manifest_path_of(&self.old)?, manifest_path_of(&self.new)?);
        let old = AnyManifest::read(&old_path)?;
        let new = AnyManifest::read(&new_path)?;
        if old.kind() != new.kind() {
            return Err(cargo_wasmpack_infer::exit::input_error(format!(
                "cannot compare a {} manifest with a {} manifest",
                old.kind(),
                new.kind()
            )));
        }
        let changes = diff::diff(&old.metrics(), &new.metrics());
        let content = diff::content_changes(&old, &dir_of(&old_path), &new, &dir_of(&new_path));
        let grown = threshold
            .map(|t| diff::grown_beyond(&changes, t))
            .unwrap_or_default();
        let markdown = |threshold: Option<f64>| {
            report::diff::markdown(
                &changes,
                &content,
                threshold.map(|threshold| report::diff::FailOver {
                    threshold,
                    grown: &grown,
                }),
            )
        };
        match self.output.format() {
            _ if self.output.is_quiet() => {}
            Format::Human => {
                print!(
                    "{}",
                    report::diff::human(&changes, report::colour_on_stdout())
                );
                print!("{}", report::diff::content_human(&content));
                for c in &grown {
                    println!(
                        "✗ {} grew {:+.1} %, over --fail-over",
                        c.metric,
                        c.relative * 100.0
                    );
                }
            }
            Format::Markdown => print!("{}", markdown(threshold)),
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "changes": changes,
                    "content": content,
                    "grown_over_threshold": grown.iter().map(|c| &c.metric).collect::<Vec<_>>(),
                }))?
            ),
        }
        append_step_summary(&markdown(threshold))?;
        Ok(if grown.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(CHECK_FAILED)
        })
    }
}

/// `5%`, `5 %` or `0.05` → 0.05.
fn parse_threshold(text: &str) -> anyhow::Result<f64> {
    let trimmed = text.trim();
    let (number, scale) = match trimmed.strip_suffix('%') {
        Some(percent) => (percent.trim(), 0.01),
        None => (trimmed, 1.0),
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v * scale)
        .ok_or_else(|| {
            input_error(format!(
                "--fail-over {text}: expected a percentage like 5% or a fraction like 0.05"
            ))
        })
}
