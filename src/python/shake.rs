//! Tree shaking a Pyodide app: which modules it needs (traced and static), a `python_stdlib.zip`
//! holding only those, a `pyodide-lock.json` listing only the packages they come from, and the
//! app's own code as one archive.

use crate::exit::input_error;
use crate::python::run::Trace;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Write};
use std::path::Path;

/// What the user asked to keep or drop on top of the trace.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub keep: Vec<String>,
    pub drop: Vec<String>,
}

/// Modules the bundle must be able to import.
#[derive(Debug, Clone)]
pub struct Needed {
    /// Module name → why: "boot", "traced", "static" or "--keep".
    pub modules: BTreeMap<String, &'static str>,
    /// Module name → origin as the interpreter reported it.
    origins: BTreeMap<String, String>,
    /// `sys.path` entry of the standard library zip, e.g. `/lib/python314.zip`.
    stdlib_zip_path: String,
    dropped_by_user: BTreeSet<String>,
}

impl Needed {
    /// The union of what booting loaded, what the samples imported and the static closure, with
    /// `--keep` added and `--drop` removed.
    pub fn from_trace(trace: &Trace, overrides: &Overrides) -> Result<Self> {
        let stdlib_zip_path = trace
            .path
            .iter()
            .find(|p| p.ends_with(".zip"))
            .cloned()
            .context("the interpreter's sys.path has no standard library zip")?;
        let boot: BTreeSet<&str> = trace.boot_modules.iter().map(String::as_str).collect();
        let mut modules = BTreeMap::new();
        let mut origins = BTreeMap::new();
        for (name, origin) in &trace.loaded {
            let why = if boot.contains(name.as_str()) {
                "boot"
            } else {
                "traced"
            };
            modules.insert(name.clone(), why);
            origins.extend(origin.clone().map(|o| (name.clone(), o)));
        }
        for (name, origin) in &trace.static_modules {
            modules.entry(name.clone()).or_insert("static");
            if let Some(origin) = origin {
                origins
                    .entry(name.clone())
                    .or_insert_with(|| origin.clone());
            }
        }
        for name in &overrides.keep {
            modules.insert(name.clone(), "--keep");
        }
        let dropped_by_user: BTreeSet<String> = overrides.drop.iter().cloned().collect();
        modules.retain(|name, _| !is_dropped(name, &dropped_by_user));
        Ok(Self {
            modules,
            origins,
            stdlib_zip_path,
            dropped_by_user,
        })
    }

    /// The stdlib zip entries of the needed modules, relative to the zip's root.
    fn stdlib_entries(&self) -> BTreeSet<String> {
        self.entries_of(|_| true)
    }

    /// The stdlib zip entries (`json/decoder.py`) of the modules that booting loaded or a sample
    /// imported: not those only the static walk or `--keep` added.
    pub fn imported_stdlib_entries(&self) -> BTreeSet<String> {
        self.entries_of(|why| matches!(why, "boot" | "traced"))
    }

    fn entries_of(&self, kept_because: impl Fn(&str) -> bool) -> BTreeSet<String> {
        let prefix = format!("{}/", self.stdlib_zip_path);
        self.modules
            .iter()
            .filter(|(_, why)| kept_because(why))
            .filter_map(|(name, _)| self.origins.get(name)?.strip_prefix(&prefix))
            .map(str::to_string)
            .collect()
    }

    /// Top-level names of the needed modules.
    fn top_levels(&self) -> BTreeSet<&str> {
        self.modules
            .keys()
            .map(|name| name.split('.').next().unwrap_or(name))
            .collect()
    }
}

fn is_dropped(name: &str, dropped: &BTreeSet<String>) -> bool {
    dropped
        .iter()
        .any(|d| name == d || name.starts_with(&format!("{d}.")))
}

/// A trimmed standard library and what was left out.
#[derive(Debug, Clone)]
pub struct ShakenStdlib {
    pub zip: Vec<u8>,
    pub entries_before: usize,
    pub entries_after: usize,
    /// Top-level modules and packages left out entirely, sorted.
    pub dropped_top_levels: Vec<String>,
}

/// Copies the needed entries of `stock` (byte for byte, in the stock order) into a new zip:
/// the needed modules' files, the data files beside them in their packages, every `--keep`
/// module's whole subtree, and the directory entries above all of those.
pub fn shake_stdlib(stock: &[u8], needed: &Needed, overrides: &Overrides) -> Result<ShakenStdlib> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(stock)).context("reading python_stdlib.zip")?;
    let module_files = needed.stdlib_entries();
    let package_dirs: BTreeSet<String> = module_files
        .iter()
        .filter_map(|f| f.strip_suffix("__init__.py").map(str::to_string))
        .collect();
    let kept_subtrees: Vec<String> = overrides
        .keep
        .iter()
        .map(|m| format!("{}/", m.replace('.', "/")))
        .collect();
    let dropped_subtrees: Vec<String> = needed
        .dropped_by_user
        .iter()
        .map(|m| m.replace('.', "/"))
        .collect();
    let mut names = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let name = archive
            .by_index_raw(index)
            .and_then(|f| f.name().map(|n| n.into_owned()))
            .with_context(|| format!("python_stdlib.zip entry {index}"))?;
        names.push(name);
    }
    let keep_file = |name: &str| {
        if dropped_subtrees
            .iter()
            .any(|d| name == format!("{d}.py") || name.starts_with(&format!("{d}/")))
        {
            return false;
        }
        let dir = name.rfind('/').map_or("", |i| &name[..=i]);
        module_files.contains(name)
            || (!name.ends_with(".py") && !name.ends_with('/') && package_dirs.contains(dir))
            || kept_subtrees.iter().any(|k| name.starts_with(k.as_str()))
            || overrides
                .keep
                .iter()
                .any(|k| name == format!("{}.py", k.replace('.', "/")))
    };
    let kept_files: BTreeSet<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !n.ends_with('/') && keep_file(n))
        .collect();
    let kept_dirs: BTreeSet<String> = kept_files
        .iter()
        .flat_map(|f| {
            f.match_indices('/')
                .map(|(i, _)| f[..=i].to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut entries_after = 0;
    for (index, name) in names.iter().enumerate() {
        if kept_files.contains(name.as_str()) || kept_dirs.contains(name) {
            let file = archive.by_index_raw(index)?;
            writer
                .raw_copy_file(file)
                .with_context(|| format!("copying {name}"))?;
            entries_after += 1;
        }
    }
    let zip = writer
        .finish()
        .context("finishing python_stdlib.zip")?
        .into_inner();
    let top_level = |name: &str| {
        let first = name.split('/').next().unwrap_or(name);
        first.strip_suffix(".py").unwrap_or(first).to_string()
    };
    let kept_tops: BTreeSet<String> = kept_files.iter().map(|f| top_level(f)).collect();
    let dropped_top_levels: BTreeSet<String> = names
        .iter()
        .map(|n| top_level(n))
        .filter(|t| !kept_tops.contains(t))
        .collect();
    Ok(ShakenStdlib {
        zip,
        entries_before: names.len(),
        entries_after,
        dropped_top_levels: dropped_top_levels.into_iter().collect(),
    })
}

/// `pyodide-lock.json` listing only the packages whose imports are needed (and what they depend
/// on); returns the lock and the kept package names.
pub fn trim_lock(
    lock: &serde_json::Value,
    needed: &Needed,
) -> Result<(serde_json::Value, Vec<String>)> {
    let packages = lock["packages"]
        .as_object()
        .context("pyodide-lock.json has no `packages` table")?;
    let tops = needed.top_levels();
    let mut queue: Vec<String> = packages
        .iter()
        .filter(|(_, p)| {
            p["imports"].as_array().is_some_and(|imports| {
                imports
                    .iter()
                    .any(|i| i.as_str().is_some_and(|i| tops.contains(i)))
            })
        })
        .map(|(name, _)| name.clone())
        .collect();
    let mut kept = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if kept.insert(name.clone())
            && let Some(depends) = packages.get(&name).and_then(|p| p["depends"].as_array())
        {
            queue.extend(
                depends
                    .iter()
                    .filter_map(|d| d.as_str().map(str::to_string)),
            );
        }
    }
    let mut trimmed = lock.clone();
    trimmed["packages"] = serde_json::Value::Object(
        packages
            .iter()
            .filter(|(name, _)| kept.contains(name.as_str()))
            .map(|(name, p)| (name.clone(), p.clone()))
            .collect(),
    );
    Ok((trimmed, kept.into_iter().collect()))
}

/// The top-level names the lock's `keys` packages provide (their `imports`), sorted.
pub fn lock_imports(lock: &serde_json::Value, keys: &[String]) -> Vec<String> {
    let imports: BTreeSet<String> = keys
        .iter()
        .filter_map(|key| lock["packages"][key]["imports"].as_array())
        .flatten()
        .filter_map(|name| name.as_str().map(str::to_string))
        .collect();
    imports.into_iter().collect()
}

/// The wheel of each kept package, read from the distribution and checked against the lock's
/// sha256; an error names the first package whose wheel is missing or altered.
pub fn package_files(
    lock: &serde_json::Value,
    kept: &[String],
    dist_dir: &Path,
) -> Result<Vec<(String, Vec<u8>)>> {
    kept.iter()
        .map(|name| {
            let package = &lock["packages"][name];
            let (Some(file), Some(sha256)) = (package["file_name"].as_str(), package["sha256"].as_str())
            else {
                bail!("pyodide-lock.json: package `{name}` has no file_name or sha256");
            };
            if file.contains('/') || file.contains("..") {
                return Err(input_error(format!(
                    "pyodide-lock.json: package `{name}` names file `{file}` outside the distribution"
                )));
            }
            let path = dist_dir.join(file);
            let bytes = std::fs::read(&path).map_err(|_| {
                input_error(format!(
                    "package `{name}` is needed but {} is not in the distribution (the npm package \
                     ships no wheels: pass --pyodide DIR of a full distribution)",
                    path.display()
                ))
            })?;
            if crate::fsx::sha256_hex(&bytes) != sha256 {
                return Err(input_error(format!(
                    "{}: sha256 does not match pyodide-lock.json ({sha256})",
                    path.display()
                )));
            }
            Ok((file.to_string(), bytes))
        })
        .collect()
}

/// The files under `root` (a package directory, one module, or a whole site-packages directory),
/// named `prefix/<path relative to root>` with `/` (the module's own name is `prefix` when `root`
/// is a file; no prefix keeps the relative names), sorted, bytecode left out.
pub fn app_files(root: &Path, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut paths = Vec::new();
    collect_files(root, &mut paths)?;
    let mut files = Vec::new();
    for path in paths {
        let relative = path
            .strip_prefix(root)
            .with_context(|| format!("{} is outside {}", path.display(), root.display()))?;
        let name = std::iter::once(prefix.into())
            .chain(
                relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy()),
            )
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", path.display()))?;
        files.push((name, bytes));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// `zip` without the entries named in `names`, every other entry copied raw.
pub fn without_entries(zip: &[u8], names: &BTreeSet<String>) -> Result<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).context("reading the zip")?;
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index)?;
        if !names.contains(entry.name()?.as_ref()) {
            writer.raw_copy_file(entry)?;
        }
    }
    Ok(writer.finish()?.into_inner())
}

/// `zip` with `entries` (name → bytes) in it: an entry of the same name is replaced in place, the
/// others are appended in name order; new bytes are deflated with fixed timestamps and
/// permissions, and every other entry is copied raw.
pub fn with_entries(zip: &[u8], entries: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).context("reading the zip")?;
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::DEFAULT
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut replaced = BTreeSet::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index)?;
        let name = entry.name()?.into_owned();
        match entries.get(&name) {
            Some(bytes) => {
                drop(entry);
                writer
                    .start_file(name.as_str(), options)
                    .with_context(|| format!("replacing {name}"))?;
                writer.write_all(bytes)?;
                replaced.insert(name);
            }
            None => writer.raw_copy_file(entry)?,
        }
    }
    for (name, bytes) in entries.iter().filter(|(n, _)| !replaced.contains(*n)) {
        writer
            .start_file(name.as_str(), options)
            .with_context(|| format!("adding {name}"))?;
        writer.write_all(bytes)?;
    }
    Ok(writer.finish()?.into_inner())
}

/// `zip` with every entry stored uncompressed, in the same order with the same names, times and
/// permissions: for a server that compresses the whole file (brotli, gzip), which finds across
/// entries what deflating each one alone hides.
pub fn stored(zip: &[u8]) -> Result<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).context("reading the zip")?;
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        let name = entry.name()?.into_owned();
        let mut options = zip::write::SimpleFileOptions::DEFAULT
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(
                entry
                    .last_modified()
                    .unwrap_or_else(zip::DateTime::default_for_write),
            );
        if let Some(mode) = entry.unix_mode() {
            options = options.unix_permissions(mode);
        }
        if entry.is_dir() {
            writer.add_directory(name.as_str(), options)?;
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {name}"))?;
        writer
            .start_file(name.as_str(), options)
            .with_context(|| format!("storing {name}"))?;
        writer.write_all(&bytes)?;
    }
    Ok(writer.finish()?.into_inner())
}

/// The `.py` entries of `zip`, by name.
pub fn python_sources(zip: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).context("reading the zip")?;
    let mut sources = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        let name = entry.name()?.into_owned();
        if name.ends_with(".py") {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading {name}"))?;
            sources.insert(name, bytes);
        }
    }
    Ok(sources)
}

/// `files` as a deterministic zip: sorted, fixed timestamps and permissions.
pub fn app_zip(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let options = zip::write::SimpleFileOptions::DEFAULT
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in files {
        writer.start_file(name.as_str(), options)?;
        writer.write_all(bytes)?;
    }
    Ok(writer.finish().context("finishing app.zip")?.into_inner())
}

fn collect_files(path: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    let meta =
        std::fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
    } else if meta.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))?
        {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "__pycache__" || name.ends_with(".pyc") || name.starts_with('.') {
                continue;
            }
            collect_files(&entry.path(), out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_zips_keep_every_entry_and_compress_better_whole() {
        let text = |i: usize| format!("def f{i}(x):\n    return x * {i} + sum(range(10))\n");
        let entries: BTreeMap<String, Vec<u8>> = (0..40)
            .map(|i| (format!("pkg/m{i}.py"), text(i).into_bytes()))
            .collect();
        let deflated = with_entries(&zip_of(&["pkg/"]), &entries).unwrap();
        let stored_zip = stored(&deflated).unwrap();
        assert_eq!(names(&stored_zip), names(&deflated));
        let mut archive = zip::ZipArchive::new(Cursor::new(&stored_zip)).unwrap();
        for (name, bytes) in &entries {
            let mut entry = archive.by_name(name).unwrap();
            assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
            let mut read = Vec::new();
            entry.read_to_end(&mut read).unwrap();
            assert_eq!(&read, bytes);
        }
        // What the server sends: the stored archive compresses smaller than the deflated one.
        let brotli = |bytes: &[u8]| crate::measure::sizes::sizes(bytes).unwrap().brotli_bytes;
        assert!(
            brotli(&stored_zip) < brotli(&deflated),
            "{} vs {}",
            brotli(&stored_zip),
            brotli(&deflated)
        );
        assert_eq!(stored(&stored_zip).unwrap(), stored_zip, "deterministic");
    }

    fn zip_of(names: &[&str]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for name in names {
            if name.ends_with('/') {
                writer
                    .add_directory(*name, zip::write::SimpleFileOptions::DEFAULT)
                    .unwrap();
            } else {
                writer
                    .start_file(*name, zip::write::SimpleFileOptions::DEFAULT)
                    .unwrap();
                writer.write_all(name.as_bytes()).unwrap();
            }
        }
        writer.finish().unwrap().into_inner()
    }

    fn names(zip: &[u8]) -> Vec<String> {
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        (0..archive.len())
            .map(|i| archive.by_index(i).unwrap().name().unwrap().into_owned())
            .collect()
    }

    fn trace(loaded: &[(&str, &str)], boot: &[&str]) -> Trace {
        Trace {
            boot_modules: boot.iter().map(|s| s.to_string()).collect(),
            loaded: loaded
                .iter()
                .map(|(n, o)| (n.to_string(), Some(o.to_string())))
                .collect(),
            static_modules: BTreeMap::new(),
            opened: vec![],
            path: vec!["/app".into(), "/lib/py.zip".into()],
            importers: BTreeMap::new(),
        }
    }

    const STOCK: &[&str] = &[
        "json/",
        "json/__init__.py",
        "json/decoder.py",
        "json/data.txt",
        "fractions.py",
        "email/",
        "email/__init__.py",
        "email/parser.py",
        "site.py",
    ];

    #[test]
    fn keeps_needed_modules_their_package_data_and_directories() {
        let trace = trace(
            &[
                ("json", "/lib/py.zip/json/__init__.py"),
                ("site", "/lib/py.zip/site.py"),
                ("sys", "built-in"),
                ("app", "/app/app.py"),
            ],
            &["site", "sys"],
        );
        let needed = Needed::from_trace(&trace, &Overrides::default()).unwrap();
        assert_eq!(needed.modules["site"], "boot");
        assert_eq!(needed.modules["json"], "traced");
        let shaken = shake_stdlib(&zip_of(STOCK), &needed, &Overrides::default()).unwrap();
        assert_eq!(
            names(&shaken.zip),
            ["json/", "json/__init__.py", "json/data.txt", "site.py"]
        );
        assert_eq!(shaken.dropped_top_levels, ["email", "fractions"]);
        assert_eq!((shaken.entries_before, shaken.entries_after), (9, 4));
    }

    #[test]
    fn imported_entries_leave_out_what_only_the_static_walk_found() {
        let mut trace = trace(
            &[
                ("json", "/lib/py.zip/json/__init__.py"),
                ("site", "/lib/py.zip/site.py"),
            ],
            &["site"],
        );
        trace
            .static_modules
            .insert("fractions".into(), Some("/lib/py.zip/fractions.py".into()));
        let needed = Needed::from_trace(&trace, &Overrides::default()).unwrap();
        assert_eq!(needed.modules["fractions"], "static");
        assert_eq!(
            needed.imported_stdlib_entries(),
            BTreeSet::from(["json/__init__.py".to_string(), "site.py".to_string()])
        );
        assert!(needed.stdlib_entries().contains("fractions.py"));
    }

    #[test]
    fn keep_and_drop_override_the_trace() {
        let trace = trace(
            &[
                ("json", "/lib/py.zip/json/__init__.py"),
                ("site", "/lib/py.zip/site.py"),
            ],
            &[],
        );
        let overrides = Overrides {
            keep: vec!["email".into(), "fractions".into()],
            drop: vec!["json".into()],
        };
        let needed = Needed::from_trace(&trace, &overrides).unwrap();
        assert!(!needed.modules.contains_key("json"));
        let shaken = shake_stdlib(&zip_of(STOCK), &needed, &overrides).unwrap();
        assert_eq!(
            names(&shaken.zip),
            [
                "fractions.py",
                "email/",
                "email/__init__.py",
                "email/parser.py",
                "site.py"
            ]
        );
    }

    #[test]
    fn lock_keeps_imported_packages_and_their_dependencies() {
        let lock = serde_json::json!({
            "info": {"version": "1"},
            "packages": {
                "a": {"imports": ["a"], "depends": ["b"]},
                "b": {"imports": ["b"], "depends": []},
                "c": {"imports": ["c"], "depends": []}
            }
        });
        let trace = trace(&[("a.sub", "/lib/site-packages/a/sub.py")], &[]);
        let needed = Needed::from_trace(&trace, &Overrides::default()).unwrap();
        let (trimmed, kept) = trim_lock(&lock, &needed).unwrap();
        assert_eq!(kept, ["a", "b"]);
        assert!(trimmed["packages"].get("c").is_none());
        assert_eq!(trimmed["info"], lock["info"]);
    }

    #[test]
    fn app_zip_is_deterministic_and_skips_bytecode() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir_all(app.join("__pycache__")).unwrap();
        std::fs::write(app.join("__init__.py"), "").unwrap();
        std::fs::write(app.join("model.py"), "x = 1").unwrap();
        std::fs::write(app.join("__pycache__/model.cpython-311.pyc"), "").unwrap();
        let files = app_files(&app, "app").unwrap();
        let one = app_zip(&files).unwrap();
        assert_eq!(names(&one), ["app/__init__.py", "app/model.py"]);
        assert_eq!(one, app_zip(&app_files(&app, "app").unwrap()).unwrap());
        // A directory shipped under another name, a single module, and a site with no prefix.
        let renamed = app_files(&app, "tinysent").unwrap();
        assert_eq!(renamed[1].0, "tinysent/model.py");
        let module = app_files(&app.join("model.py"), "model.py").unwrap();
        assert_eq!(module, [("model.py".to_string(), b"x = 1".to_vec())]);
        let site = app_files(dir.path(), "").unwrap();
        assert_eq!(site[0].0, "app/__init__.py");
    }
}
