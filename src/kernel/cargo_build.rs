//! Stage 1: compile the kernel for wasm32 and as a native host cdylib with one cargo profile.

use crate::exit::input_error;
use crate::kernel::project::KernelProject;
use crate::kernel::rustc_wrapper;
use crate::kernel::shake::WASM_BINDGEN_MODULES;
use crate::kernel::sources::{REMAPPED_ROOT, StagedSources};
use crate::profile::Profile;
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

/// A cargo build that failed: what it printed last, and each crate it said it could not compile
/// (found in all it printed, which warnings after the error can push out of the tail).
#[derive(Debug)]
struct CargoBuildFailed {
    message: String,
    not_compiled: Vec<String>,
}

impl std::fmt::Display for CargoBuildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CargoBuildFailed {}

/// One line for a failed [`compile`]: the crates cargo could not compile, else the error's first
/// line.
pub fn failure_summary(error: &anyhow::Error) -> String {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<CargoBuildFailed>())
        .filter(|failed| !failed.not_compiled.is_empty())
        .map(|failed| failed.not_compiled.join("; "))
        .unwrap_or_else(|| {
            error
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
}

/// One compiled variant.
#[derive(Debug, Clone)]
pub struct CompiledVariant {
    pub target: String,
    pub artifact: PathBuf,
    pub rustflags: Vec<String>,
    /// getrandom packages built without the `wasm_js` feature their dependants turned on
    /// ([`rustc_wrapper`]).
    pub getrandom_without_wasm_js: Vec<String>,
}

/// Said when getrandom failed to build for a target without an OS: which getrandom, who pulls it
/// in, and the fix. 0.3 and later build with the profile's `getrandom_backend` cfg; 0.2 chooses
/// its backend by its own features only, which the tool cannot set without editing the crate.
fn getrandom_note(
    project: &KernelProject,
    target: &str,
    offline: bool,
    cargo_stderr: &str,
) -> Option<String> {
    if !cargo_stderr.contains("could not compile `getrandom`") || !target.ends_with("-unknown") {
        return None;
    }
    let old = |p: &cargo_metadata::Package| {
        p.name.as_str() == "getrandom" && p.version.major == 0 && p.version.minor < 3
    };
    let any = |p: &cargo_metadata::Package| p.name.as_str() == "getrandom";
    let chain = dependency_chain(project, target, offline, &old)
        .or_else(|| dependency_chain(project, target, offline, &any))?;
    let pulled_by = chain.join(" → ");
    Some(
        if chain
            .last()
            .is_some_and(|g| g.starts_with("getrandom 0.2") || g.starts_with("getrandom 0.1"))
        {
            format!(
                "note: {pulled_by}: getrandom before 0.3 picks its {target} backend by a feature of its \
             own, and both it offers need more than a kernel has (`js`: wasm-bindgen's JavaScript \
             glue; `custom`: a function you register). Update the crate that pulls it in to a \
             release on getrandom 0.3 or later (the profile selects its `custom` backend, \
             which the helper crate supplies with no import), or depend on getrandom 0.2 with feature `custom` and register \
             one with `getrandom::register_custom_getrandom!` that returns an error: inference \
             needs no randomness"
            )
        } else {
            format!(
                "note: {pulled_by}: this getrandom did not take the profile's backend cfg \
             (`getrandom_backend`, in the profile's [wasm] cfg); a profile for {target} must \
             select one"
            )
        },
    )
}

/// Where WASI's imports come from; the loader and the measuring sandbox provide them.
const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// Fails when the shaken module imports anything but WASI, naming what it imports: an ABI v1
/// kernel runs in wasmtime, Node and browsers with nothing but its own exports. (Function glue
/// of wasm-bindgen's is a trap by then: see [`crate::kernel::shake`].)
pub fn check_host_imports(
    project: &KernelProject,
    target: &str,
    offline: bool,
    imports: &[String],
) -> Result<()> {
    let foreign: Vec<&String> = imports
        .iter()
        .filter(|i| i.split('.').next() != Some(WASI_MODULE))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let shown = foreign
        .iter()
        .take(3)
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let more = match foreign.len() {
        n if n > 3 => format!(" and {} more", n - 3),
        _ => String::new(),
    };
    let bindgen = foreign
        .iter()
        .any(|i| WASM_BINDGEN_MODULES.contains(&i.split('.').next().unwrap_or("")));
    if foreign
        .iter()
        .any(|i| i.as_str() == GETRANDOM_CUSTOM_IMPORT)
    {
        bail!(
            "crate `{}` built for {target} asks for randomness while it runs, and nothing it links \
             supplies any: its ABI exports reach getrandom, whose `custom` backend (the profile's \
             `getrandom_backend` cfg) calls `__getrandom_v03_custom`, and no linked crate defines \
             it, so the module would import `{GETRANDOM_CUSTOM_IMPORT}`. Depend on \
             wasmpack-infer-kernel (its `wasm-getrandom` feature, on by default, defines a \
             deterministic one) or define `__getrandom_v03_custom` in the kernel",
            project.name
        );
    }
    if bindgen {
        bail!(
            "crate `{}` built for {target} imports {} values from a JavaScript host ({shown}{more}): \
             wasm-bindgen's glue{}. {GLUE_FIX}",
            project.name,
            foreign.len(),
            pulled_in_by_bindgen(project, target, offline)
        );
    }
    bail!(
        "crate `{}` built for {target} imports {} functions no linked crate defines ({shown}{more}): \
         an `extern` block (a C library, or a crate's FFI) that its host would have to provide. \
         ABI v1 kernels may import nothing but WASI (`--profile wasi`)",
        project.name,
        foreign.len()
    )
}

/// What to do about wasm-bindgen glue a kernel needs.
const GLUE_FIX: &str = "An ABI v1 kernel runs in wasmtime, Node and browsers with no \
    JavaScript glue: turn off the feature that enables wasm-bindgen (getrandom 0.2's `js`, a \
    crate's `wasm-bindgen`, `web` or `js` feature; getrandom 0.4's `wasm_js` the tool leaves out \
    itself), or keep the call that needs JavaScript out of the code inference runs";

/// The error for a kernel whose run called `import`, wasm-bindgen glue the shipped module has as
/// a trap, with the error that run stopped with as its cause.
pub fn glue_called(
    project: &KernelProject,
    target: &str,
    offline: bool,
    import: &str,
    run_error: anyhow::Error,
) -> anyhow::Error {
    run_error.context(format!(
        "crate `{}` built for {target} called `{import}` while running its samples: \
         wasm-bindgen's glue{}, which needs a JavaScript host. {GLUE_FIX}",
        project.name,
        pulled_in_by_bindgen(project, target, offline)
    ))
}

/// `, pulled in by kernel → … → wasm-bindgen x.y`, or nothing when cargo cannot say.
fn pulled_in_by_bindgen(project: &KernelProject, target: &str, offline: bool) -> String {
    let is_bindgen = |p: &cargo_metadata::Package| p.name.as_str() == "wasm-bindgen";
    dependency_chain(project, target, offline, &is_bindgen)
        .map(|chain| format!(", pulled in by {}", chain.join(" → ")))
        .unwrap_or_default()
}

/// What a module imports when getrandom's `custom` backend is reachable and no linked crate
/// defines its function.
const GETRANDOM_CUSTOM_IMPORT: &str = "env.__getrandom_v03_custom";

/// The kernel crate's dependency graph as cargo resolves it for `target`.
fn metadata_for(
    project: &KernelProject,
    target: &str,
    offline: bool,
) -> Result<cargo_metadata::Metadata> {
    let mut command = cargo_metadata::MetadataCommand::new();
    command.manifest_path(&project.manifest_path);
    let mut options = vec!["--filter-platform".to_string(), target.to_string()];
    if offline {
        options.push("--offline".into());
    }
    command.other_options(options);
    command.exec().with_context(|| {
        format!(
            "resolving the dependencies of `{}` for {target}",
            project.name
        )
    })
}

/// getrandom packages whose `wasm_js` feature must be left out (see [`rustc_wrapper`]): only on
/// a target without an OS, and only when the profile picks a backend by cfg.
fn getrandom_without_wasm_js(
    project: &KernelProject,
    target: &str,
    rustflags: &[String],
    offline: bool,
) -> Result<Vec<cargo_metadata::semver::Version>> {
    let picks_backend = rustflags.iter().any(|f| f.starts_with("getrandom_backend"));
    if !picks_backend || !target.ends_with("-unknown") {
        return Ok(Vec::new());
    }
    Ok(rustc_wrapper::getrandom_with_wasm_js(&metadata_for(
        project, target, offline,
    )?))
}

/// `crate version` names from the kernel crate to the first package `wanted` accepts, through
/// the dependencies cargo resolves for `target`; `None` when there is none or cargo cannot say.
fn dependency_chain(
    project: &KernelProject,
    target: &str,
    offline: bool,
    wanted: &dyn Fn(&cargo_metadata::Package) -> bool,
) -> Option<Vec<String>> {
    let metadata = metadata_for(project, target, offline).ok()?;
    let resolve = metadata.resolve.as_ref()?;
    let root = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == project.name && p.source.is_none())?;
    let package = |id: &cargo_metadata::PackageId| metadata.packages.iter().find(|p| &p.id == id);
    let name = |id: &cargo_metadata::PackageId| {
        package(id).map_or(id.repr.clone(), |p| format!("{} {}", p.name, p.version))
    };
    // Breadth first: the shortest chain, which is the one to change.
    let mut came_from: std::collections::HashMap<
        &cargo_metadata::PackageId,
        &cargo_metadata::PackageId,
    > = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([&root.id]);
    while let Some(id) = queue.pop_front() {
        if id != &root.id && package(id).is_some_and(wanted) {
            let mut chain = vec![name(id)];
            let mut at = id;
            while let Some(parent) = came_from.get(at) {
                chain.push(name(parent));
                at = parent;
            }
            chain.reverse();
            return Some(chain);
        }
        let node = resolve.nodes.iter().find(|n| &n.id == id)?;
        for dep in &node.deps {
            let build_only = dep
                .dep_kinds
                .iter()
                .all(|k| k.kind != cargo_metadata::DependencyKind::Normal);
            if !build_only && dep.pkg != root.id && !came_from.contains_key(&dep.pkg) {
                came_from.insert(&dep.pkg, id);
                queue.push_back(&dep.pkg);
            }
        }
    }
    None
}

/// Where the tool's builds go: beside the crate's own target directory, so neither
/// invalidates the other's cache.
pub fn tool_target_dir(project: &KernelProject) -> PathBuf {
    project.target_directory.join("wasmpack-infer")
}

/// One cargo build of the kernel's cdylib.
pub struct CompileRequest<'a> {
    /// Whose cargo settings apply.
    pub profile: &'a Profile,
    /// The cargo profile (inheriting `release`) they are defined as.
    pub cargo_profile: &'a str,
    pub target: &'a str,
    pub rustflags: &'a [String],
    /// Cargo features of the kernel crate.
    pub features: &'a [String],
    pub offline: bool,
}

/// Compiles the kernel's cdylib as `request` says.
pub fn compile(
    project: &KernelProject,
    sources: &StagedSources,
    request: &CompileRequest,
) -> Result<CompiledVariant> {
    let &CompileRequest {
        profile,
        cargo_profile,
        target,
        rustflags,
        features,
        offline,
    } = request;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--lib", "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&sources.manifest_path)
        .args(["--package", &project.name])
        .args(["--target", target])
        .args(["--profile", cargo_profile])
        .arg("--target-dir")
        .arg(tool_target_dir(project));
    for setting in profile.cargo_profile_config(cargo_profile) {
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
    let getrandom_without_wasm_js = getrandom_without_wasm_js(project, target, rustflags, offline)?;
    if !getrandom_without_wasm_js.is_empty() {
        command.envs(rustc_wrapper::cargo_env(&getrandom_without_wasm_js)?);
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
        let stderr_text = sources.to_original_paths(&stderr_text);
        let notes: String = [
            sources.missing_file_note(&stderr_text),
            getrandom_note(project, target, offline, &stderr_text),
        ]
        .into_iter()
        .flatten()
        .map(|note| format!("\n{note}"))
        .collect();
        return Err(anyhow::Error::new(CargoBuildFailed {
            message: format!(
                "`cargo build --target {target}` failed for crate `{}` ({status}):\n{}{notes}",
                project.name,
                crate::tools::tail_lines(&stderr_text, 40),
            ),
            not_compiled: stderr_text
                .lines()
                .filter_map(|line| line.trim().strip_prefix("error: could not compile "))
                .map(|rest| format!("could not compile {rest}"))
                .collect(),
        }));
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
        getrandom_without_wasm_js: getrandom_without_wasm_js
            .iter()
            .map(|v| format!("getrandom {v}"))
            .collect(),
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
    fn a_failed_compile_is_summed_up_by_the_crate_cargo_could_not_compile() {
        let failed = anyhow::Error::new(CargoBuildFailed {
            message: "`cargo build --target wasm32-unknown-unknown` failed for crate `k` (exit \
                      status: 101):\n   Compiling zerocopy v0.8.27"
                .into(),
            not_compiled: vec![
                "could not compile `macerator` (lib) due to 2 previous errors".into(),
            ],
        })
        .context("building kernel crate `k`, relaxed-simd variant");
        assert_eq!(
            failure_summary(&failed),
            "could not compile `macerator` (lib) due to 2 previous errors"
        );
        let other = anyhow::anyhow!("cargo built crate `k` but reported no cdylib artifact");
        assert_eq!(
            failure_summary(&other),
            "cargo built crate `k` but reported no cdylib artifact"
        );
    }

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
