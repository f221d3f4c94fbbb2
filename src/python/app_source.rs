//! Where a Python project keeps its top-level package, found the way its build backend would:
//! setuptools (`package-dir`, `packages.find.where`), hatchling (`packages`, `sources`), poetry
//! (`packages = [{ include, from }]`), pdm (`package-dir`), uv (`module-root`), maturin
//! (`python-source`), and otherwise the layouts every backend discovers on its own: `src/` and
//! the project directory itself (flit, setuptools' automatic discovery, hatchling's defaults).

use std::path::{Path, PathBuf};

/// The app's top-level package (or single module) as the project lays it out.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSource {
    /// The package directory or module file, e.g. `<project>/src/tinysent`.
    pub path: PathBuf,
    /// Its name once installed: the package name, or `name.py` for a single module. Shipped files
    /// are named under it, whatever the directory on disk is called.
    pub installed_as: String,
}

/// Directories (relative to the project) that may hold packages, and the setting that named
/// them: the backend's configuration when it has one, else the default layouts.
struct Search {
    /// A directory that *is* the package, under another name (`package-dir = { pkg = "lib" }`).
    renamed: Option<(PathBuf, String)>,
    roots: Vec<PathBuf>,
    named_by: String,
}

/// Finds `top_level` (the entry module's first component) in the project at `dir`, whose parsed
/// `pyproject.toml` is `pyproject`. The error lists where it looked and how to say where it is.
pub fn locate(dir: &Path, pyproject: &toml::Table, top_level: &str) -> Result<AppSource, String> {
    let search = search_for(pyproject, top_level);
    if let Some((path, setting)) = &search.renamed {
        let path = dir.join(path);
        return if path.is_dir() {
            Ok(AppSource {
                path,
                installed_as: top_level.to_string(),
            })
        } else {
            Err(format!(
                "{setting} maps package `{top_level}` to {}, which is not a directory",
                path.display()
            ))
        };
    }
    for root in &search.roots {
        let package = dir.join(root).join(top_level);
        if package.is_dir() {
            return Ok(AppSource {
                path: package,
                installed_as: top_level.to_string(),
            });
        }
        let module = dir.join(root).join(format!("{top_level}.py"));
        if module.is_file() {
            return Ok(AppSource {
                path: module,
                installed_as: format!("{top_level}.py"),
            });
        }
    }
    let searched: Vec<String> = search
        .roots
        .iter()
        .map(|root| {
            let shown = if root.as_os_str().is_empty() {
                dir.display().to_string()
            } else {
                dir.join(root).display().to_string()
            };
            format!("{shown}/{{{top_level}/, {top_level}.py}}")
        })
        .collect();
    let hint = match found_elsewhere(dir, top_level) {
        Some(root) => format!(
            "; it is in {root}/: tell the build backend, e.g. [tool.setuptools.packages.find] \
             where = [\"{root}\"]"
        ),
        None => String::new(),
    };
    Err(format!(
        "no package `{top_level}` ({top_level}/ or {top_level}.py) following {}: looked for {}{hint}",
        search.named_by,
        searched.join(" and ")
    ))
}

/// A directory one level below the project that holds `top_level`, for the hint of a package the
/// backend's settings miss.
fn found_elsewhere(dir: &Path, top_level: &str) -> Option<String> {
    let mut roots: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|entry| {
            let path = entry.path();
            path.join(top_level).join("__init__.py").is_file()
                || path.join(format!("{top_level}.py")).is_file()
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    roots.sort();
    roots.into_iter().next()
}

fn search_for(pyproject: &toml::Table, top_level: &str) -> Search {
    let tool = |path: &[&str]| lookup(pyproject, &[&["tool"], path].concat());
    let strings = |value: Option<&toml::Value>| -> Vec<String> {
        match value {
            Some(toml::Value::String(s)) => vec![s.clone()],
            Some(toml::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let configured = |roots: Vec<String>, named_by: &str| Search {
        renamed: None,
        roots: roots.into_iter().map(|r| clean(&r)).collect(),
        named_by: named_by.to_string(),
    };

    if let Some(map) = tool(&["setuptools", "package-dir"]).and_then(toml::Value::as_table) {
        if let Some(path) = map.get(top_level).and_then(toml::Value::as_str) {
            return Search {
                renamed: Some((
                    clean(path),
                    format!("[tool.setuptools] package-dir.{top_level}"),
                )),
                roots: Vec::new(),
                named_by: String::new(),
            };
        }
        if let Some(root) = map.get("").and_then(toml::Value::as_str) {
            return configured(vec![root.to_string()], "[tool.setuptools] package-dir.\"\"");
        }
    }
    let find_where = strings(tool(&["setuptools", "packages", "find", "where"]));
    if !find_where.is_empty() {
        return configured(find_where, "[tool.setuptools.packages.find] where");
    }
    if tool(&["setuptools", "packages"]).is_some_and(toml::Value::is_array)
        || tool(&["setuptools", "py-modules"]).is_some()
    {
        return configured(vec![String::new()], "[tool.setuptools] packages");
    }

    let hatch_wheel = ["hatch", "build", "targets", "wheel"];
    for hatch in [&hatch_wheel[..], &["hatch", "build"]] {
        let packages = strings(tool(&[hatch, &["packages"]].concat()));
        // `packages = ["src/foo"]` ships src/foo as `foo`.
        if let Some(package) = packages.iter().find(|p| {
            Path::new(p.as_str())
                .file_name()
                .is_some_and(|n| n == top_level)
        }) {
            let parent = Path::new(package.as_str())
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            return configured(vec![parent], "[tool.hatch.build.targets.wheel] packages");
        }
        // `sources = ["src"]` or `sources = { "src" = "" }` strip a prefix from shipped paths.
        let sources = match tool(&[hatch, &["sources"]].concat()) {
            Some(toml::Value::Table(map)) => map
                .iter()
                .filter(|(_, to)| to.as_str() == Some(""))
                .map(|(from, _)| from.clone())
                .collect(),
            other => strings(other),
        };
        if !sources.is_empty() {
            return configured(sources, "[tool.hatch.build.targets.wheel] sources");
        }
    }

    if let Some(packages) = tool(&["poetry", "packages"]).and_then(toml::Value::as_array) {
        let from = packages
            .iter()
            .filter_map(toml::Value::as_table)
            .find(|p| p.get("include").and_then(toml::Value::as_str) == Some(top_level))
            .map(|p| {
                p.get("from")
                    .and_then(toml::Value::as_str)
                    .unwrap_or("")
                    .to_string()
            });
        if let Some(from) = from {
            return configured(vec![from], "[tool.poetry] packages");
        }
    }
    for (path, named_by) in [
        (
            &["pdm", "build", "package-dir"][..],
            "[tool.pdm.build] package-dir",
        ),
        (
            &["uv", "build-backend", "module-root"],
            "[tool.uv.build-backend] module-root",
        ),
        (
            &["maturin", "python-source"],
            "[tool.maturin] python-source",
        ),
    ] {
        if let Some(root) = tool(path).and_then(toml::Value::as_str) {
            return configured(vec![root.to_string()], named_by);
        }
    }
    // Every backend's own discovery looks in src/ first, then beside pyproject.toml.
    configured(
        vec!["src".into(), String::new()],
        "the src and flat layouts",
    )
}

fn lookup<'a>(table: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    let value = table.get(*first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        lookup(value.as_table()?, rest)
    }
}

/// A configured directory as a relative path: `"."`, `"./src"` and `"src/"` name what they say.
fn clean(path: &str) -> PathBuf {
    Path::new(path)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lays out `files` in a temporary project and locates `tinysent` in it.
    fn locate_in(
        pyproject: &str,
        files: &[&str],
    ) -> (tempfile::TempDir, Result<AppSource, String>) {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let table: toml::Table = toml::from_str(pyproject).unwrap();
        let found = locate(dir.path(), &table, "tinysent");
        (dir, found)
    }

    fn found_at(pyproject: &str, files: &[&str]) -> (String, String) {
        let (dir, found) = locate_in(pyproject, files);
        let found = found.unwrap();
        let relative = found.path.strip_prefix(dir.path()).unwrap();
        (relative.to_string_lossy().into_owned(), found.installed_as)
    }

    #[test]
    fn each_backends_layout_is_found_where_it_would_build_from() {
        let package = |at: &str| (at.to_string(), "tinysent".to_string());
        let cases: [(&str, &[&str], (String, String)); 11] = [
            ("", &["tinysent/__init__.py"], package("tinysent")),
            (
                "",
                &["tinysent.py"],
                ("tinysent.py".into(), "tinysent.py".into()),
            ),
            ("", &["src/tinysent/model.py"], package("src/tinysent")),
            (
                "[tool.setuptools.packages.find]\nwhere = [\"lib\"]\n",
                &["lib/tinysent/model.py", "tinysent/stale.py"],
                package("lib/tinysent"),
            ),
            (
                "[tool.setuptools]\npackage-dir = { \"\" = \"./code\" }\n",
                &["code/tinysent/model.py"],
                package("code/tinysent"),
            ),
            (
                "[tool.setuptools]\npackage-dir = { tinysent = \"lib/sentiment\" }\n",
                &["lib/sentiment/model.py"],
                package("lib/sentiment"),
            ),
            (
                "[tool.hatch.build.targets.wheel]\npackages = [\"python/tinysent\"]\n",
                &["python/tinysent/model.py"],
                package("python/tinysent"),
            ),
            (
                "[tool.hatch.build.targets.wheel.sources]\n\"pkgs\" = \"\"\n",
                &["pkgs/tinysent/model.py"],
                package("pkgs/tinysent"),
            ),
            (
                "[tool.poetry]\npackages = [{ include = \"tinysent\", from = \"lib\" }]\n",
                &["lib/tinysent/model.py"],
                package("lib/tinysent"),
            ),
            (
                "[tool.pdm.build]\npackage-dir = \"source\"\n",
                &["source/tinysent/model.py"],
                package("source/tinysent"),
            ),
            (
                "[tool.maturin]\npython-source = \"python\"\n",
                &["python/tinysent/__init__.py"],
                package("python/tinysent"),
            ),
        ];
        for (pyproject, files, expected) in cases {
            assert_eq!(found_at(pyproject, files), expected, "{pyproject}");
        }
        // Like setuptools' automatic discovery, the src layout wins over a flat copy.
        assert_eq!(
            found_at("", &["src/tinysent/a.py", "tinysent/b.py"]),
            package("src/tinysent")
        );
    }

    #[test]
    fn a_missing_package_names_the_setting_and_the_places_searched() {
        let (_dir, found) = locate_in("", &["other/x.py"]);
        let err = found.unwrap_err();
        assert!(err.contains("following the src and flat layouts"), "{err}");
        assert!(err.contains("/src/{tinysent/, tinysent.py}"), "{err}");
        assert!(!err.contains("it is in"), "{err}");
        let (_dir, found) = locate_in("", &["code/tinysent/__init__.py"]);
        let err = found.unwrap_err();
        assert!(
            err.contains("it is in code/: tell the build backend, e.g. [tool.setuptools.packages.find] where = [\"code\"]"),
            "{err}"
        );

        let (_dir, found) = locate_in(
            "[tool.setuptools.packages.find]\nwhere = [\"lib\"]\n",
            &["src/tinysent/x.py"],
        );
        let err = found.unwrap_err();
        assert!(
            err.contains("[tool.setuptools.packages.find] where"),
            "{err}"
        );
        assert!(err.contains("/lib/{tinysent/"), "{err}");

        let (_dir, found) = locate_in(
            "[tool.setuptools]\npackage-dir = { tinysent = \"gone\" }\n",
            &[],
        );
        assert!(found.unwrap_err().contains("package-dir.tinysent maps"));
    }
}
