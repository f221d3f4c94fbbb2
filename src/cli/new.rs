use cargo_wasmpack_infer::exit::input_error;
use cargo_wasmpack_infer::python::dist;
use cargo_wasmpack_infer::scaffold;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Create a project from a template that `build` accepts right away.
///
/// `new kernel NAME` writes a kernel crate with the ABI v1 exports written out by hand, metadata,
/// budgets and 16 generated samples. `new kernel NAME --onnx MODEL.onnx` writes one that runs the
/// model with tract instead: input and output shapes from the model's graph (a free first axis
/// becomes the batch), the model embedded, samples generated for its input shape; a model with
/// operators tract cannot load is refused, naming them. `new python NAME` writes a Python project (pyproject.toml
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
    /// Kernels: run this ONNX model with tract (copied into the crate's model/).
    #[arg(long, value_name = "MODEL.onnx")]
    onnx: Option<PathBuf>,
    /// With --onnx: the model output the kernel returns (default: its only f32 output).
    #[arg(long, value_name = "NAME", requires = "onnx")]
    output: Option<String>,
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
        let files = match (self.kind, &self.onnx) {
            (Kind::Kernel, None) => scaffold::kernel_files(&self.name)?,
            (Kind::Kernel, Some(model)) => {
                scaffold::onnx_kernel_files(&self.name, model, self.output.as_deref())?
            }
            (Kind::Python, None) => scaffold::python_files(&self.name)?,
            (Kind::Python, Some(_)) => {
                return Err(input_error(
                    "--onnx writes a kernel crate: `new kernel NAME --onnx MODEL.onnx`",
                ));
            }
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
