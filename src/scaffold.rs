//! `new`: project scaffolds from `templates/`, embedded so an installed binary can write them.

use crate::bundle::pack::{self, BundleFile};
use crate::exit::input_error;
use crate::fsx::StagingDir;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Template files of a kernel crate: path in the new project, text with `{{name}}` placeholders.
const KERNEL_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/kernel/Cargo.toml.tmpl"),
    ),
    ("src/lib.rs", include_str!("../templates/kernel/src/lib.rs")),
];
/// Template files of a Python project; `package/` becomes the import package's directory.
const PYTHON_TEMPLATE: &[(&str, &str)] = &[
    (
        "pyproject.toml",
        include_str!("../templates/python/new/pyproject.toml.tmpl"),
    ),
    (
        "package/__init__.py",
        include_str!("../templates/python/new/package/__init__.py"),
    ),
    (
        "package/model.py",
        include_str!("../templates/python/new/package/model.py"),
    ),
];
/// The release workflow both scaffolds get; `{{build_args}}` is what `build` needs beyond `.`.
const RELEASE_WORKFLOW: (&str, &str) = (
    ".github/workflows/release.yml",
    include_str!("../templates/ci/github-release.yml"),
);
/// Samples `new` writes for both templates' 8-feature input.
const SAMPLES: usize = 16;
const FEATURES: usize = 8;

/// The files of a new kernel crate called `name`.
pub fn kernel_files(name: &str) -> Result<Vec<BundleFile>> {
    check_name(name, "crate")?;
    let mut files = fill(KERNEL_TEMPLATE, &[("{{name}}", name)]);
    files.extend(fill(&[RELEASE_WORKFLOW], &[("{{build_args}}", "")]));
    let bytes: Vec<u8> = sample_inputs(SAMPLES * FEATURES)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    files.push(BundleFile::new("samples/inputs.bin", bytes));
    Ok(files)
}

/// The files of a new Python project called `name`; its import package is `name` in snake case.
pub fn python_files(name: &str) -> Result<Vec<BundleFile>> {
    check_name(name, "project")?;
    let package = name.replace('-', "_").to_ascii_lowercase();
    let mut files = fill(
        PYTHON_TEMPLATE,
        &[("{{name}}", name), ("{{package}}", &package)],
    );
    for file in &mut files {
        if let Some(rest) = file.path.strip_prefix("package/") {
            file.path = format!("{package}/{rest}");
        }
    }
    let pyodide = format!(" --pyodide npm:{}", crate::python::dist::TESTED_VERSION);
    files.extend(fill(&[RELEASE_WORKFLOW], &[("{{build_args}}", &pyodide)]));
    let values = sample_inputs(SAMPLES * FEATURES);
    let samples: Vec<&[f32]> = values.chunks(FEATURES).collect();
    let mut json = serde_json::to_vec(&samples).expect("samples serialize");
    json.push(b'\n');
    files.push(BundleFile::new("samples.json", json));
    Ok(files)
}

/// Template files with each placeholder replaced.
fn fill(template: &[(&str, &str)], values: &[(&str, &str)]) -> Vec<BundleFile> {
    template
        .iter()
        .map(|(path, text)| {
            let text = values.iter().fold(text.to_string(), |text, (slot, value)| {
                text.replace(slot, value)
            });
            BundleFile::new(*path, text.into_bytes())
        })
        .collect()
}

/// Deterministic values in [-1, 1) (a 64-bit LCG), so every scaffold measures the same inputs
/// until the user supplies real ones.
fn sample_inputs(count: usize) -> Vec<f32> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            unit * 2.0 - 1.0
        })
        .collect()
}

/// A crate or Python project name: a letter, then letters, digits, `-` or `_` (valid for cargo
/// and PEP 508, and a Python identifier once `-` becomes `_`).
fn check_name(name: &str, what: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(input_error(format!(
            "`{name}` is not a valid {what} name: start with a letter, then letters, digits, `-` or `_`"
        )));
    }
    Ok(())
}

/// Writes `files` as a new project at `dir`, all or nothing; an existing non-empty `dir` is left
/// alone and reported.
pub fn write_project(dir: &Path, files: &[BundleFile]) -> Result<PathBuf> {
    let occupied =
        dir.is_file() || std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(input_error(format!(
            "{} already exists and is not empty",
            dir.display()
        )));
    }
    let staging = StagingDir::new(dir)?;
    pack::write_files(staging.path(), files)?;
    staging.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(kernel_files("my-kernel_2").is_ok());
        for bad in ["", "2fast", "has space", "../escape"] {
            assert!(kernel_files(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kernel_scaffold_fills_the_name_and_writes_samples() {
        let files = kernel_files("tiny").unwrap();
        let manifest = String::from_utf8(files[0].bytes.clone()).unwrap();
        assert!(manifest.contains("name = \"tiny\"") && !manifest.contains("{{"));
        let workflow = files
            .iter()
            .find(|f| f.path == ".github/workflows/release.yml")
            .unwrap();
        let workflow = String::from_utf8(workflow.bytes.clone()).unwrap();
        assert!(
            workflow.contains("run: cargo wasmpack-infer build . --check\n"),
            "{workflow}"
        );
        let samples = files
            .iter()
            .find(|f| f.path == "samples/inputs.bin")
            .unwrap();
        assert_eq!(samples.bytes.len(), SAMPLES * FEATURES * 4);
        let values = crate::manifest::Dtype::F32.decode(&samples.bytes);
        assert!(values.iter().all(|v| (-1.0..1.0).contains(v)));
    }

    #[test]
    fn python_scaffold_names_its_package_and_writes_json_samples() {
        let files = python_files("My-Model").unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "pyproject.toml",
                "my_model/__init__.py",
                "my_model/model.py",
                ".github/workflows/release.yml",
                "samples.json"
            ]
        );
        let workflow = String::from_utf8(files[3].bytes.clone()).unwrap();
        assert!(
            workflow.contains("build . --check --pyodide npm:"),
            "{workflow}"
        );
        let pyproject = String::from_utf8(files[0].bytes.clone()).unwrap();
        assert!(
            pyproject.contains(r#"entry = "my_model.model:predict""#),
            "{pyproject}"
        );
        assert!(!pyproject.contains("{{"));
        let samples: Vec<Vec<f64>> = serde_json::from_slice(&files[4].bytes).unwrap();
        assert_eq!((samples.len(), samples[0].len()), (SAMPLES, FEATURES));
        assert!(python_files("1st").is_err());
    }

    #[test]
    fn existing_directories_are_not_overwritten() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("keep.txt"), "mine").unwrap();
        assert!(write_project(root.path(), &kernel_files("x").unwrap()).is_err());
        assert_eq!(
            std::fs::read_to_string(root.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
