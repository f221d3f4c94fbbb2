//! Rust from a lowered model: the `src/lib.rs` of a kernel that runs the graph as calls into the
//! helper crate, and the weights file it embeds, packed for the helper's GEMM.
//!
//! The output depends on the program alone (no time, no path, no hash map order), so the same
//! model generates the same bytes.

use super::lower::{Op, Program, Step};
use std::fmt::Write;
use wasmpack_infer_kernel::cpu::{Binary, Norm};
use wasmpack_infer_kernel::gemm::{Dense, PACKED_LAYOUT};

/// What the generated source says about where it came from.
pub struct Provenance<'a> {
    pub crate_name: &'a str,
    /// The model's file name inside the crate's `model/`.
    pub model_file: &'a str,
    pub model_sha256: &'a str,
    pub producer: &'a str,
    /// `[N, 64]`-style descriptions of the graph's input and output.
    pub input_dims: &'a str,
    pub output_dims: &'a str,
}

/// A generated kernel's sources.
pub struct Generated {
    pub lib_rs: String,
    /// `model/weights.bin`: every step's constants, little-endian f32, in the order `init` reads
    /// them.
    pub weights: Vec<u8>,
}

/// Where a step reads or writes its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Input,
    Scratch(usize),
    Output,
}

impl Place {
    fn read(self, len: usize) -> String {
        match self {
            Place::Input => "input".into(),
            Place::Scratch(i) => format!("&{}[..batch * {len}]", scratch_name(i)),
            Place::Output => "output".into(),
        }
    }

    fn write(self, len: usize) -> String {
        match self {
            Place::Input => unreachable!("the input is never written"),
            Place::Scratch(i) => format!("&mut {}[..batch * {len}]", scratch_name(i)),
            Place::Output => "output".into(),
        }
    }
}

fn scratch_name(index: usize) -> &'static str {
    ["a", "b"][index]
}

/// One step's code and where it leaves the values.
struct Planned {
    call: String,
    /// A copy that must run before the call (an in-place step cannot change the input).
    copy_first: Option<String>,
}

pub fn generate(program: &Program, provenance: &Provenance) -> Generated {
    let input_len: usize = program.input.shape.iter().product();
    let output_len: usize = program.output.shape.iter().product();
    let last_out_of_place = program.steps.iter().rposition(|s| s.op.out_of_place());
    let mut place = Place::Input;
    let mut planned = Vec::new();
    let mut scratch_used = 0usize;
    let mut scratch_len = 0usize;
    for (index, step) in program.steps.iter().enumerate() {
        let len_in: usize = step.input_shape.iter().product();
        let len_out: usize = step.output_shape.iter().product();
        let final_place = last_out_of_place.is_none_or(|last| index >= last);
        let fresh = |place: Place| match place {
            Place::Scratch(0) => Place::Scratch(1),
            _ => Place::Scratch(0),
        };
        let mut use_place = |p: Place, len: usize| {
            if let Place::Scratch(i) = p {
                scratch_used = scratch_used.max(i + 1);
                scratch_len = scratch_len.max(len);
            }
        };
        if step.op.out_of_place() {
            let target = if final_place {
                Place::Output
            } else {
                fresh(place)
            };
            use_place(target, len_out);
            planned.push(Planned {
                call: call(index, step, place.read(len_in), target.write(len_out)),
                copy_first: None,
            });
            place = target;
        } else {
            let mut copy_first = None;
            if place == Place::Input {
                let target = if final_place {
                    Place::Output
                } else {
                    Place::Scratch(0)
                };
                use_place(target, len_in);
                copy_first = Some(format!("{}.copy_from_slice(input);", target.write(len_in)));
                place = target;
            }
            planned.push(Planned {
                call: call(index, step, String::new(), place.write(len_out)),
                copy_first,
            });
        }
    }
    let final_copy = (place != Place::Output)
        .then(|| format!("output.copy_from_slice({});", place.read(output_len)));
    let has_dense = program
        .steps
        .iter()
        .any(|s| matches!(s.op, Op::Dense { .. }));

    let mut weights = Vec::new();
    let mut fields = Vec::new();
    let mut inits = Vec::new();
    for (index, step) in program.steps.iter().enumerate() {
        match &step.op {
            Op::Dense {
                inputs,
                outputs,
                weights: w,
                bias,
                ..
            } => {
                let dense = Dense::new(w, bias).expect("the lowering checked the layer's shape");
                push_f32s(&mut weights, dense.packed());
                push_f32s(&mut weights, bias);
                fields.push(format!(
                    "{}    dense_{index}: Dense,",
                    wrap(&nodes(step), "    /// ")
                ));
                inits.push(format!(
                    "            dense_{index}: dense(&mut weights, {inputs}, {outputs})?,"
                ));
            }
            Op::Constant { values, .. } => {
                push_f32s(&mut weights, values);
                fields.push(format!(
                    "{}    constant_{index}: Vec<f32>,",
                    wrap(&nodes(step), "    /// ")
                ));
                inits.push(format!(
                    "            constant_{index}: weights.take({}).ok_or(WEIGHTS_DO_NOT_MATCH)?,",
                    values.len()
                ));
            }
            _ => {}
        }
    }
    let weight_values = weights.len() / 4;

    let mut src = String::new();
    let p = provenance;
    let title = format!(
        "{}: `model/{}` compiled ahead of time into a cargo-wasmpack-infer kernel (ABI v1).",
        p.crate_name, p.model_file
    );
    let about = format!(
        "Generated by `cargo wasmpack-infer new kernel --onnx` from the model's graph ({}, \
         sha256 {}): input `{}` {}, output `{}` {}. Each step of `infer` is one call into the \
         helper crate, named after the ONNX nodes it computes{}; the weights are in \
         `model/weights.bin`, packed for its GEMM, and no interpreter is linked. Regenerate \
         rather than edit: the same model gives the same sources.",
        p.producer,
        p.model_sha256,
        program.input.name,
        p.input_dims,
        program.output.name,
        p.output_dims,
        match program.pruned {
            0 => String::new(),
            1 => " (one node the output does not depend on is left out)".into(),
            n => format!(" ({n} nodes the output does not depend on are left out)"),
        }
    );
    src.push_str(&wrap(&title, "//! "));
    src.push_str("//!\n");
    src.push_str(&wrap(&about, "//! "));
    src.push('\n');
    let mut imports = Vec::new();
    let cpu_items: Vec<&str> = [
        (
            uses(program, |op| matches!(op, Op::Constant { .. })),
            "Binary",
        ),
        (!weights.is_empty(), "F32Reader"),
        (
            uses(program, |op| matches!(op, Op::Normalize { .. })),
            "Norm",
        ),
    ]
    .into_iter()
    .filter_map(|(used, item)| used.then_some(item))
    .collect();
    let cpu_module = uses(program, |op| !op.out_of_place());
    match (cpu_module, cpu_items.as_slice()) {
        (false, []) => {}
        (true, []) => imports.push("use wasmpack_infer_kernel::cpu;".to_string()),
        (false, [one]) => imports.push(format!("use wasmpack_infer_kernel::cpu::{one};")),
        (module, items) => imports.push(format!(
            "use wasmpack_infer_kernel::cpu::{{{}{}}};",
            if module { "self, " } else { "" },
            items.join(", ")
        )),
    }
    if has_dense {
        imports.push("use wasmpack_infer_kernel::gemm::{self, Dense, Isa};".into());
        imports.push("use wasmpack_infer_kernel::{Kernel, device, export_kernel};".into());
    } else {
        imports.push("use wasmpack_infer_kernel::{Kernel, export_kernel};".into());
    }
    for line in imports {
        let _ = writeln!(src, "{line}");
    }
    let _ = writeln!(
        src,
        "\n/// Values in one sample of input `{}` and of output `{}`.\n\
         const INPUT_LEN: usize = {input_len};\n\
         const OUTPUT_LEN: usize = {output_len};",
        program.input.name, program.output.name
    );
    if scratch_used > 0 {
        let _ = writeln!(
            src,
            "/// Values per sample of the widest tensor held between steps.\n\
             const SCRATCH_LEN: usize = {scratch_len};"
        );
    }
    if !weights.is_empty() {
        let _ = writeln!(
            src,
            "/// f32 values in `model/weights.bin`, in the order `init` reads them.\n\
             const WEIGHT_VALUES: usize = {weight_values};\n\
             const WEIGHTS: &[u8] = include_bytes!(\"../model/weights.bin\");\n\
             /// `wpi_init`'s code when the weights are not the ones this code was generated for.\n\
             const WEIGHTS_DO_NOT_MATCH: i32 = 2;\n\
             \n\
             const _: () = assert!(\n    \
                 WEIGHTS.len() == WEIGHT_VALUES * 4,\n    \
                 \"model/weights.bin is not the file this code was generated with: regenerate\"\n\
             );"
        );
    }
    if has_dense {
        let _ = writeln!(
            src,
            "const _: () = assert!(\n    \
                 gemm::PACKED_LAYOUT == {PACKED_LAYOUT},\n    \
                 \"the helper crate packs weights another way than this code was generated for: \
                 regenerate\"\n\
             );"
        );
    }
    let _ = writeln!(
        src,
        "\n// The model and its buffers are allocated once (the buffers grow to the largest batch),\n\
         // which the small size-class allocator serves in a third of dlmalloc's code.\n\
         #[cfg(target_arch = \"wasm32\")]\n\
         #[global_allocator]\n\
         static ALLOCATOR: wasmpack_infer_kernel::alloc::SizeClassAllocator =\n    \
             wasmpack_infer_kernel::alloc::SizeClassAllocator::new();\n"
    );

    let _ = writeln!(src, "struct Model {{");
    if has_dense {
        let _ = writeln!(src, "    isa: Isa,");
    }
    for field in &fields {
        let _ = writeln!(src, "{field}");
    }
    if scratch_used > 0 {
        let _ = writeln!(
            src,
            "    /// Tensors between steps, for the largest batch so far.\n    scratch: [Vec<f32>; {scratch_used}],"
        );
    }
    if has_dense {
        let _ = writeln!(
            src,
            "    /// CPU threads the last call ran on.\n    threads: usize,"
        );
    }
    let _ = writeln!(src, "}}\n");

    if has_dense {
        let _ = writeln!(
            src,
            "/// A dense layer's packed weights and bias, the next values in the file.\n\
             fn dense(weights: &mut F32Reader, inputs: usize, outputs: usize) -> Result<Dense, i32> {{\n    \
                 let packed = weights\n        \
                     .take(Dense::packed_len(inputs, outputs))\n        \
                     .ok_or(WEIGHTS_DO_NOT_MATCH)?;\n    \
                 let bias = weights.take(outputs).ok_or(WEIGHTS_DO_NOT_MATCH)?;\n    \
                 Dense::from_packed(inputs, outputs, packed, &bias).ok_or(WEIGHTS_DO_NOT_MATCH)\n\
             }}\n"
        );
    }

    let _ = writeln!(
        src,
        "impl Kernel for Model {{\n    \
             const INPUT_LEN: usize = INPUT_LEN;\n    \
             const OUTPUT_LEN: usize = OUTPUT_LEN;\n\n    \
             fn init() -> Result<Self, i32> {{"
    );
    if !weights.is_empty() {
        let _ = writeln!(src, "        let mut weights = F32Reader::new(WEIGHTS);");
    }
    let _ = writeln!(src, "        let model = Self {{");
    if has_dense {
        let _ = writeln!(src, "            isa: Isa::detect(),");
    }
    for init in &inits {
        let _ = writeln!(src, "{init}");
    }
    if scratch_used > 0 {
        let _ = writeln!(src, "            scratch: Default::default(),");
    }
    if has_dense {
        let _ = writeln!(src, "            threads: 0,");
    }
    let _ = writeln!(src, "        }};");
    if !weights.is_empty() {
        let _ = writeln!(
            src,
            "        if !weights.is_empty() {{\n            \
                 return Err(WEIGHTS_DO_NOT_MATCH);\n        \
             }}"
        );
    }
    let _ = writeln!(src, "        Ok(model)\n    }}\n");

    let _ = writeln!(
        src,
        "    fn infer(&mut self, input: &[f32], output: &mut [f32]) {{"
    );
    if scratch_used > 0 {
        let _ = writeln!(src, "        let batch = input.len() / INPUT_LEN;");
    }
    if has_dense {
        let _ = writeln!(src, "        let threads = device::max_threads();");
    }
    let mut bound: Vec<String> = Vec::new();
    if has_dense {
        bound.push("isa".into());
    }
    for (index, step) in program.steps.iter().enumerate() {
        match step.op {
            Op::Dense { .. } => bound.push(format!("dense_{index}")),
            Op::Constant { .. } => bound.push(format!("constant_{index}")),
            _ => {}
        }
    }
    if scratch_used > 0 {
        bound.push("scratch".into());
    }
    if has_dense {
        bound.push("threads: used".into());
    }
    // rustfmt's layout: fields on one line when they fit in its struct literal width.
    match bound.join(", ") {
        fields if fields.is_empty() => {}
        fields if fields.len() <= 18 => {
            let _ = writeln!(src, "        let Self {{ {fields} }} = self;");
        }
        _ => {
            let lines: Vec<String> = bound.iter().map(|b| format!("            {b},")).collect();
            let _ = writeln!(
                src,
                "        let Self {{\n{}\n        }} = self;",
                lines.join("\n")
            );
        }
    }
    if scratch_used > 0 {
        let _ = writeln!(
            src,
            "        for buffer in scratch.iter_mut() {{\n            \
                 if buffer.len() < batch * SCRATCH_LEN {{\n                \
                     buffer.resize(batch * SCRATCH_LEN, 0.0);\n            \
                 }}\n        \
             }}"
        );
        let names: Vec<&str> = (0..scratch_used).map(scratch_name).collect();
        let _ = writeln!(src, "        let [{}] = scratch;", names.join(", "));
    }
    if has_dense {
        let _ = writeln!(src, "        *used = 1;");
    }
    for (step, plan) in program.steps.iter().zip(&planned) {
        src.push_str(&wrap(
            &format!("{}: {}", nodes(step), shapes(step)),
            "        // ",
        ));
        if let Some(copy) = &plan.copy_first {
            let _ = writeln!(src, "        {copy}");
        }
        let _ = writeln!(src, "        {}", plan.call);
    }
    if !program.trailing.is_empty() {
        let names: Vec<String> = program.trailing.iter().map(ToString::to_string).collect();
        src.push_str(&wrap(
            &format!("{}: computes nothing", names.join(", ")),
            "        // ",
        ));
    }
    match (&final_copy, program.steps.is_empty()) {
        (_, true) => {
            let _ = writeln!(src, "        output.copy_from_slice(input);");
        }
        (Some(copy), false) => {
            let _ = writeln!(src, "        {copy}");
        }
        (None, false) => {}
    }
    let _ = writeln!(src, "    }}");
    if has_dense {
        let _ = writeln!(
            src,
            "\n    fn last_call_threads(&self) -> usize {{\n        self.threads\n    }}"
        );
    }
    let _ = writeln!(src, "}}\n\nexport_kernel!(Model);");
    Generated {
        lib_rs: src,
        weights,
    }
}

/// `text` as lines of at most 100 columns, each starting with `prefix` (a comment's).
fn wrap(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(prefix);
    for word in text.split(' ') {
        if line.len() > prefix.len() && line.len() + 1 + word.len() > 100 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(prefix);
        }
        if line.len() > prefix.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

fn uses(program: &Program, test: impl Fn(&Op) -> bool) -> bool {
    program.steps.iter().any(|s| test(&s.op))
}

fn push_f32s(bytes: &mut Vec<u8>, values: &[f32]) {
    bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
}

fn nodes(step: &Step) -> String {
    step.nodes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn shapes(step: &Step) -> String {
    let dims = |shape: &[usize]| {
        let mut all = vec!["N".to_string()];
        all.extend(shape.iter().map(usize::to_string));
        format!("[{}]", all.join(", "))
    };
    if step.input_shape == step.output_shape {
        dims(&step.output_shape)
    } else {
        format!("{} → {}", dims(&step.input_shape), dims(&step.output_shape))
    }
}

/// A float as a Rust literal.
fn literal(value: f32) -> String {
    if value == f32::INFINITY {
        "f32::INFINITY".into()
    } else if value == f32::NEG_INFINITY {
        "f32::NEG_INFINITY".into()
    } else if value.is_nan() {
        "f32::NAN".into()
    } else {
        format!("{value:?}")
    }
}

fn call(index: usize, step: &Step, source: String, target: String) -> String {
    match &step.op {
        Op::Dense { relu, .. } => {
            let one_line = format!(
                "*used = (*used).max(dense_{index}.forward(*isa, {source}, {target}, {relu}, threads));"
            );
            // Eight columns of indentation; past 100, rustfmt's overflow layout.
            if one_line.len() + 8 <= 100 {
                one_line
            } else {
                format!(
                    "*used = (*used).max(dense_{index}.forward(\n            *isa,\n            \
                     {source},\n            {target},\n            {relu},\n            threads,\n        ));"
                )
            }
        }
        Op::Relu => format!("cpu::relu({target});"),
        Op::Sigmoid => format!("cpu::sigmoid({target});"),
        Op::Tanh => format!("cpu::tanh({target});"),
        Op::LeakyRelu { alpha } => format!("cpu::leaky_relu({target}, {});", literal(*alpha)),
        Op::HardSigmoid { alpha, beta } => format!(
            "cpu::hard_sigmoid({target}, {}, {});",
            literal(*alpha),
            literal(*beta)
        ),
        Op::Clip { low, high } => {
            format!(
                "cpu::clip({target}, {}, {});",
                literal(*low),
                literal(*high)
            )
        }
        Op::Softmax { width } => format!("cpu::softmax({target}, {width});"),
        Op::LogSoftmax { width } => format!("cpu::log_softmax({target}, {width});"),
        Op::Normalize { width, norm } => format!(
            "cpu::normalize({target}, {width}, Norm::{});",
            match norm {
                Norm::Max => "Max",
                Norm::L1 => "L1",
                Norm::L2 => "L2",
            }
        ),
        Op::Constant { op, .. } => format!(
            "cpu::with_constant({target}, constant_{index}, Binary::{});",
            binary_name(*op)
        ),
    }
}

fn binary_name(op: Binary) -> &'static str {
    match op {
        Binary::Add => "Add",
        Binary::Sub => "Sub",
        Binary::SubFrom => "SubFrom",
        Binary::Mul => "Mul",
        Binary::Div => "Div",
        Binary::DivInto => "DivInto",
        Binary::Max => "Max",
        Binary::Min => "Min",
    }
}
