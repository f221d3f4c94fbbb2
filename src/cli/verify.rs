use super::{OutputArgs, bundle_dir_of};
use cargo_wasmpack_infer::exit::CHECK_FAILED;
use cargo_wasmpack_infer::manifest::{AnyManifest, FILE_NAME, Reproduction};
use cargo_wasmpack_infer::{kernel, python};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check a bundle against its manifest: every file's size, sha256 and SRI, then the parity samples
/// re-run on both variants must reproduce the recorded parity: each sample's argmax as recorded,
/// the distance between the variants exactly or, where the native variant rounds differently
/// here, still within the tolerance. Exit 1 on any other difference.
///
/// A Python bundle runs its samples in Node on every way it boots (normally, with a split
/// runtime's deferred half loaded, from its memory snapshot), which must agree, and on its native
/// sibling in a fresh venv of `--python`: the parity between them must be the recorded one.
#[derive(Args)]
pub struct Opts {
    /// Bundle directory, or a file inside it.
    bundle: PathBuf,
    /// Python bundles: the native interpreter that runs the native sibling.
    #[arg(long, value_name = "PATH", default_value = "python3")]
    python: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        self.output.human_or_json("verify")?;
        let dir = bundle_dir_of(&self.bundle)?;
        let found = match AnyManifest::read(&dir.join(FILE_NAME))? {
            AnyManifest::Pyodide(manifest) => {
                python::verify::verify(&dir, &manifest, &self.python)?
            }
            AnyManifest::Kernel(_) => kernel::verify::verify(&dir)?,
        };
        let (parity, max_abs_diff) = match &found.parity {
            Some(Reproduction::Exact) => (Some("exact"), None),
            Some(Reproduction::WithinTolerance { max_abs_diff }) => {
                (Some("within_tolerance"), Some(*max_abs_diff))
            }
            _ => (None, None),
        };
        if self.output.is_json() {
            println!(
                "{}",
                serde_json::json!({
                    "intact": found.is_intact(),
                    "problems": found.problems,
                    "parity": parity,
                    "max_abs_diff": max_abs_diff,
                })
            );
        } else if self.output.is_human() {
            if found.is_intact() {
                let how = match max_abs_diff {
                    Some(diff) => format!(
                        " within tolerance {:e} (max |Δ| now {diff:.3e}; the variants may round \
                         differently from run to run or machine to machine)",
                        found.tolerance
                    ),
                    None => " exactly".into(),
                };
                println!(
                    "{}: {} files match the manifest; parity reproduced on {} samples{how}",
                    dir.display(),
                    found.files,
                    found.samples,
                );
            } else {
                for problem in &found.problems {
                    println!("✗ {problem}");
                }
            }
        }
        Ok(if found.is_intact() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(CHECK_FAILED)
        })
    }
}
