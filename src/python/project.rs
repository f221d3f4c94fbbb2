//! A Python inference project: `pyproject.toml` with `[project]` and `[tool.wasmpack-infer]`.

use crate::exit::input_error;
use crate::python::app_source::{self, AppSource};
use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Used when the project sets no `tolerance`.
pub const DEFAULT_TOLERANCE: f64 = 1e-6;

#[derive(Debug, Deserialize)]
struct PyProject {
    project: Option<ProjectTable>,
    tool: Option<ToolTable>,
}

#[derive(Debug, Deserialize)]
struct ProjectTable {
    name: String,
    version: Option<String>,
    description: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ToolTable {
    #[serde(rename = "wasmpack-infer")]
    wasmpack_infer: Option<RawSettings>,
}

/// `[tool.wasmpack-infer]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    entry: String,
    samples: PathBuf,
    tolerance: Option<f64>,
    #[serde(default)]
    budgets: crate::budget::BudgetTables,
    demo: Option<crate::bundle::demo::DemoSpec>,
    #[serde(default)]
    native: NativeSettings,
    #[serde(default)]
    npm: crate::bundle::npm::NpmSettings,
}

/// `[tool.wasmpack-infer.native]`: what only the native sibling gets.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeSettings {
    #[serde(default)]
    requirements: Vec<String>,
}

/// A Python project, checked and ready to build.
#[derive(Debug, Clone)]
pub struct PythonProject {
    pub name: String,
    pub version: String,
    pub dir: PathBuf,
    /// `[project] dependencies`, as written (PEP 508 strings).
    pub dependencies: Vec<String>,
    /// `package.module` holding the inference function.
    pub entry_module: String,
    pub entry_function: String,
    /// The top-level package (or single module) the app ships, found where the project's build
    /// backend would find it.
    pub app: AppSource,
    pub samples_path: PathBuf,
    /// The samples file's bytes (a JSON array, one input per element).
    pub samples_json: Vec<u8>,
    pub sample_count: usize,
    pub tolerance: f64,
    /// `[tool.wasmpack-infer.budgets]`, flattened to `variant.metric`.
    pub budgets: crate::manifest::Budgets,
    /// `[tool.wasmpack-infer.demo]`: what `build --demo` needs.
    pub demo: Option<crate::bundle::demo::DemoSpec>,
    /// `[tool.wasmpack-infer.native] requirements`: installed into the native sibling only
    /// (accelerated libraries such as torch or cupy, which cannot run in Pyodide, compiled
    /// extensions allowed); the app must also work without them.
    pub native_requirements: Vec<String>,
    /// The bundle's npm package name (`[tool.wasmpack-infer.npm] name`, else the project's).
    pub npm_name: String,
    /// `[project] description`, for package.json.
    pub description: Option<String>,
}

impl PythonProject {
    /// Whether `path` (a directory or a pyproject.toml) is a Python project.
    pub fn is_python_project(path: &Path) -> bool {
        let pyproject = if path.is_dir() {
            path.join("pyproject.toml")
        } else {
            path.to_path_buf()
        };
        pyproject.file_name().is_some_and(|n| n == "pyproject.toml") && pyproject.is_file()
    }

    pub fn load(path: &Path) -> Result<Self> {
        let (dir, pyproject_path) = if path.is_dir() {
            (path.to_path_buf(), path.join("pyproject.toml"))
        } else {
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (dir, path.to_path_buf())
        };
        let text = std::fs::read_to_string(&pyproject_path)
            .with_context(|| format!("reading {}", pyproject_path.display()))
            .map_err(|e| input_error(format!("{e:#}")))?;
        let parsed: PyProject = toml::from_str(&text)
            .map_err(|e| input_error(format!("{}: {e}", pyproject_path.display())))?;
        let where_ = pyproject_path.display();
        let project = parsed
            .project
            .ok_or_else(|| input_error(format!("{where_}: no [project] table")))?;
        let settings = parsed.tool.and_then(|t| t.wasmpack_infer).ok_or_else(|| {
            input_error(format!(
                "{where_}: no [tool.wasmpack-infer] table; add e.g.\n\n\
                     [tool.wasmpack-infer]\n\
                     entry = \"my_package.model:predict\"\n\
                     samples = \"samples.json\""
            ))
        })?;
        let (entry_module, entry_function) = settings
            .entry
            .split_once(':')
            .filter(|(module, function)| is_dotted_name(module) && is_identifier(function))
            .ok_or_else(|| {
                input_error(format!(
                    "{where_}: [tool.wasmpack-infer] entry = {:?}: expected \"package.module:function\"",
                    settings.entry
                ))
            })?;
        let top_level = entry_module.split('.').next().unwrap_or(entry_module);
        let table: toml::Table = toml::from_str(&text)
            .map_err(|e| input_error(format!("{}: {e}", pyproject_path.display())))?;
        let app = app_source::locate(&dir, &table, top_level)
            .map_err(|e| input_error(format!("{where_}: entry module `{entry_module}`: {e}")))?;
        let tolerance = settings.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(input_error(format!(
                "{where_}: [tool.wasmpack-infer] tolerance = {tolerance}: must be a finite number >= 0"
            )));
        }
        let samples_path = dir.join(&settings.samples);
        let samples_json = std::fs::read(&samples_path)
            .with_context(|| format!("reading samples file {}", samples_path.display()))
            .map_err(|e| input_error(format!("{e:#}")))?;
        let samples: serde_json::Value = serde_json::from_slice(&samples_json).map_err(|e| {
            let values: Vec<_> = serde_json::Deserializer::from_slice(&samples_json)
                .into_iter::<serde_json::Value>()
                .collect();
            let json_lines = values.len() > 1 && values.iter().all(Result::is_ok);
            input_error(if json_lines {
                format!(
                    "samples file {}: one JSON value per line (JSON Lines), but the samples are \
                     one JSON array: write them as [first, second, ...]",
                    samples_path.display()
                )
            } else {
                format!("samples file {}: not JSON: {e}", samples_path.display())
            })
        })?;
        let sample_count = match samples.as_array() {
            Some(items) if !items.is_empty() => items.len(),
            _ => {
                return Err(input_error(format!(
                    "samples file {}: expected a non-empty JSON array, one input per element",
                    samples_path.display()
                )));
            }
        };
        if let Some(demo) = &settings.demo {
            // The demo hands the entry a flat list of floats, as long as a sample's.
            let first_len = samples[0].as_array().map_or(0, Vec::len);
            demo.check(
                &format!("{where_}: [tool.wasmpack-infer.demo]"),
                first_len,
                None,
            )?;
        }
        let npm_name = crate::bundle::npm::package_name(
            settings.npm.name.as_deref(),
            &project.name,
            "[tool.wasmpack-infer.npm] name",
        )
        .with_context(|| format!("in {}", pyproject_path.display()))?;
        Ok(Self {
            npm_name,
            description: project.description,
            name: project.name,
            version: project.version.unwrap_or_else(|| "0.0.0".into()),
            dir,
            dependencies: project.dependencies,
            entry_module: entry_module.to_string(),
            entry_function: entry_function.to_string(),
            app,
            samples_path,
            samples_json,
            sample_count,
            tolerance,
            budgets: crate::budget::from_tables(settings.budgets),
            demo: settings.demo,
            native_requirements: settings.native.requirements,
        })
    }

    pub fn entry(&self) -> String {
        format!("{}:{}", self.entry_module, self.entry_function)
    }

    pub fn bundle_name(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn is_dotted_name(name: &str) -> bool {
    name.split('.').all(is_identifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(
        pyproject: &str,
        files: &[(&str, &str)],
    ) -> (tempfile::TempDir, Result<PythonProject>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pyproject.toml"), pyproject).unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let loaded = PythonProject::load(dir.path());
        (dir, loaded)
    }

    const GOOD: &str = "[project]\nname = \"app\"\nversion = \"1.2.0\"\n\
        [tool.wasmpack-infer]\nentry = \"app.model:predict\"\nsamples = \"s.json\"\n";

    #[test]
    fn reads_entry_samples_and_the_app_package() {
        let (dir, loaded) = project(
            GOOD,
            &[("app/model.py", ""), ("s.json", "[[1, 2], [3, 4]]")],
        );
        let p = loaded.unwrap();
        assert_eq!(
            (p.entry_module.as_str(), p.entry_function.as_str()),
            ("app.model", "predict")
        );
        assert_eq!(p.app.path, dir.path().join("app"));
        assert_eq!(p.app.installed_as, "app");
        assert_eq!(p.sample_count, 2);
        assert_eq!(p.bundle_name(), "app-1.2.0");
        assert_eq!(p.tolerance, DEFAULT_TOLERANCE);
    }

    #[test]
    fn bad_inputs_are_usage_errors_naming_the_key() {
        let cases = [
            (GOOD.replace("app.model:predict", "app.model"), "entry"),
            (
                GOOD.replace("[tool.wasmpack-infer]", "[tool.other]"),
                "[tool.wasmpack-infer]",
            ),
            (format!("{GOOD}turbo = 1\n"), "turbo"),
            (GOOD.replace("s.json", "missing.json"), "missing.json"),
        ];
        for (text, needle) in cases {
            let (_dir, loaded) = project(&text, &[("app/model.py", ""), ("s.json", "[1]")]);
            let err = loaded.unwrap_err();
            assert!(err.is::<crate::exit::InputError>(), "{err:#}");
            assert!(format!("{err:#}").contains(needle), "{needle}: {err:#}");
        }
        let (_dir, loaded) = project(GOOD, &[("app/model.py", ""), ("s.json", "{}")]);
        assert!(format!("{:#}", loaded.unwrap_err()).contains("non-empty JSON array"));
        let json_lines = "{\"text\": \"a\"}\n{\"text\": \"b\"}\n";
        let (_dir, loaded) = project(GOOD, &[("app/model.py", ""), ("s.json", json_lines)]);
        assert!(format!("{:#}", loaded.unwrap_err()).contains("(JSON Lines)"));
        for not_json in ["[1, 2", ""] {
            let (_dir, loaded) = project(GOOD, &[("app/model.py", ""), ("s.json", not_json)]);
            assert!(format!("{:#}", loaded.unwrap_err()).contains("not JSON: EOF"));
        }
        let (_dir, loaded) = project(GOOD, &[("s.json", "[1]")]);
        assert!(format!("{:#}", loaded.unwrap_err()).contains("no package `app` (app/ or app.py)"));
    }
}
