//! A copy of a kernel's local sources at a path that does not depend on the checkout, built from
//! instead of the checkout.
//!
//! Cargo's `-C metadata` hash of a path dependency that lies outside the workspace root (the
//! helper crate at `../../kernel`, say) includes its absolute path. That hash names the crate's
//! symbols, and their order moves the native library's code layout: two checkouts of different
//! path lengths built native libraries 16 bytes of `.text` apart, which `--remap-path-prefix`
//! cannot reach. Building every checkout from one directory named by the crate and its layout
//! makes the same sources build the same bytes wherever they are checked out.

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
    /// Held while the build reads the stage.
    _lock: Option<std::fs::File>,
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
            _lock: None,
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

/// Mirrors the crate's workspace and every local (path) package it depends on into
/// `<cache>/stage/<crate>-<hash of the crate's place among them>/` (which files,
/// [`LocalSources::files`] says), rewriting only the files that changed.
///
/// The stage's path is named by the layout, not the content: it is in every build's rustflags
/// (`--remap-path-prefix`), and rustflags are in every dependency's fingerprint, so a path that
/// moved with each edit rebuilt tract or burn cold after a one-line change. Checkouts with the
/// same layout share one stage, so they still build the same bytes; a lock held while the stage
/// is in use keeps two builds from rewriting it under each other.
fn stage(
    project: &KernelProject,
    local: &LocalSources,
    exclude: &[PathBuf],
) -> Result<StagedSources> {
    let original_root = &local.original_root;
    let manifest_in_stage = project
        .manifest_path
        .strip_prefix(original_root)
        .context("the kernel's Cargo.toml lies outside its own sources")?
        .to_path_buf();
    let mut entries = Vec::new();
    for path in local.files(exclude)? {
        let relative = path
            .strip_prefix(original_root)
            .expect("every staged file lies under the common ancestor")
            .to_path_buf();
        let executable = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        entries.push(StagedFile {
            bytes: fsx::read(&path)?,
            relative,
            executable,
        });
    }

    let stages = fsx::cache_dir().join("stage");
    std::fs::create_dir_all(&stages).with_context(|| format!("creating {}", stages.display()))?;
    let root = stages.join(stage_name(&project.name, &manifest_in_stage));
    let lock = lock_stage(&root)?;
    sync_stage(&root, &entries)?;
    prune(&stages, &project.name, &root);
    Ok(StagedSources {
        manifest_path: root.join(manifest_in_stage),
        root,
        original_root: original_root.clone(),
        staged: true,
        _lock: Some(lock),
    })
}

/// `<crate>-<16 hex digits>`, named by where the crate's Cargo.toml lies among its local
/// packages, so that two crates of one name laid out differently do not take turns at one stage.
fn stage_name(crate_name: &str, manifest_in_stage: &Path) -> String {
    let layout = format!("{manifest_in_stage:?}");
    format!("{crate_name}-{}", &fsx::sha256_hex(layout.as_bytes())[..16])
}

/// One file of the stage, as it is to be.
struct StagedFile {
    relative: PathBuf,
    bytes: Vec<u8>,
    executable: bool,
}

/// Waits for, and takes, the stage's lock (`<stage>.lock`, beside it); released when the returned
/// file closes.
fn lock_stage(root: &Path) -> Result<std::fs::File> {
    let mut lock_path = root.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    file.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    Ok(file)
}

/// Makes `root` hold exactly `entries`. A file whose bytes and mode are already right is not
/// touched, so cargo's mtime checks see only what changed. The completion marker is removed first
/// and written last: a stage left by a build killed halfway is synced again in full next time.
fn sync_stage(root: &Path, entries: &[StagedFile]) -> Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let marker = root.join(COMPLETE_MARKER);
    if marker.exists() {
        std::fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
    }
    let wanted: std::collections::BTreeSet<&Path> =
        entries.iter().map(|e| e.relative.as_path()).collect();
    // Stale files go first, so a file that became a directory (or the reverse) has room.
    let mut present = Vec::new();
    collect_files(root, &|_| false, &mut present)?;
    for path in present {
        let relative = path.strip_prefix(root).unwrap_or(&path);
        if !wanted.contains(relative) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    remove_empty_dirs(root)?;
    for entry in entries {
        if entry
            .relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            bail!(
                "cannot stage {}: not a plain relative path",
                entry.relative.display()
            );
        }
        let path = root.join(&entry.relative);
        let mode = if entry.executable { 0o755 } else { 0o644 };
        let up_to_date = std::fs::metadata(&path).is_ok_and(|m| {
            m.is_file()
                && m.permissions().mode() & 0o777 == mode
                && std::fs::read(&path).is_ok_and(|bytes| bytes == entry.bytes)
        });
        if up_to_date {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        fsx::write(&path, &entry.bytes)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    fsx::write(&marker, b"")
}

/// Removes the directories under `dir` (not `dir` itself) that hold no file; says whether `dir`
/// is empty after.
fn remove_empty_dirs(dir: &Path) -> Result<bool> {
    let mut empty = true;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() && !path.is_symlink() && remove_empty_dirs(&path)? {
            std::fs::remove_dir(&path).with_context(|| format!("removing {}", path.display()))?;
        } else {
            empty = false;
        }
    }
    Ok(empty)
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

/// Removes the crate's least recently used stages (other layouts of a crate with this name)
/// beyond [`STAGES_KEPT`], with their locks. Best effort: a stage another build holds is left.
fn prune(stages: &Path, crate_name: &str, current: &Path) {
    let Ok(entries) = std::fs::read_dir(stages) else {
        return;
    };
    let prefix = format!("{crate_name}-");
    let mut used: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path != current
            && path.is_dir()
            && name
                .strip_prefix(&prefix)
                .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            let when = std::fs::metadata(path.join(COMPLETE_MARKER))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            used.push((when, path));
        }
    }
    used.sort_by_key(|(when, _)| std::cmp::Reverse(*when));
    for (_, path) in used.into_iter().skip(STAGES_KEPT) {
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = std::fs::File::open(&lock_path);
        if lock.as_ref().is_ok_and(|file| file.try_lock().is_err()) {
            continue;
        }
        let _ = std::fs::remove_dir_all(&path);
        let _ = std::fs::remove_file(&lock_path);
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
    fn prune_keeps_the_most_recently_used_stages_and_those_in_use() {
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
        let in_use = lock_stage(&stage("k-00000000000000ff", hours_ago(200))).unwrap();
        stage("other-0000000000000000", hours_ago(100));
        stage("k-not-a-stage", hours_ago(100));

        prune(stages.path(), "k", &current);
        drop(in_use);
        let mut left: Vec<String> = std::fs::read_dir(stages.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "k-0000000000000000",
                "k-0000000000000001",
                "k-0000000000000002",
                "k-0000000000000003",
                "k-00000000000000ff",
                "k-00000000000000ff.lock",
                "k-not-a-stage",
                "other-0000000000000000",
            ]
        );
    }

    #[test]
    fn the_stage_is_named_by_layout_not_content() {
        let name = stage_name("k", Path::new("examples/k/Cargo.toml"));
        assert_eq!(name, stage_name("k", Path::new("examples/k/Cargo.toml")));
        assert_ne!(name, stage_name("k", Path::new("Cargo.toml")));
        assert_ne!(name, stage_name("j", Path::new("examples/k/Cargo.toml")));
        assert!(name.starts_with("k-") && name.len() == 2 + 16, "{name}");
    }

    #[test]
    fn syncing_a_stage_rewrites_only_what_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = &tmp.path().join("stage");
        let file = |relative: &str, bytes: &str, executable: bool| StagedFile {
            relative: PathBuf::from(relative),
            bytes: bytes.as_bytes().to_vec(),
            executable,
        };
        sync_stage(
            root.as_path(),
            &[
                file("Cargo.toml", "[package]", false),
                file("src/lib.rs", "fn a() {}", false),
                file("src/old.rs", "", false),
                file("model", "a file", false),
                file("build.sh", "#!/bin/sh", true),
            ],
        )
        .unwrap();
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for name in ["Cargo.toml", "src/lib.rs"] {
            std::fs::File::options()
                .write(true)
                .open(root.as_path().join(name))
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }

        sync_stage(
            root.as_path(),
            &[
                file("Cargo.toml", "[package]", false),
                file("src/lib.rs", "fn b() {}", false),
                file("model/weights.bin", "a directory now", false),
                file("build.sh", "#!/bin/sh", false),
            ],
        )
        .unwrap();
        let modified = |name: &str| {
            std::fs::metadata(root.as_path().join(name))
                .unwrap()
                .modified()
                .unwrap()
        };
        assert_eq!(
            modified("Cargo.toml"),
            long_ago,
            "an unchanged file was rewritten"
        );
        assert_ne!(modified("src/lib.rs"), long_ago);
        assert_eq!(
            std::fs::read_to_string(root.as_path().join("src/lib.rs")).unwrap(),
            "fn b() {}"
        );
        assert!(!root.as_path().join("src/old.rs").exists());
        assert_eq!(
            std::fs::read_to_string(root.as_path().join("model/weights.bin")).unwrap(),
            "a directory now"
        );
        let mode = std::fs::metadata(root.as_path().join("build.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert!(root.as_path().join(COMPLETE_MARKER).is_file());
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
            _lock: None,
        };
        assert_eq!(
            staged.to_original_paths(
                "error at /build/k/src/lib.rs:3\n(in /cache/stage/k-0123456789abcdef/k/Cargo.toml)"
            ),
            "error at /home/me/repo/k/src/lib.rs:3\n(in /home/me/repo/k/Cargo.toml)"
        );
    }
}
