//! Reading a bundle written by `build`: its manifest, and its files checked against it.

pub mod demo;
pub mod inspect;
pub mod layout;
pub mod names;
pub mod npm;
pub mod pack;

use crate::exit::input_error;
use crate::fsx;
use crate::manifest::kernel::KernelManifest;
use crate::manifest::{self, FileEntry, Parity, Reproduction};
use crate::measure::timing::SampleSet;
use crate::measure::variants::{CudaRequest, Variants};
use anyhow::Result;
use std::path::{Component, Path, PathBuf};

/// What `verify` found in a bundle, either kind: every problem (none when intact), how many
/// files and samples it checked against which tolerance, and, when the samples ran again, how
/// their parity came out.
#[derive(Debug)]
pub struct Verified {
    pub problems: Vec<String>,
    pub parity: Option<Reproduction>,
    pub files: usize,
    pub samples: usize,
    pub tolerance: f64,
}

impl Verified {
    /// The files under `dir` checked against `files`; the samples not run yet.
    pub fn files_checked(
        dir: &Path,
        files: &[FileEntry],
        samples: usize,
        tolerance: f64,
    ) -> Result<Self> {
        Ok(Self {
            problems: file_problems(dir, files)?,
            parity: None,
            files: files.len(),
            samples,
            tolerance,
        })
    }

    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// Records how `rerun` reproduces the `recorded` parity between `between` (a problem when it
    /// does not).
    pub fn record_parity(&mut self, between: &str, recorded: &Parity, rerun: &Parity) {
        let reproduction = recorded.reproduced_by(rerun);
        if let Reproduction::Differs(at) = &reproduction {
            self.problems
                .push(format!("parity {between} differs from the manifest ({at})"));
        }
        self.parity = Some(reproduction);
    }

    /// Records a problem found while re-running the samples.
    pub fn record_problem(&mut self, problem: String) {
        self.problems.push(problem);
    }
}

pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: KernelManifest,
}

impl Bundle {
    pub fn open(dir: &Path) -> Result<Self> {
        let manifest_path = dir.join(manifest::FILE_NAME);
        if !manifest_path.is_file() {
            return Err(input_error(format!(
                "{} is not a bundle: it has no {}",
                dir.display(),
                manifest::FILE_NAME
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest: KernelManifest::read(&manifest_path)?,
        })
    }

    /// The path of a bundle file the manifest names; see [`path_in`].
    pub fn path_of(&self, relative: &str) -> Result<PathBuf> {
        path_in(&self.dir, relative)
    }

    pub fn read(&self, relative: &str) -> Result<Vec<u8>> {
        fsx::read(&self.path_of(relative)?).map_err(|e| input_error(format!("{e:#}")))
    }

    /// The bundle's variants as parity and timing runs take them, over bytes the caller read.
    pub fn variants<'a>(
        &'a self,
        wasm: &'a [u8],
        native_library: &'a Path,
        samples: &'a [u8],
    ) -> Variants<'a> {
        let kernel = &self.manifest.kernel;
        Variants {
            wasm,
            native_library,
            samples: SampleSet {
                data: samples,
                input_bytes: kernel.input.bytes(),
                output_bytes: kernel.output.bytes(),
            },
            output: &kernel.output,
            tolerance: kernel.tolerance,
            cuda: CudaRequest::from_features(&self.manifest.native.features),
        }
    }

    /// Every way the files differ from the manifest's sizes, sha256 and SRI; empty when intact.
    pub fn file_problems(&self) -> Result<Vec<String>> {
        file_problems(&self.dir, &self.manifest.files)
    }

    /// Fails with an input error when a file differs from the manifest.
    pub fn ensure_intact(&self) -> Result<()> {
        ensure_intact(&self.dir, &self.manifest.files)
    }
}

/// The path of a bundle file a manifest names. A name that would leave the bundle (absolute, or
/// with `..`) is an input error: a manifest is data, not a key to the file system.
pub fn path_in(dir: &Path, relative: &str) -> Result<PathBuf> {
    let path = Path::new(relative);
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(input_error(format!(
            "{}: the manifest names `{relative}`, which is not a plain path inside the bundle",
            dir.display()
        )));
    }
    Ok(dir.join(path))
}

/// Every way the files under `dir` differ from `files` (sizes, sha256, SRI); empty when intact.
/// Used for both manifest kinds.
pub fn file_problems(dir: &Path, files: &[FileEntry]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for entry in files {
        let path = path_in(dir, &entry.path)?;
        let Ok(bytes) = std::fs::read(&path) else {
            problems.push(format!("{}: missing", path.display()));
            continue;
        };
        if bytes.len() as u64 != entry.bytes {
            problems.push(format!(
                "{}: {} bytes, the manifest says {}",
                path.display(),
                bytes.len(),
                entry.bytes
            ));
        }
        if fsx::sha256_hex(&bytes) != entry.sha256 {
            problems.push(format!(
                "{}: sha256 does not match the manifest",
                path.display()
            ));
        }
        if fsx::sri_sha384(&bytes) != entry.sri {
            problems.push(format!(
                "{}: SRI does not match the manifest",
                path.display()
            ));
        }
    }
    Ok(problems)
}

/// Fails with an input error when a file under `dir` differs from `files`.
pub fn ensure_intact(dir: &Path, files: &[FileEntry]) -> Result<()> {
    let problems = file_problems(dir, files)?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(input_error(format!(
        "the bundle was modified: {}",
        problems.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_cannot_leave_the_bundle() {
        let manifest: KernelManifest = serde_json::from_str(include_str!(
            "../../tests/fixtures/manifests/handwritten.json"
        ))
        .unwrap();
        let bundle = Bundle {
            dir: PathBuf::from("/tmp/b"),
            manifest,
        };
        assert!(bundle.path_of("handwritten.wasm").is_ok());
        for hostile in ["../etc/passwd", "/etc/passwd", "a/../../b", "./x"] {
            assert!(bundle.path_of(hostile).is_err(), "{hostile}");
        }
    }
}
