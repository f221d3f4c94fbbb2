//! `new`: project scaffolds from `templates/`, embedded so an installed binary can write them.

use crate::bundle::pack::{self, BundleFile};
use crate::exit::input_error;
use crate::fsx::StagingDir;
use crate::manifest::Dtype;
use crate::onnx;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Template files of a kernel crate: path in the new project, text with `{{name}}` placeholders.
const KERNEL_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/kernel/Cargo.toml.tmpl"),
    ),
    ("src/lib.rs", include_str!("../templates/kernel/src/lib.rs")),
];
/// Template files of a kernel crate that runs an ONNX model with tract.
const ONNX_KERNEL_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/kernel-onnx/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/kernel-onnx/src/lib.rs"),
    ),
];
/// The Cargo.toml of a kernel compiled ahead of time from an ONNX model (its `src/lib.rs` is
/// generated).
const AOT_KERNEL_CARGO_TOML: &str = include_str!("../templates/kernel-aot/Cargo.toml.tmpl");
/// What tract itself weighs in a kernel module, brotli: examples/digits-onnx measured 2 404 260
/// bytes with its 204 592-byte model in it; the budget adds the model's own bytes and a quarter.
const TRACT_BROTLI_BYTES: u64 = 2_404_260 - 204_592;
/// Template files of a Python project; `package/` becomes the import package's directory.
const PYTHON_TEMPLATE: &[(&str, &str)] = &[
    (
        "pyproject.toml",
        include_str!("../templates/python/new/pyproject.toml.tmpl"),
    ),
    (
        "package/__init__.py",
        include_str!("../templates/python/new/package/__init__.py"),
    ),
    (
        "package/model.py",
        include_str!("../templates/python/new/package/model.py"),
    ),
];
/// The release workflow both scaffolds get; `{{build_args}}` is what `build` needs beyond `.`.
const RELEASE_WORKFLOW: (&str, &str) = (
    ".github/workflows/release.yml",
    include_str!("../templates/ci/github-release.yml"),
);
/// Samples `new` writes for both templates' 8-feature input.
const SAMPLES: usize = 16;
const FEATURES: usize = 8;

/// The files of a new kernel crate called `name`.
pub fn kernel_files(name: &str) -> Result<Vec<BundleFile>> {
    check_name(name, "crate")?;
    let mut files = fill(KERNEL_TEMPLATE, &[("{{name}}", name)]);
    files.extend(fill(&[RELEASE_WORKFLOW], &[("{{build_args}}", "")]));
    let bytes: Vec<u8> = sample_inputs(SAMPLES * FEATURES)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    files.push(BundleFile::new("samples/inputs.bin", bytes));
    Ok(files)
}

/// How a kernel made from an ONNX model runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnnxEngine {
    /// Compiled ahead of time when every node on the way to the output can be, else tract.
    Auto,
    /// Rust generated from the graph, calling the helper crate; refused when it cannot be.
    AheadOfTime,
    /// The tract interpreter, with the model embedded.
    Tract,
}

/// A kernel crate made from an ONNX model.
pub struct OnnxKernel {
    pub files: Vec<BundleFile>,
    /// Compiled ahead of time (else it runs tract).
    pub compiled: bool,
    /// Why `Auto` fell back to tract, for the user.
    pub note: Option<String>,
    /// The model's outputs that came out of a `ZipMap`, now the probabilities it mapped: the
    /// crate's copy of the model is the user's without them.
    pub unzipped: Vec<onnx::UnzippedOutput>,
}

/// The files of a new kernel crate called `name` for the ONNX model at `model`: shapes and dtypes
/// from the model's graph, its first axis the batch when it is free, `output` (by name) or else
/// the model's only f32 output. Compiled ahead of time or run by tract, as `engine` says; either
/// depends on the helper crate at `helper` (a path as Cargo.toml writes it): the compiled kernel
/// for its calls, the tract one for the WASM variant's randomness. A model neither
/// can run, or whose tensors the kernel ABI cannot carry, is an input error naming why.
pub fn onnx_kernel_files(
    name: &str,
    model: &Path,
    output: Option<&str>,
    engine: OnnxEngine,
    storage: onnx::WeightStorage,
    helper: &str,
) -> Result<OnnxKernel> {
    check_name(name, "crate")?;
    let read = onnx::read(model)?;
    let (read, unzipped) = match read.without_zipmap()? {
        Some(unzipped) => unzipped,
        None => (read, Vec::new()),
    };
    let summary = &read.summary;
    let [input] = summary.inputs.as_slice() else {
        let names: Vec<&str> = summary.inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(input_error(format!(
            "{}: a kernel takes a model with one input; this one has {}: {}",
            model.display(),
            names.len(),
            names.join(", ")
        )));
    };
    let input_shape = sample_shape(model, input, "input")?;
    let candidates: Vec<(usize, &onnx::TensorInfo)> = summary
        .outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| match output {
            Some(wanted) => o.name == wanted,
            None => o.dtype.is_some_and(|d| d == Dtype::F32),
        })
        .collect();
    let (output_index, chosen) = match candidates.as_slice() {
        [one] => *one,
        _ => {
            let all: Vec<String> = summary
                .outputs
                .iter()
                .map(|o| format!("`{}` ({})", o.name, o.elem_type))
                .collect();
            return Err(input_error(format!(
                "{}: {} among its outputs {}: name the one the kernel returns with --output NAME",
                model.display(),
                match output {
                    Some(wanted) => format!("no output is called `{wanted}`"),
                    None if candidates.is_empty() => "no f32 output".to_string(),
                    None => "more than one f32 output".to_string(),
                },
                all.join(", ")
            )));
        }
    };
    let output_shape = sample_shape(model, chosen, "output")?;
    let shape = Shapes {
        input,
        input_shape: &input_shape,
        output: chosen,
        output_shape: &output_shape,
        output_index,
    };
    let tract_refusal = tract_refusal(summary);
    let lowered = match engine {
        OnnxEngine::Tract => None,
        OnnxEngine::Auto | OnnxEngine::AheadOfTime => {
            let dims: Vec<usize> = input_shape.dims.iter().map(|&d| d as usize).collect();
            Some(read.lower(&chosen.name, &dims))
        }
    };
    match (lowered, engine) {
        (Some(Ok(program)), _) => {
            let files =
                compiled_kernel_files(name, model, &read, &program, &shape, storage, helper)?;
            Ok(OnnxKernel {
                files,
                compiled: true,
                note: None,
                unzipped,
            })
        }
        (Some(Err(why)), engine)
            if engine == OnnxEngine::AheadOfTime || storage != onnx::WeightStorage::F32 =>
        {
            Err(input_error(format!(
                "{}: cannot compile it ahead of time: {why}{}",
                model.display(),
                match (&tract_refusal, storage) {
                    (_, onnx::WeightStorage::F16) => {
                        " (--weights f16 applies to compiled kernels; without it, --engine auto \
                         runs the model with tract)"
                    }
                    (None, _) => " (--engine tract runs it with the tract interpreter instead)",
                    (Some(_), _) => "",
                }
            )))
        }
        (Some(Err(why)), _) => match tract_refusal {
            Some(refusal) => Err(input_error(format!(
                "{}: cannot compile it ahead of time: {why}; and {refusal}",
                model.display()
            ))),
            None => Ok(OnnxKernel {
                files: tract_kernel_files(name, model, &read, &shape, helper)?,
                compiled: false,
                note: Some(format!(
                    "{} is not compiled ahead of time: {why}. The kernel runs it with tract \
                     instead, an interpreter of about {} brotli (--engine aot refuses instead)",
                    model.display(),
                    crate::units::format_bytes(TRACT_BROTLI_BYTES)
                )),
                unzipped,
            }),
        },
        (None, _) => match tract_refusal {
            Some(refusal) => Err(input_error(format!("{}: {refusal}", model.display()))),
            None => Ok(OnnxKernel {
                files: tract_kernel_files(name, model, &read, &shape, helper)?,
                compiled: false,
                note: None,
                unzipped,
            }),
        },
    }
}

/// The chosen input and output of a model, and one sample's shape of each.
struct Shapes<'a> {
    input: &'a onnx::TensorInfo,
    input_shape: &'a SampleShape,
    output: &'a onnx::TensorInfo,
    output_shape: &'a SampleShape,
    /// Where the output is among the model's outputs.
    output_index: usize,
}

impl Shapes<'_> {
    /// The placeholders both ONNX templates share.
    fn values(&self, name: &str, model_file: &str) -> Vec<(&'static str, String)> {
        let join = |dims: &[u64]| {
            dims.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            ("{{name}}", name.to_string()),
            ("{{model_file}}", model_file.to_string()),
            ("{{input_name}}", self.input.name.clone()),
            ("{{input_dims}}", describe_dims(self.input)),
            ("{{output_name}}", self.output.name.clone()),
            ("{{output_dims}}", describe_dims(self.output)),
            ("{{input_shape}}", join(&self.input_shape.dims)),
            ("{{output_shape}}", join(&self.output_shape.dims)),
        ]
    }
}

/// Why tract-onnx cannot load the model, when it cannot.
fn tract_refusal(summary: &onnx::ModelSummary) -> Option<String> {
    let unsupported = summary.unsupported_by_tract();
    if unsupported.is_empty() {
        return None;
    }
    let listed: Vec<String> = unsupported
        .iter()
        .map(|(op, nodes)| format!("`{op}` (node {})", nodes.join(", ")))
        .collect();
    let zipmap = unsupported.iter().any(|(op, _)| *op == "ZipMap");
    Some(format!(
        "tract-onnx 0.23.9 cannot load operator{} {}{}",
        if listed.len() == 1 { "" } else { "s" },
        listed.join(", "),
        if zipmap {
            " (skl2onnx writes ZipMap for a classifier's probabilities: export with \
             options={id(model): {\"zipmap\": False}})"
        } else {
            ""
        }
    ))
}

fn model_file_name(model: &Path) -> String {
    model
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.onnx".into())
}

/// A crate whose `src/lib.rs` is the graph compiled to calls into the helper crate.
fn compiled_kernel_files(
    name: &str,
    model: &Path,
    read: &onnx::Model,
    program: &onnx::Program,
    shape: &Shapes,
    storage: onnx::WeightStorage,
    helper: &str,
) -> Result<Vec<BundleFile>> {
    let computed: usize = program.output.shape.iter().product();
    if computed as u64 != shape.output_shape.len() {
        return Err(input_error(format!(
            "{}: output `{}` comes out of the graph with {computed} values per sample, but the \
             model declares {}",
            model.display(),
            shape.output.name,
            describe_dims(shape.output)
        )));
    }
    let model_file = model_file_name(model);
    let sha256 = crate::fsx::sha256_hex(&read.bytes);
    let producer = match read.summary.producer.as_str() {
        "" => "no producer named".to_string(),
        producer => format!("written by {producer}"),
    };
    let generated = onnx::generate(
        program,
        &onnx::Provenance {
            crate_name: name,
            model_file: &model_file,
            model_sha256: &sha256,
            producer: &producer,
            input_dims: &describe_dims(shape.input),
            output_dims: &describe_dims(shape.output),
        },
        storage,
    );
    let weights = generated.weights.len() as u64;
    let mut values = shape.values(name, &model_file);
    values.extend([
        ("{{helper}}", helper.to_string()),
        ("{{model_sha256}}", sha256.clone()),
        ("{{brotli_budget}}", brotli_budget(weights + 32 * 1024)),
        (
            "{{budget_note}}",
            format!(
                "{} of f32, which brotli barely shrinks, and about 20 KiB of code",
                crate::units::format_bytes(weights)
            ),
        ),
    ]);
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut files = fill(&[("Cargo.toml", AOT_KERNEL_CARGO_TOML)], &values);
    files.push(BundleFile::new("src/lib.rs", generated.lib_rs.into_bytes()));
    files.extend(fill(&[RELEASE_WORKFLOW], &[("{{build_args}}", "")]));
    files.push(BundleFile::new("model/weights.bin", generated.weights));
    files.push(BundleFile::new(
        format!("model/{model_file}"),
        read.bytes.clone(),
    ));
    files.push(samples_file(shape.input_shape));
    Ok(files)
}

/// A crate that embeds the model and runs it with tract.
fn tract_kernel_files(
    name: &str,
    model: &Path,
    read: &onnx::Model,
    shape: &Shapes,
    helper: &str,
) -> Result<Vec<BundleFile>> {
    let model_file = model_file_name(model);
    let mut values = shape.values(name, &model_file);
    values.extend([
        ("{{helper}}", helper.to_string()),
        ("{{input_len}}", shape.input_shape.len().to_string()),
        ("{{output_len}}", shape.output_shape.len().to_string()),
        ("{{output_index}}", shape.output_index.to_string()),
        ("{{batched}}", shape.input_shape.batched.to_string()),
        (
            "{{brotli_budget}}",
            brotli_budget(TRACT_BROTLI_BYTES + read.bytes.len() as u64),
        ),
        (
            "{{budget_note}}",
            format!(
                "about {} brotli, plus the model's own bytes",
                crate::units::format_bytes(TRACT_BROTLI_BYTES)
            ),
        ),
    ]);
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut files = fill(ONNX_KERNEL_TEMPLATE, &values);
    files.extend(fill(&[RELEASE_WORKFLOW], &[("{{build_args}}", "")]));
    files.push(BundleFile::new(
        format!("model/{model_file}"),
        read.bytes.clone(),
    ));
    files.push(samples_file(shape.input_shape));
    Ok(files)
}

/// A module's brotli budget: what it is expected to weigh and a quarter more, in whole KiB.
fn brotli_budget(expected_bytes: u64) -> String {
    format!("{} KiB", (expected_bytes * 5 / 4).div_ceil(1024))
}

/// `samples/inputs.bin`: 16 generated samples of the model's input shape.
fn samples_file(shape: &SampleShape) -> BundleFile {
    let bytes: Vec<u8> = sample_inputs(SAMPLES * shape.len() as usize)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    BundleFile::new("samples/inputs.bin", bytes)
}

/// The helper crate this binary was built with, which generated kernels depend on.
pub fn bundled_helper_crate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel")
}

/// The `path` a crate at `crate_dir` (not created yet) writes for its dependency on the helper
/// crate at `helper`: relative when both lie under one directory below the root (a checkout, a
/// home), so the pair moves together; absolute otherwise. A directory that is not the helper
/// crate is an input error.
pub fn helper_dependency(crate_dir: &Path, helper: &Path) -> Result<String> {
    let manifest = helper.join("Cargo.toml");
    let is_helper = std::fs::read_to_string(&manifest)
        .is_ok_and(|text| text.contains("name = \"wasmpack-infer-kernel\""));
    if !is_helper {
        return Err(input_error(format!(
            "{} is not the helper crate wasmpack-infer-kernel (no Cargo.toml naming it): a \
             compiled kernel depends on it; pass --kernel-crate DIR with the kernel/ directory of \
             a cargo-wasmpack-infer checkout",
            helper.display()
        )));
    }
    let helper = helper
        .canonicalize()
        .map_err(|e| input_error(format!("{}: {e}", helper.display())))?;
    let absolute = |p: &Path| -> Result<PathBuf> {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()?.join(p)
        };
        // The crate's directory does not exist yet; its nearest existing ancestor does.
        let existing = p.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
        let rest = p.strip_prefix(existing).unwrap_or(Path::new(""));
        Ok(existing.canonicalize()?.join(rest))
    };
    let from = absolute(crate_dir)?;
    let common = from
        .components()
        .zip(helper.components())
        .take_while(|(a, b)| a == b)
        .count();
    if common <= 1 {
        return Ok(helper.display().to_string());
    }
    let ups = from.components().count() - common;
    let mut relative = PathBuf::new();
    for _ in 0..ups {
        relative.push("..");
    }
    relative.extend(helper.components().skip(common));
    Ok(relative.display().to_string())
}

/// One sample's shape of a model tensor: its axes after the batch axis.
struct SampleShape {
    dims: Vec<u64>,
    /// The first axis is free (any batch size), rather than 1.
    batched: bool,
}

impl SampleShape {
    fn len(&self) -> u64 {
        self.dims.iter().product()
    }
}

fn sample_shape(model: &Path, tensor: &onnx::TensorInfo, role: &str) -> Result<SampleShape> {
    let problem = |why: String| {
        input_error(format!(
            "{}: {role} `{}` {why}",
            model.display(),
            tensor.name
        ))
    };
    if tensor.dtype != Some(Dtype::F32) {
        return Err(problem(format!(
            "is {}: the ONNX kernel template reads and writes f32",
            tensor.elem_type
        )));
    }
    let Some(dims) = &tensor.dims else {
        return Err(problem("declares no shape".into()));
    };
    let Some((first, rest)) = dims.split_first() else {
        return Err(problem(
            "is a scalar: the first axis must be the batch".into(),
        ));
    };
    let batched = match first {
        onnx::Dim::Fixed(1) => false,
        onnx::Dim::Fixed(n) => {
            return Err(problem(format!(
                "has a fixed first axis of {n}: the template takes a free batch axis or 1"
            )));
        }
        onnx::Dim::Named(_) | onnx::Dim::Open => true,
    };
    let dims = rest
        .iter()
        .map(|d| match d {
            onnx::Dim::Fixed(n) => Ok(*n),
            other => Err(problem(format!(
                "has a free axis after the batch ({other:?}): a sample must have a fixed shape"
            ))),
        })
        .collect::<Result<Vec<u64>>>()?;
    Ok(SampleShape { dims, batched })
}

/// `[N, 64]`, with named axes by name and open ones as `?`.
fn describe_dims(tensor: &onnx::TensorInfo) -> String {
    let dims: Vec<String> = tensor
        .dims
        .iter()
        .flatten()
        .map(|d| match d {
            onnx::Dim::Fixed(n) => n.to_string(),
            onnx::Dim::Named(name) => name.clone(),
            onnx::Dim::Open => "?".into(),
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

/// The files of a new Python project called `name`; its import package is `name` in snake case.
pub fn python_files(name: &str) -> Result<Vec<BundleFile>> {
    check_name(name, "project")?;
    let package = name.replace('-', "_").to_ascii_lowercase();
    let mut files = fill(
        PYTHON_TEMPLATE,
        &[("{{name}}", name), ("{{package}}", &package)],
    );
    for file in &mut files {
        if let Some(rest) = file.path.strip_prefix("package/") {
            file.path = format!("{package}/{rest}");
        }
    }
    let pyodide = format!(" --pyodide npm:{}", crate::python::dist::TESTED_VERSION);
    files.extend(fill(&[RELEASE_WORKFLOW], &[("{{build_args}}", &pyodide)]));
    let values = sample_inputs(SAMPLES * FEATURES);
    let samples: Vec<&[f32]> = values.chunks(FEATURES).collect();
    let mut json = serde_json::to_vec(&samples).expect("samples serialize");
    json.push(b'\n');
    files.push(BundleFile::new("samples.json", json));
    Ok(files)
}

/// Template files with each placeholder replaced.
fn fill(template: &[(&str, &str)], values: &[(&str, &str)]) -> Vec<BundleFile> {
    template
        .iter()
        .map(|(path, text)| {
            let text = values.iter().fold(text.to_string(), |text, (slot, value)| {
                text.replace(slot, value)
            });
            BundleFile::new(*path, text.into_bytes())
        })
        .collect()
}

/// Deterministic values in [-1, 1) (a 64-bit LCG), so every scaffold measures the same inputs
/// until the user supplies real ones.
fn sample_inputs(count: usize) -> Vec<f32> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            unit * 2.0 - 1.0
        })
        .collect()
}

/// A crate or Python project name: a letter, then letters, digits, `-` or `_` (valid for cargo
/// and PEP 508, and a Python identifier once `-` becomes `_`).
fn check_name(name: &str, what: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(input_error(format!(
            "`{name}` is not a valid {what} name: start with a letter, then letters, digits, `-` or `_`"
        )));
    }
    Ok(())
}

/// Writes `files` as a new project at `dir`, all or nothing; an existing non-empty `dir` is left
/// alone and reported.
pub fn write_project(dir: &Path, files: &[BundleFile]) -> Result<PathBuf> {
    let occupied =
        dir.is_file() || std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err(input_error(format!(
            "{} already exists and is not empty",
            dir.display()
        )));
    }
    let staging = StagingDir::new(dir)?;
    pack::write_files(staging.path(), files)?;
    staging.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(kernel_files("my-kernel_2").is_ok());
        for bad in ["", "2fast", "has space", "../escape"] {
            assert!(kernel_files(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kernel_scaffold_fills_the_name_and_writes_samples() {
        let files = kernel_files("tiny").unwrap();
        let manifest = String::from_utf8(files[0].bytes.clone()).unwrap();
        assert!(manifest.contains("name = \"tiny\"") && !manifest.contains("{{"));
        let workflow = files
            .iter()
            .find(|f| f.path == ".github/workflows/release.yml")
            .unwrap();
        let workflow = String::from_utf8(workflow.bytes.clone()).unwrap();
        assert!(
            workflow.contains("run: cargo wasmpack-infer build . --check\n"),
            "{workflow}"
        );
        let samples = files
            .iter()
            .find(|f| f.path == "samples/inputs.bin")
            .unwrap();
        assert_eq!(samples.bytes.len(), SAMPLES * FEATURES * 4);
        let values = crate::manifest::Dtype::F32.decode(&samples.bytes);
        assert!(values.iter().all(|v| (-1.0..1.0).contains(v)));
    }

    fn repo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    fn onnx_files(model: &str, output: Option<&str>, engine: OnnxEngine) -> Result<OnnxKernel> {
        onnx_kernel_files(
            "digits",
            &repo(model),
            output,
            engine,
            onnx::WeightStorage::F32,
            "../kernel",
        )
    }

    #[test]
    fn onnx_scaffold_takes_shapes_and_the_f32_output_from_the_model() {
        let kernel = onnx_files(
            "examples/digits-onnx/model/digits.onnx",
            None,
            OnnxEngine::Tract,
        )
        .unwrap();
        assert!(!kernel.compiled && kernel.note.is_none() && kernel.unzipped.is_empty());
        let files = kernel.files;
        let file = |path: &str| {
            let file = files.iter().find(|f| f.path == path).unwrap();
            String::from_utf8_lossy(&file.bytes).into_owned()
        };
        let manifest = file("Cargo.toml");
        assert!(
            manifest.contains(r#"input = { dtype = "f32", shape = [64] }"#),
            "{manifest}"
        );
        assert!(
            manifest.contains(r#"output = { dtype = "f32", shape = [10] }"#),
            "{manifest}"
        );
        assert!(
            manifest.contains("output `probabilities` [?, 10]"),
            "{manifest}"
        );
        assert!(!manifest.contains("{{"), "{manifest}");
        let lib = file("src/lib.rs");
        assert!(lib.contains("const OUTPUT_INDEX: usize = 1;"), "{lib}");
        assert!(lib.contains("const BATCHED: bool = true;"), "{lib}");
        assert!(
            lib.contains(r#"include_bytes!("../model/digits.onnx")"#),
            "{lib}"
        );
        assert!(!lib.contains("{{"), "{lib}");
        let model = files
            .iter()
            .find(|f| f.path == "model/digits.onnx")
            .unwrap();
        assert_eq!(model.bytes.len(), 204_592);
        let samples = files
            .iter()
            .find(|f| f.path == "samples/inputs.bin")
            .unwrap();
        assert_eq!(samples.bytes.len(), SAMPLES * 64 * 4);

        // Naming the output picks it; naming the int64 one is refused as a dtype the template
        // cannot carry.
        let named = onnx_files(
            "examples/digits-onnx/model/digits.onnx",
            Some("label"),
            OnnxEngine::Auto,
        );
        let err = format!("{:#}", named.err().unwrap());
        assert!(err.contains("output `label` is INT64"), "{err}");
    }

    /// skl2onnx's default export of a classifier ends in a ZipMap: the crate gets the model
    /// without it, returning the probabilities it mapped, compiled or run by tract.
    #[test]
    fn a_zipmap_output_becomes_the_probabilities_it_mapped() {
        let model = "tests/fixtures/onnx-aot/iris-logreg-zipmap.onnx";
        for (engine, output) in [
            (OnnxEngine::Auto, None),
            (OnnxEngine::Tract, None),
            (OnnxEngine::Auto, Some("output_probability")),
        ] {
            let kernel = onnx_files(model, output, engine).unwrap();
            assert_eq!(kernel.compiled, engine == OnnxEngine::Auto);
            assert_eq!(
                kernel.unzipped,
                [onnx::UnzippedOutput {
                    name: "output_probability".into(),
                    classes: 3
                }]
            );
            let file = |path: &str| &kernel.files.iter().find(|f| f.path == path).unwrap().bytes;
            let manifest = String::from_utf8_lossy(file("Cargo.toml"));
            assert!(
                manifest.contains(r#"output = { dtype = "f32", shape = [3] }"#),
                "{manifest}"
            );
            let copy = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(copy.path(), file("model/iris-logreg-zipmap.onnx")).unwrap();
            let shipped = onnx::read(copy.path()).unwrap();
            assert!(!shipped.summary.operators.contains_key("ZipMap"));
            let probabilities = &shipped.summary.outputs[1];
            assert_eq!(probabilities.name, "output_probability");
            assert_eq!(probabilities.dtype, Some(Dtype::F32));
            assert_eq!(probabilities.dims.as_ref().unwrap()[1], onnx::Dim::Fixed(3));
            assert!(shipped.without_zipmap().unwrap().is_none());
        }
    }

    #[test]
    fn onnx_models_compile_ahead_of_time_unless_an_operator_cannot() {
        let kernel = onnx_files(
            "examples/digits-onnx/model/digits.onnx",
            None,
            OnnxEngine::Auto,
        )
        .unwrap();
        assert!(kernel.compiled && kernel.note.is_none());
        let file = |path: &str| {
            let file = kernel.files.iter().find(|f| f.path == path).unwrap();
            String::from_utf8_lossy(&file.bytes).into_owned()
        };
        let manifest = file("Cargo.toml");
        let sha256 = crate::fsx::sha256_hex(
            &std::fs::read(repo("examples/digits-onnx/model/digits.onnx")).unwrap(),
        );
        assert!(
            manifest.contains(&format!(
                r#"model = {{ file = "model/digits.onnx", sha256 = "{sha256}", engine = "ahead-of-time" }}"#
            )),
            "{manifest}"
        );
        assert!(manifest.contains(r#"wasmpack-infer-kernel = { path = "../kernel" }"#));
        assert!(
            !manifest.contains("{{") && !manifest.contains("tract"),
            "{manifest}"
        );
        let lib = file("src/lib.rs");
        assert!(
            lib.contains("dense_0: dense(&mut weights, 64, 256)?"),
            "{lib}"
        );
        assert!(lib.contains("cpu::softmax(output, 10);"), "{lib}");
        let weights = kernel
            .files
            .iter()
            .find(|f| f.path == "model/weights.bin")
            .unwrap();
        // Three layers, packed in even panel counts of 8 columns: 256, 128 and 16 wide.
        let values = (64 * 256 + 256) + (256 * 128 + 128) + (128 * 16 + 10);
        assert_eq!(weights.bytes.len(), values * 4);
        assert!(lib.contains(&format!("const WEIGHT_BYTES: usize = {};", values * 4)));

        // An LRN tract loads falls back to tract, saying so; `--engine aot` refuses it instead.
        let fallback = onnx_files("tests/fixtures/onnx/lrn.onnx", None, OnnxEngine::Auto).unwrap();
        assert!(!fallback.compiled);
        let note = fallback.note.unwrap();
        assert!(
            note.contains("operator `LRN` (node lrn0)") && note.contains("tract"),
            "{note}"
        );
        let err = onnx_files(
            "tests/fixtures/onnx/lrn.onnx",
            None,
            OnnxEngine::AheadOfTime,
        )
        .err()
        .unwrap();
        assert_eq!(
            crate::exit::code_for(&err),
            std::process::ExitCode::from(crate::exit::USAGE)
        );
        let err = format!("{err:#}");
        assert!(
            err.contains(
                "cannot compile it ahead of time: the code generator does not compile \
                 operator `LRN` (node lrn0) (--engine tract runs it"
            ),
            "{err}"
        );
    }

    #[test]
    fn f16_weights_halve_the_layers_and_refuse_a_fallback_to_tract() {
        let half = |model: &str, engine| {
            onnx_kernel_files(
                "k",
                &repo(model),
                None,
                engine,
                onnx::WeightStorage::F16,
                "../kernel",
            )
        };
        let kernel = half("examples/digits-onnx/model/digits.onnx", OnnxEngine::Auto).unwrap();
        let file = |path: &str| &kernel.files.iter().find(|f| f.path == path).unwrap().bytes;
        let packed = 64 * 256 + 256 * 128 + 128 * 16;
        let biases = 256 + 128 + 10;
        assert_eq!(file("model/weights.bin").len(), packed * 2 + biases * 4);
        let lib = String::from_utf8(file("src/lib.rs").clone()).unwrap();
        assert!(
            lib.contains(".take_f16(Dense::packed_len(inputs, outputs))"),
            "{lib}"
        );
        assert!(lib.contains("the layers' weights as f16"), "{lib}");
        let err = half("tests/fixtures/onnx/lrn.onnx", OnnxEngine::Auto)
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("--weights f16 applies to compiled kernels"),
            "{err:#}"
        );
    }

    #[test]
    fn the_helper_dependency_is_relative_inside_one_tree() {
        let root = tempfile::tempdir().unwrap();
        let helper = root.path().join("tools/kernel");
        std::fs::create_dir_all(&helper).unwrap();
        std::fs::write(
            helper.join("Cargo.toml"),
            "[package]\nname = \"wasmpack-infer-kernel\"\n",
        )
        .unwrap();
        let crate_dir = root.path().join("models/new-one");
        assert_eq!(
            helper_dependency(&crate_dir, &helper).unwrap(),
            "../../tools/kernel"
        );
        let err = helper_dependency(&crate_dir, root.path()).unwrap_err();
        assert!(format!("{err:#}").contains("--kernel-crate DIR"), "{err:#}");
        // The bundled one exists in a checkout.
        assert!(helper_dependency(&crate_dir, &bundled_helper_crate()).is_ok());
    }

    #[test]
    fn onnx_models_the_template_cannot_run_are_refused_naming_why() {
        let cases = [
            (
                "custom-op.onnx",
                "cannot load operator `FancyNorm` (node norm0)",
            ),
            ("two-inputs.onnx", "one input; this one has 2: x, other"),
            ("int-input.onnx", "input `ids` is INT64"),
        ];
        for (model, expected) in cases {
            let path = repo("tests/fixtures/onnx").join(model);
            let err = onnx_kernel_files(
                "k",
                &path,
                None,
                OnnxEngine::Auto,
                onnx::WeightStorage::F32,
                "../kernel",
            )
            .err()
            .unwrap();
            assert_eq!(
                crate::exit::code_for(&err),
                std::process::ExitCode::from(crate::exit::USAGE),
                "{model}"
            );
            let err = format!("{err:#}");
            assert!(err.contains(expected), "{model}: {err}");
        }
        let err = onnx_kernel_files(
            "k",
            &repo("README.md"),
            None,
            OnnxEngine::Auto,
            onnx::WeightStorage::F32,
            "",
        )
        .err()
        .unwrap();
        assert!(format!("{err:#}").contains("is not an ONNX model"));
    }

    #[test]
    fn python_scaffold_names_its_package_and_writes_json_samples() {
        let files = python_files("My-Model").unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "pyproject.toml",
                "my_model/__init__.py",
                "my_model/model.py",
                ".github/workflows/release.yml",
                "samples.json"
            ]
        );
        let workflow = String::from_utf8(files[3].bytes.clone()).unwrap();
        assert!(
            workflow.contains("build . --check --pyodide npm:"),
            "{workflow}"
        );
        let pyproject = String::from_utf8(files[0].bytes.clone()).unwrap();
        assert!(
            pyproject.contains(r#"entry = "my_model.model:predict""#),
            "{pyproject}"
        );
        assert!(!pyproject.contains("{{"));
        let samples: Vec<Vec<f64>> = serde_json::from_slice(&files[4].bytes).unwrap();
        assert_eq!((samples.len(), samples[0].len()), (SAMPLES, FEATURES));
        assert!(python_files("1st").is_err());
    }

    #[test]
    fn existing_directories_are_not_overwritten() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("keep.txt"), "mine").unwrap();
        assert!(write_project(root.path(), &kernel_files("x").unwrap()).is_err());
        assert_eq!(
            std::fs::read_to_string(root.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
