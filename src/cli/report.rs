use super::{dir_of, manifest_path_of};
use cargo_wasmpack_infer::diff;
use cargo_wasmpack_infer::exit::input_error;
use cargo_wasmpack_infer::fsx;
use cargo_wasmpack_infer::manifest::AnyManifest;
use cargo_wasmpack_infer::report::html;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write one self-contained HTML report of a bundle: bar charts of bytes per variant and
/// compressor, latency per variant and batch size, cold start, the runtime-fit verdict, budgets,
/// and with --baseline the metric diff against a previous release. Inline CSS and SVG, no script,
/// nothing fetched: it can be attached to a release or a CI run as is.
#[derive(Args)]
pub struct Opts {
    /// Bundle directory, or its manifest.json (kernel or Python bundle).
    bundle: PathBuf,
    /// A previous bundle or manifest of the same kind to compare against.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Where to write the page.
    #[arg(short, long, default_value = "report.html")]
    output: PathBuf,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let manifest_path = manifest_path_of(&self.bundle)?;
        let manifest = AnyManifest::read(&manifest_path)?;
        let baseline_path = self.baseline.as_deref().map(manifest_path_of).transpose()?;
        let baseline = baseline_path
            .as_deref()
            .map(AnyManifest::read)
            .transpose()?;
        if let Some(baseline) = &baseline
            && baseline.kind() != manifest.kind()
        {
            return Err(input_error(format!(
                "cannot compare a {} bundle with a {} baseline",
                manifest.kind(),
                baseline.kind()
            )));
        }
        let content = match (&baseline, &baseline_path) {
            (Some(old), Some(old_path)) => Some(diff::content_changes(
                old,
                &dir_of(old_path),
                &manifest,
                &dir_of(&manifest_path),
            )),
            _ => None,
        };
        let page = html::render(&manifest, baseline.as_ref().zip(content.as_ref()))?;
        fsx::write_atomic(&self.output, page.as_bytes())?;
        println!("wrote {} ({} bytes)", self.output.display(), page.len());
        Ok(ExitCode::SUCCESS)
    }
}
