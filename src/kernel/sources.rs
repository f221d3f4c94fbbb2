//! A content-addressed copy of a kernel's local sources, built from instead of the checkout.
//!
//! Cargo's `-C metadata` hash of a path dependency that lies outside the workspace root (the
//! helper crate at `../../kernel`, say) includes its absolute path. That hash names the crate's
//! symbols, and their order moves the native library's code layout: two checkouts of different
//! path lengths built native libraries 16 bytes of `.text` apart, which `--remap-path-prefix`
//! cannot reach. Building every checkout from one directory named by the sources' content makes
//! the same sources build the same bytes wherever they are checked out.

use anyhow::{Context, Result, bail};
use cargo_metadata::MetadataCommand;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::fsx;
use crate::kernel::project::KernelProject;

/// Stages of one crate kept besides the one in use, so that checkouts building in turn rarely
/// copy again.
const STAGES_KEPT: usize = 3;
/// Written last into a complete stage; its mtime says when the stage was last used.
const COMPLETE_MARKER: &str = ".wpi-staged";

/// Where a build reads its sources from.
#[derive(Debug)]
pub struct StagedSources {
    /// The stage: the sources' common ancestor, mirrored.
    pub root: PathBuf,
    /// The kernel's Cargo.toml inside the stage.
    pub manifest_path: PathBuf,
    /// The directory `root` mirrors, to name the user's files in build errors.
    pub original_root: PathBuf,
    /// A copy (else the checkout itself, `--in-place`).
    pub staged: bool,
}

/// What the stage is called inside the artifacts (`--remap-path-prefix`), and so in rustc's
/// diagnostics too.
pub const REMAPPED_ROOT: &str = "/build";

impl StagedSources {
    /// `text` (cargo's or rustc's output) with the stage's paths named as the user's.
    pub fn to_original_paths(&self, text: &str) -> String {
        let original = self.original_root.display().to_string();
        text.replace(&self.root.display().to_string(), &original)
            .replace(&format!("{REMAPPED_ROOT}/"), &format!("{original}/"))
    }

    /// Said after a build that failed for want of a file (`cargo_stderr` says so): what the copy
    /// leaves out, and the way around it.
    pub fn missing_file_note(&self, cargo_stderr: &str) -> Option<String> {
        let missing_file = ["couldn't read", "No such file or directory", "os error 2"]
            .iter()
            .any(|sign| cargo_stderr.contains(sign));
        (self.staged && missing_file).then(|| {
            format!(
                "note: cargo built from a copy of the crate's local packages ({}); a file outside \
                 them (read by include_bytes!, a build script, …) is not in it: move it into the \
                 crate, or build with --in-place",
                self.root.display()
            )
        })
    }
}

/// Where the build reads its sources: a stage (see [`stage`]) or, `in_place`, the checkout itself
/// (for a crate that reads files outside its packages; its native library then depends on the
/// checkout's path).
pub fn prepare(
    project: &KernelProject,
    exclude: &[PathBuf],
    in_place: bool,
    offline: bool,
) -> Result<StagedSources> {
    let local = LocalSources::read(project, offline)?;
    if in_place {
        return Ok(StagedSources {
            root: local.original_root.clone(),
            manifest_path: project.manifest_path.clone(),
            original_root: local.original_root,
            staged: false,
        });
    }
    stage(project, &local, exclude)
}

/// The crate's workspace and the local (path) packages it depends on, as cargo resolves them.
struct LocalSources {
    workspace_root: PathBuf,
    package_dirs: Vec<PathBuf>,
    /// Their common ancestor.
    original_root: PathBuf,
}

impl LocalSources {
    fn read(project: &KernelProject, offline: bool) -> Result<Self> {
        let mut command = MetadataCommand::new();
        command.manifest_path(&project.manifest_path);
        if offline {
            command.other_options(vec!["--offline".to_string()]);
        }
        let metadata = command.exec().with_context(|| {
            format!(
                "resolving the local packages of {}",
                project.manifest_path.display()
            )
        })?;
        let mut package_dirs: Vec<PathBuf> = metadata
            .packages
            .iter()
            .filter(|p| p.source.is_none())
            .filter_map(|p| {
                p.manifest_path
                    .parent()
                    .map(|d| d.as_std_path().to_path_buf())
            })
            .collect();
        package_dirs.sort();
        package_dirs.dedup();
        let workspace_root = metadata.workspace_root.as_std_path().to_path_buf();
        let original_root = package_dirs
            .iter()
            .fold(workspace_root.clone(), |common, dir| {
                common_ancestor(&common, dir)
            });
        Ok(Self {
            workspace_root,
            package_dirs,
            original_root,
        })
    }
}

impl LocalSources {
    /// Every file to stage, sorted. Left out: `.git`, cargo's output (a package's own `target/`,
    /// any directory cargo tagged as a cache; a `src/target/` module directory stays) and
    /// anything under `exclude`.
    fn files(&self, exclude: &[PathBuf]) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        // A virtual workspace's root holds no package: its manifest and lock are all it adds.
        if !self.package_dirs.contains(&self.workspace_root) {
            for name in ["Cargo.toml", "Cargo.lock"] {
                let path = self.workspace_root.join(name);
                if path.is_file() {
                    files.push(path);
                }
            }
        }
        let skip = |dir: &Path| {
            exclude.iter().any(|e| dir.starts_with(e))
                || dir.join("CACHEDIR.TAG").is_file()
                || self.package_dirs.iter().any(|p| dir == p.join("target"))
        };
        for dir in &self.package_dirs {
            collect_files(dir, &skip, &mut files)?;
        }
        files.sort();
        files.dedup();
        Ok(files)
    }
}

/// Copies the crate's workspace and every local (path) package it depends on into
/// `<cache>/stage/<crate>-<sha256 of their files>/`, unless that stage exists already; which files,
/// [`LocalSources::files`] says.
fn stage(
    project: &KernelProject,
    local: &LocalSources,
    exclude: &[PathBuf],
) -> Result<StagedSources> {
    let files = local.files(exclude)?;
    let original_root = &local.original_root;

    // One line per file (path, executable bit, content hash); the stage is named by their hash.
    let mut listing = String::new();
    let mut entries = Vec::with_capacity(files.len());
    for path in files {
        let relative = path
            .strip_prefix(original_root)
            .expect("every staged file lies under the common ancestor")
            .to_path_buf();
        let bytes = fsx::read(&path)?;
        let executable = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        listing.push_str(&format!(
            "{:?} {executable} {}\n",
            relative,
            fsx::sha256_hex(&bytes)
        ));
        entries.push((relative, bytes, executable));
    }
    let hash = &fsx::sha256_hex(listing.as_bytes())[..16];
    let stages = fsx::cache_dir().join("stage");
    let root = stages.join(format!("{}-{hash}", project.name));
    if root.join(COMPLETE_MARKER).is_file() {
        // Only the marker's mtime changes: a rewrite would make cargo rebuild the crate.
        fsx::write(&root.join(COMPLETE_MARKER), b"")?;
    } else {
        write_stage(&stages, &root, &entries)?;
    }
    prune(&stages, &project.name, &root);
    let manifest_path = root.join(
        project
            .manifest_path
            .strip_prefix(original_root)
            .context("the kernel's Cargo.toml lies outside its own sources")?,
    );
    Ok(StagedSources {
        root,
        manifest_path,
        original_root: original_root.clone(),
        staged: true,
    })
}

fn collect_files(dir: &Path, skip: &dyn Fn(&Path) -> bool, files: &mut Vec<PathBuf>) -> Result<()> {
    if skip(dir) {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading sources in {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading sources in {}", dir.display()))?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let path = entry.path();
        // Followed like cargo follows them: a linked file is staged with its content.
        let metadata =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        if metadata.is_dir() {
            collect_files(&path, skip, files)?;
        } else if metadata.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// Writes the stage beside its final name and renames it into place, so a build killed halfway
/// leaves no stage that looks complete; a racing build that finished first wins.
fn write_stage(stages: &Path, root: &Path, entries: &[(PathBuf, Vec<u8>, bool)]) -> Result<()> {
    std::fs::create_dir_all(stages).with_context(|| format!("creating {}", stages.display()))?;
    let partial = tempfile::Builder::new()
        .prefix(".partial-")
        .tempdir_in(stages)
        .with_context(|| format!("creating a stage in {}", stages.display()))?;
    for (relative, bytes, executable) in entries {
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            bail!(
                "cannot stage {}: not a plain relative path",
                relative.display()
            );
        }
        let path = partial.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        fsx::write(&path, bytes)?;
        if *executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("marking {} executable", path.display()))?;
        }
    }
    fsx::write(&partial.path().join(COMPLETE_MARKER), b"")?;
    let partial = partial.keep();
    if std::fs::rename(&partial, root).is_err() {
        // Another build staged the same sources first: theirs is identical.
        let _ = std::fs::remove_dir_all(&partial);
        if !root.join(COMPLETE_MARKER).is_file() {
            bail!("could not stage the kernel's sources at {}", root.display());
        }
    }
    Ok(())
}

/// Removes the crate's least recently used stages beyond [`STAGES_KEPT`], and partial stages of
/// builds that died a day or more ago. Best effort: a stage in use elsewhere is recreated.
fn prune(stages: &Path, crate_name: &str, current: &Path) {
    let Ok(entries) = std::fs::read_dir(stages) else {
        return;
    };
    let prefix = format!("{crate_name}-");
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    let mut used: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if name.starts_with(".partial-") {
            if modified(&path).is_some_and(|t| t < day_ago) {
                let _ = std::fs::remove_dir_all(&path);
            }
        } else if path != current
            && name
                .strip_prefix(&prefix)
                .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            let when = modified(&path.join(COMPLETE_MARKER)).unwrap_or(std::time::UNIX_EPOCH);
            used.push((when, path));
        }
    }
    used.sort_by_key(|(when, _)| std::cmp::Reverse(*when));
    for (_, path) in used.into_iter().skip(STAGES_KEPT) {
        let _ = std::fs::remove_dir_all(path);
    }
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_ancestor_of_sibling_trees() {
        assert_eq!(
            common_ancestor(Path::new("/r/examples/a"), Path::new("/r/kernel")),
            PathBuf::from("/r")
        );
        assert_eq!(
            common_ancestor(Path::new("/r/a"), Path::new("/r/a/b")),
            PathBuf::from("/r/a")
        );
    }

    #[test]
    fn prune_keeps_the_most_recently_used_stages_and_fresh_partials() {
        let stages = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now();
        let hours_ago = |h: u64| now - std::time::Duration::from_secs(h * 3600);
        let stage = |name: &str, used: std::time::SystemTime| {
            let dir = stages.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let marker = std::fs::File::create(dir.join(COMPLETE_MARKER)).unwrap();
            marker.set_modified(used).unwrap();
            dir
        };
        let current = stage("k-0000000000000000", hours_ago(100));
        for age in 1..=5 {
            stage(&format!("k-{age:016x}"), hours_ago(age));
        }
        stage("other-0000000000000000", hours_ago(100));
        stage("k-not-a-stage", hours_ago(100));
        let fresh = stages.path().join(".partial-fresh");
        std::fs::create_dir(&fresh).unwrap();
        let stale = stages.path().join(".partial-stale");
        std::fs::create_dir(&stale).unwrap();
        std::fs::File::open(&stale)
            .unwrap()
            .set_modified(hours_ago(30))
            .unwrap();

        prune(stages.path(), "k", &current);
        let mut left: Vec<String> = std::fs::read_dir(stages.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".partial-fresh",
                "k-0000000000000000",
                "k-0000000000000001",
                "k-0000000000000002",
                "k-0000000000000003",
                "k-not-a-stage",
                "other-0000000000000000",
            ]
        );
    }

    #[test]
    fn staged_files_leave_out_build_output_and_git_only() {
        let root = tempfile::tempdir().unwrap();
        let kernel = root.path().join("kernel");
        let dist = kernel.join("dist");
        for file in [
            "Cargo.toml",
            "src/lib.rs",
            "src/target/mod.rs",
            "target/debug/libkernel.so",
            "build-cache/CACHEDIR.TAG",
            "build-cache/out.o",
            ".git/config",
            "dist/bundle/manifest.json",
        ] {
            let path = kernel.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file).unwrap();
        }
        let local = LocalSources {
            workspace_root: kernel.clone(),
            package_dirs: vec![kernel.clone()],
            original_root: root.path().to_path_buf(),
        };
        let files: Vec<PathBuf> = local
            .files(&[dist])
            .unwrap()
            .into_iter()
            .map(|f| f.strip_prefix(&kernel).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            files,
            ["Cargo.toml", "src/lib.rs", "src/target/mod.rs"].map(PathBuf::from)
        );
    }

    #[test]
    fn stage_paths_are_named_as_the_users_in_errors() {
        let staged = StagedSources {
            root: PathBuf::from("/cache/stage/k-0123456789abcdef"),
            manifest_path: PathBuf::from("/cache/stage/k-0123456789abcdef/k/Cargo.toml"),
            original_root: PathBuf::from("/home/me/repo"),
            staged: true,
        };
        assert_eq!(
            staged.to_original_paths(
                "error at /build/k/src/lib.rs:3\n(in /cache/stage/k-0123456789abcdef/k/Cargo.toml)"
            ),
            "error at /home/me/repo/k/src/lib.rs:3\n(in /home/me/repo/k/Cargo.toml)"
        );
    }
}
