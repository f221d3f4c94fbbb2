use cargo_wasmpack_infer::exit::input_error;
use cargo_wasmpack_infer::onnx::{COMPILED_OPS, WeightStorage};
use cargo_wasmpack_infer::python::dist;
use cargo_wasmpack_infer::scaffold::{self, OnnxEngine};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Create a project from a template that `build` accepts right away.
///
/// `new kernel NAME` writes a kernel crate with the ABI v1 exports written out by hand, metadata,
/// budgets and 16 generated samples.
///
/// `new kernel NAME --onnx MODEL.onnx` writes one for the model: input and output shapes from its
/// graph (a free first axis becomes the batch), samples generated for its input shape. By default
/// the graph is compiled ahead of time: `src/lib.rs` is Rust generated from the nodes between the
/// input and the output, one call into the helper crate per step, with the weights packed for its
/// GEMM in `model/weights.bin` and no interpreter linked (`--list-ops` shows what compiles). A
/// model with other operators runs with the tract interpreter instead, which `new` says;
/// `--engine` picks one or the other outright. A model neither runs is refused, naming why.
///
/// `new python NAME` writes a Python project (pyproject.toml with [tool.wasmpack-infer], a
/// pure-Python model, 16 samples in samples.json) that builds with `build --pyodide npm:VERSION`.
/// Replace the model and the samples with your own.
#[derive(Args)]
pub struct Opts {
    #[arg(required_unless_present = "list_ops")]
    kind: Option<Kind>,
    /// Crate name; also the directory, unless --dir is given.
    #[arg(required_unless_present = "list_ops")]
    name: Option<String>,
    /// Where to create the project (must not exist, or be empty).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Kernels: a kernel for this ONNX model (copied into the crate's model/).
    #[arg(long, value_name = "MODEL.onnx")]
    onnx: Option<PathBuf>,
    /// With --onnx: the model output the kernel returns (default: its only f32 output).
    #[arg(long, value_name = "NAME", requires = "onnx")]
    output: Option<String>,
    /// With --onnx: compile the graph ahead of time, run it with tract, or compile it when every
    /// operator can be and use tract otherwise.
    #[arg(long, value_enum, default_value = "auto", requires = "onnx")]
    engine: Engine,
    /// With --onnx: how a compiled kernel stores its layers' weights. f16 halves their bytes and
    /// rounds each to 11 significant bits, which moves outputs by about 1e-3 of their size; it
    /// applies to compiled kernels only, so a model that does not compile is refused.
    #[arg(long, value_enum, default_value = "f32", requires = "onnx")]
    weights: Weights,
    /// With --onnx: the helper crate (the kernel/ directory of a cargo-wasmpack-infer checkout)
    /// the kernel depends on: for its calls when compiled, for the WASM variant's randomness
    /// when run by tract [default: the one this binary was built with].
    #[arg(long, value_name = "DIR", requires = "onnx")]
    kernel_crate: Option<PathBuf>,
    /// List the ONNX operators compiled ahead of time, and what of each, then exit.
    #[arg(long, exclusive = true)]
    list_ops: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// A Rust inference kernel crate.
    Kernel,
    /// A Python project for the Pyodide path.
    Python,
}

#[derive(Clone, Copy, ValueEnum)]
enum Weights {
    /// The model's values, exactly.
    F32,
    /// IEEE half floats: half the bytes.
    F16,
}

#[derive(Clone, Copy, ValueEnum)]
enum Engine {
    Auto,
    /// Rust generated from the graph; refused when an operator cannot be compiled.
    Aot,
    /// The tract-onnx interpreter with the model embedded.
    Tract,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        if self.list_ops {
            list_ops();
            return Ok(ExitCode::SUCCESS);
        }
        let (Some(kind), Some(name)) = (self.kind, self.name) else {
            unreachable!("clap requires both unless --list-ops");
        };
        let dir = self.dir.unwrap_or_else(|| PathBuf::from(&name));
        let mut note = None;
        let files = match (kind, &self.onnx) {
            (Kind::Kernel, None) => scaffold::kernel_files(&name)?,
            (Kind::Kernel, Some(model)) => {
                let engine = match self.engine {
                    Engine::Auto => OnnxEngine::Auto,
                    Engine::Aot => OnnxEngine::AheadOfTime,
                    Engine::Tract => OnnxEngine::Tract,
                };
                let storage = match (self.weights, engine) {
                    (Weights::F32, _) => WeightStorage::F32,
                    (Weights::F16, OnnxEngine::Tract) => {
                        return Err(input_error(
                            "--weights f16 applies to compiled kernels; tract reads the model's \
                             own weights (use --engine aot or auto)",
                        ));
                    }
                    (Weights::F16, _) => WeightStorage::F16,
                };
                let helper = self
                    .kernel_crate
                    .unwrap_or_else(scaffold::bundled_helper_crate);
                let helper = scaffold::helper_dependency(&dir, &helper)?;
                let kernel = scaffold::onnx_kernel_files(
                    &name,
                    model,
                    self.output.as_deref(),
                    engine,
                    storage,
                    &helper,
                )?;
                let engine_note = match kernel.note {
                    Some(note) => format!("note: {note}"),
                    None if kernel.compiled => {
                        "compiled ahead of time: src/lib.rs calls the helper crate, the weights \
                         are in model/weights.bin"
                            .into()
                    }
                    None => "runs the model with tract (model/ holds it)".into(),
                };
                let unzipped = kernel.unzipped.iter().map(|output| {
                    format!(
                        "note: output `{}` was a ZipMap (skl2onnx's default for a classifier's \
                         probabilities: a list of {{class: probability}} maps); the kernel \
                         returns the {} probabilities it mapped, and model/ holds the model \
                         without it",
                        output.name, output.classes
                    )
                });
                note = Some(
                    std::iter::once(engine_note)
                        .chain(unzipped)
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                kernel.files
            }
            (Kind::Python, None) => scaffold::python_files(&name)?,
            (Kind::Python, Some(_)) => {
                return Err(input_error(
                    "--onnx writes a kernel crate: `new kernel NAME --onnx MODEL.onnx`",
                ));
            }
        };
        let written = scaffold::write_project(&dir, &files)?;
        let build_args = match kind {
            Kind::Kernel => String::new(),
            Kind::Python => format!(" --pyodide npm:{}", dist::TESTED_VERSION),
        };
        if let Some(note) = note {
            eprintln!("{note}");
        }
        println!(
            "created {} ({} files); next: cargo wasmpack-infer build {}{build_args}",
            written.display(),
            files.len(),
            written.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The operators `new kernel --onnx` compiles ahead of time, a line each.
fn list_ops() {
    let width = COMPILED_OPS
        .iter()
        .map(|(domain, op, _)| display_op(domain, op).len())
        .max()
        .unwrap_or(0);
    println!("ONNX operators compiled ahead of time (others run with tract):");
    for (domain, op, note) in COMPILED_OPS {
        let name = display_op(domain, op);
        if note.is_empty() {
            println!("  {name}");
        } else {
            println!("  {name:width$}  {note}");
        }
    }
}

fn display_op(domain: &str, op: &str) -> String {
    match domain {
        "ai.onnx" => op.to_string(),
        other => format!("{other}.{op}"),
    }
}
