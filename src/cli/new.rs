use cargo_wasmpack_infer::python::dist;
use cargo_wasmpack_infer::scaffold;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Create a project from a template that `build` accepts right away.
///
/// `new kernel NAME` writes a kernel crate with the ABI v1 exports written out by hand, metadata,
/// budgets and 16 generated samples. `new python NAME` writes a Python project (pyproject.toml
/// with [tool.wasmpack-infer], a pure-Python model, 16 samples in samples.json) that builds with
/// `build --pyodide npm:VERSION`. Replace the model and the samples with your own.
#[derive(Args)]
pub struct Opts {
    kind: Kind,
    /// Crate name; also the directory, unless --dir is given.
    name: String,
    /// Where to create the project (must not exist, or be empty).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// A Rust inference kernel crate.
    Kernel,
    /// A Python project for the Pyodide path.
    Python,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let files = match self.kind {
            Kind::Kernel => scaffold::kernel_files(&self.name)?,
            Kind::Python => scaffold::python_files(&self.name)?,
        };
        let dir = self.dir.unwrap_or_else(|| PathBuf::from(&self.name));
        let written = scaffold::write_project(&dir, &files)?;
        let build_args = match self.kind {
            Kind::Kernel => String::new(),
            Kind::Python => format!(" --pyodide npm:{}", dist::TESTED_VERSION),
        };
        println!(
            "created {} ({} files); next: cargo wasmpack-infer build {}{build_args}",
            written.display(),
            files.len(),
            written.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
