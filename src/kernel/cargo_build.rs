//! Stage 1: compile the kernel for wasm32 and as a native host cdylib with one cargo profile.

use crate::exit::input_error;
use crate::kernel::project::KernelProject;
use crate::kernel::sources::{REMAPPED_ROOT, StagedSources};
use crate::profile::{CARGO_PROFILE_NAME, Profile};
use anyhow::{Context, Result, bail};
use cargo_metadata::Message;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether the Rust standard library for `target` had to be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSetup {
    AlreadyInstalled,
    InstalledWithRustup,
}

/// Makes sure the standard library for `target` is present, installing it with rustup when
/// allowed.
pub fn ensure_target(target: &str, allow_install: bool) -> Result<TargetSetup> {
    if target_installed(target)? {
        return Ok(TargetSetup::AlreadyInstalled);
    }
    if !allow_install {
        return Err(input_error(format!(
            "the Rust target `{target}` is not installed and installing is disabled \
             (--offline/--no-install); run `rustup target add {target}`"
        )));
    }
    let output = Command::new("rustup")
        .args(["target", "add", target])
        .output()
        .context("running `rustup target add` (is rustup installed?)")?;
    if !output.status.success() {
        bail!(
            "`rustup target add {target}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(TargetSetup::InstalledWithRustup)
}

fn target_installed(target: &str) -> Result<bool> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .with_context(|| format!("running `{rustc} --print sysroot`"))?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir())
}

/// One compiled variant.
#[derive(Debug, Clone)]
pub struct CompiledVariant {
    pub target: String,
    pub artifact: PathBuf,
    pub rustflags: Vec<String>,
}

/// Where the tool's builds go: beside the crate's own target directory, so neither
/// invalidates the other's cache.
pub fn tool_target_dir(project: &KernelProject) -> PathBuf {
    project.target_directory.join("wasmpack-infer")
}

/// Compiles the kernel's cdylib for `target` with `profile`'s cargo settings plus `rustflags`
/// and the crate's `features`.
pub fn compile(
    project: &KernelProject,
    sources: &StagedSources,
    profile: &Profile,
    target: &str,
    rustflags: &[String],
    features: &[String],
    offline: bool,
) -> Result<CompiledVariant> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--lib", "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&sources.manifest_path)
        .args(["--package", &project.name])
        .args(["--target", target])
        .args(["--profile", CARGO_PROFILE_NAME])
        .arg("--target-dir")
        .arg(tool_target_dir(project));
    for setting in profile.cargo_profile_config() {
        command.args(["--config", &setting]);
    }
    // Remapping is not recorded with the profile's flags: it only keeps absolute paths (which
    // end up in panic locations) out of the artifacts, so checkouts in different directories
    // build the same bytes.
    let flags: Vec<String> = rustflags
        .iter()
        .cloned()
        .chain(path_remaps(sources))
        .map(|f| format!("{f:?}"))
        .collect();
    command.args([
        "--config",
        &format!("target.{target}.rustflags=[{}]", flags.join(",")),
    ]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    if offline {
        command.arg("--offline");
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("running `{cargo} build`"))?;

    // Drain stderr on its own thread so a chatty build cannot block on a full pipe.
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut artifact = None;
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    for message in Message::parse_stream(stdout) {
        if let Message::CompilerArtifact(built) =
            message.context("reading cargo's JSON messages")?
        {
            let is_kernel_lib = built.target.name.replace('-', "_") == project.lib_name
                && built
                    .target
                    .crate_types
                    .iter()
                    .any(|k| k.to_string() == "cdylib");
            if is_kernel_lib {
                artifact = built
                    .filenames
                    .iter()
                    .find(|f| is_cdylib_file(f.as_std_path()))
                    .map(|f| f.clone().into_std_path_buf());
            }
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    let stderr_text = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "`cargo build --target {target}` failed for crate `{}` ({status}):\n{}{}",
            project.name,
            crate::tools::tail_lines(&sources.to_original_paths(&stderr_text), 40),
            sources
                .failure_note()
                .map(|note| format!("\n{note}"))
                .unwrap_or_default()
        );
    }
    let artifact = artifact.with_context(|| {
        format!(
            "cargo built crate `{}` for {target} but reported no cdylib artifact",
            project.name
        )
    })?;
    Ok(CompiledVariant {
        target: target.to_string(),
        artifact,
        rustflags: rustflags.to_vec(),
    })
}

/// `--remap-path-prefix` flags mapping the machine-specific directories a build reads sources
/// from (cargo's home, the stage) to fixed names. When several match, rustc applies the last, so
/// the most specific come last.
fn path_remaps(sources: &StagedSources) -> Vec<String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    cargo_home
        .map(|home| (home, "/cargo"))
        .into_iter()
        .chain([(sources.root.clone(), REMAPPED_ROOT)])
        .map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display()))
        .collect()
}

fn is_cdylib_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("wasm" | "so" | "dylib" | "dll")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_target_without_install_is_a_usage_error_with_a_hint() {
        let err = ensure_target("wasm64-nowhere-none", false).unwrap_err();
        assert!(err.is::<crate::exit::InputError>());
        assert!(
            err.to_string()
                .contains("rustup target add wasm64-nowhere-none"),
            "{err}"
        );
        assert_eq!(
            ensure_target("wasm32-unknown-unknown", false).unwrap(),
            TargetSetup::AlreadyInstalled
        );
    }
}
