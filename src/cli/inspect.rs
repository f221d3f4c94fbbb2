use super::bundle_dir_of;
use cargo_wasmpack_infer::bundle::Bundle;
use cargo_wasmpack_infer::exit::input_error;
use cargo_wasmpack_infer::inspect::{self, ModuleReport};
use cargo_wasmpack_infer::report::format_bytes;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Show what a module is made of: sections, imports, exports and the largest functions.
///
/// Takes a .wasm file or a bundle directory (its shipped module). Function names come from the
/// `name` section, which shipped modules lack unless built with --keep-names.
#[derive(Args)]
pub struct Opts {
    /// A .wasm file, or a bundle directory.
    path: PathBuf,
    /// How many of the largest functions to list.
    #[arg(long, default_value_t = 15)]
    top: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let wasm = if self.path.extension().is_some_and(|e| e == "wasm") && self.path.is_file() {
            std::fs::read(&self.path)
                .map_err(|e| input_error(format!("reading {}: {e}", self.path.display())))?
        } else {
            let bundle = Bundle::open(&bundle_dir_of(&self.path)?)?;
            bundle.read(&bundle.manifest.wasm.file)?
        };
        let report = inspect::inspect(&wasm, self.top).map_err(|e| {
            input_error(format!(
                "{}: not a valid module: {e:#}",
                self.path.display()
            ))
        })?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", human(&report));
        }
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
    out.push_str("\nlargest functions\n");
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
        out.push_str(&format!(
            "  {:>10}  {name}{exported}\n",
            format_bytes(f.bytes)
        ));
    }
    out
}
