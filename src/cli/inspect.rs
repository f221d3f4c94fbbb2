use super::{OutputArgs, bundle_dir_of};
use cargo_wasmpack_infer::bundle::Bundle;
use cargo_wasmpack_infer::bundle::inspect::{self, ModuleReport};
use cargo_wasmpack_infer::bundle::names::NameMap;
use cargo_wasmpack_infer::exit::input_error;
use cargo_wasmpack_infer::fsx;
use cargo_wasmpack_infer::manifest::AnyManifest;
use cargo_wasmpack_infer::manifest::python::PythonManifest;
use cargo_wasmpack_infer::python::inspect as pyodide_inspect;
use cargo_wasmpack_infer::units::format_bytes;
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Show what a module is made of: sections, imports, exports and the largest functions.
///
/// Takes a .wasm file or a bundle directory (its shipped module). Function names come from the
/// module's `name` section, or for a bundle from its sidecar name map (the shipped module is
/// stripped). For a Python bundle: its shipped files and the largest stdlib modules in its
/// trimmed python_stdlib.zip, with the reason the shake kept each; with --static-data, also which
/// of the runtime's static data the samples read.
#[derive(Args)]
pub struct Opts {
    /// A .wasm file, or a bundle directory.
    path: PathBuf,
    /// How many of the largest functions to list.
    #[arg(long, default_value_t = 15)]
    top: usize,
    /// Python bundles: run every sample on the runtime instrumented to report its memory reads
    /// (a boot takes about a minute) and report the static data (data segments) no sample read.
    #[arg(long)]
    static_data: bool,
    #[command(flatten)]
    output: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        self.output.human_or_json("inspect")?;
        let is_module = self.path.extension().is_some_and(|e| e == "wasm") && self.path.is_file();
        let (wasm, name_map) = if is_module {
            let wasm = std::fs::read(&self.path)
                .map_err(|e| input_error(format!("reading {}: {e}", self.path.display())))?;
            (wasm, None)
        } else {
            let dir = bundle_dir_of(&self.path)?;
            if let Ok(AnyManifest::Pyodide(manifest)) =
                AnyManifest::read(&dir.join(cargo_wasmpack_infer::manifest::FILE_NAME))
            {
                return self.run_python(&dir, &manifest);
            }
            if self.static_data {
                return Err(input_error(format!(
                    "{}: --static-data reports on Python bundles; this one is a kernel's",
                    dir.display()
                )));
            }
            let bundle = Bundle::open(&dir)?;
            let name_map = match &bundle.manifest.wasm.name_map {
                Some(file) => Some(NameMap::read(&bundle.path_of(file)?)?),
                None => None,
            };
            (bundle.read(&bundle.manifest.wasm.file)?, name_map)
        };
        // A map that describes another module would put wrong names on functions: skip it.
        let known_names: HashMap<u32, String> = name_map
            .filter(|m| m.module_sha256 == fsx::sha256_hex(&wasm))
            .map(|m| {
                m.functions
                    .into_iter()
                    .filter_map(|f| Some((f.index, f.name?)))
                    .collect()
            })
            .unwrap_or_default();
        let report = inspect::inspect_named(&wasm, self.top, &known_names).map_err(|e| {
            input_error(format!(
                "{}: not a valid module: {e:#}",
                self.path.display()
            ))
        })?;
        if self.output.is_json() {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if self.output.is_human() {
            print!("{}", human(&report));
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl Opts {
    fn run_python(
        &self,
        dir: &std::path::Path,
        manifest: &PythonManifest,
    ) -> anyhow::Result<ExitCode> {
        let report = pyodide_inspect::inspect(dir, manifest, self.top, self.static_data)?;
        if self.output.is_json() {
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        if !self.output.is_human() {
            return Ok(ExitCode::SUCCESS);
        }
        let mut out = String::from("shipped files (brotli)             bundle       stock\n");
        for f in &report.files {
            out.push_str(&format!(
                "  {:<28} {:>10}  {:>10}\n",
                f.file,
                format_bytes(f.brotli_bytes),
                f.stock_brotli_bytes.map_or("—".into(), format_bytes)
            ));
        }
        out.push_str(&format!(
            "\nlargest of {} stdlib modules in python_stdlib.zip   uncompressed    stored  kept because (pulled in by)\n",
            report.stdlib_modules
        ));
        for m in &report.largest_modules {
            out.push_str(&format!(
                "  {:<28} {:>3} files  {:>10}  {:>10}  {}{}\n",
                m.module,
                m.files,
                format_bytes(m.uncompressed_bytes),
                format_bytes(m.stored_bytes),
                m.kept_because.join(", "),
                m.pulled_in_by
                    .as_deref()
                    .map_or(String::new(), |by| format!(" ({by})"))
            ));
        }
        out.push_str("\nboot: loadPyodide imports it; traced: imported while the samples ran; static: the app's code names it\n");
        if let Some(data) = &report.static_data {
            out.push_str(&data.human());
        }
        print!("{out}");
        Ok(ExitCode::SUCCESS)
    }
}

fn human(report: &ModuleReport) -> String {
    let mut out = format!(
        "{} ({} functions)\n\nsections\n",
        format_bytes(report.bytes),
        report.functions
    );
    for section in &report.sections {
        out.push_str(&format!(
            "  {:<24} {:>10}\n",
            section.name,
            format_bytes(section.bytes)
        ));
    }
    out.push_str(&format!(
        "\nimports ({}): {}\n",
        report.imports.len(),
        report.imports.join(", ")
    ));
    out.push_str(&format!(
        "exports ({}): {}\n",
        report.exports.len(),
        report.exports.join(", ")
    ));
    out.push_str("\nlargest functions      size    retained  (retained: its bytes and those only it keeps)\n");
    for f in &report.largest_functions {
        let name = f
            .name
            .clone()
            .unwrap_or_else(|| format!("func[{}]", f.index));
        let exported = if f.exported_as.is_empty() {
            String::new()
        } else {
            format!("  (exported as {})", f.exported_as.join(", "))
        };
        let kept = f
            .kept_alive_by
            .as_deref()
            .filter(|k| *k != "export")
            .map_or(String::new(), |k| format!("  ← kept by {k}"));
        out.push_str(&format!(
            "  {:>20}  {:>10}  {name}{exported}{kept}\n",
            format_bytes(f.bytes),
            format_bytes(f.retained_bytes)
        ));
    }
    out
}
