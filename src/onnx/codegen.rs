//! Rust from a lowered model: the `src/lib.rs` of a kernel that runs the graph as calls into the
//! helper crate, and the weights file it embeds, packed for the helper's GEMM.
//!
//! The output depends on the program alone (no time, no path, no hash map order), so the same
//! model generates the same bytes.

use super::lower::{Op, Program, Step};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write;
use wasmpack_infer_kernel::conv::{Conv, Window};
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

/// How `model/weights.bin` stores the dense layers' and convolutions' weights (biases and other
/// constants are always f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightStorage {
    /// Exactly the model's values.
    #[default]
    F32,
    /// Half the bytes: each weight rounded to 11 significant bits, which moves outputs by about
    /// 1e-3 of their size.
    F16,
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

fn scratch_name(index: usize) -> String {
    match u8::try_from(index) {
        Ok(letter @ 0..26) => char::from(b'a' + letter).to_string(),
        _ => format!("s{index}"),
    }
}

/// One step's code.
struct Planned {
    call: String,
    /// A copy that must run before the call (a step that changes its input in place, when that
    /// tensor is still read later or is the graph input).
    copy_first: Option<String>,
}

/// Where every tensor lives and each step's code: tensors share a handful of scratch buffers,
/// each reused once nothing reads what it held, steps that change their input do so in place
/// when nothing reads it later, and the steps that end in the output write straight into it.
struct Plan {
    steps: Vec<Planned>,
    scratch_used: usize,
    /// Values per sample of the widest tensor in scratch.
    scratch_len: usize,
    final_copy: Option<String>,
}

fn plan(program: &Program) -> Plan {
    // A tensor the graph output reads is never done with.
    let mut last_use: HashMap<usize, usize> = HashMap::from([(program.result, usize::MAX)]);
    let mut producer: HashMap<usize, usize> = HashMap::new();
    let mut len: HashMap<usize, usize> = HashMap::from([(0, program.input.shape.iter().product())]);
    for (index, step) in program.steps.iter().enumerate() {
        for &input in &step.inputs {
            let last = last_use.entry(input).or_insert(index);
            *last = (*last).max(index);
        }
        producer.insert(step.output, index);
        len.insert(step.output, step.output_shape.iter().product());
    }
    // Its first input, which an in-place step may write over: when nothing reads it later.
    let reusable = |index: usize, step: &Step| {
        let first = step.inputs[0];
        !step.op.out_of_place()
            && first != 0
            && last_use[&first] == index
            && !step.inputs[1..].contains(&first)
    };
    let mut on_output: HashSet<usize> = HashSet::new();
    if program.result != 0 {
        let mut tensor = program.result;
        loop {
            on_output.insert(tensor);
            let index = producer[&tensor];
            let step = &program.steps[index];
            if !reusable(index, step) {
                break;
            }
            tensor = step.inputs[0];
        }
    }
    let mut places: HashMap<usize, Place> = HashMap::from([(0, Place::Input)]);
    let mut free: BTreeSet<usize> = BTreeSet::new();
    let (mut scratch_used, mut scratch_len) = (0, 0);
    let mut steps = Vec::new();
    for (index, step) in program.steps.iter().enumerate() {
        let len_out = len[&step.output];
        let sources: Vec<String> = step
            .inputs
            .iter()
            .map(|input| places[input].read(len[input]))
            .collect();
        let first = places[&step.inputs[0]];
        let target = if on_output.contains(&step.output) {
            Place::Output
        } else if reusable(index, step) {
            first
        } else if let Some(buffer) = free.pop_first() {
            Place::Scratch(buffer)
        } else {
            scratch_used += 1;
            Place::Scratch(scratch_used - 1)
        };
        if let Place::Scratch(_) = target {
            scratch_len = scratch_len.max(len_out);
        }
        let copy_first = (!step.op.out_of_place() && target != first).then(|| {
            let into = match target {
                Place::Scratch(buffer) => format!("{}[..batch * {len_out}]", scratch_name(buffer)),
                _ => "output".into(),
            };
            format!("{into}.copy_from_slice({});", sources[0])
        });
        let (call_sources, call_target) = if step.op.out_of_place() {
            (sources.clone(), target.write(len_out))
        } else {
            (sources[1..].to_vec(), target.write(len_out))
        };
        steps.push(Planned {
            call: call(index, step, &call_sources, call_target),
            copy_first,
        });
        places.insert(step.output, target);
        for input in &step.inputs {
            if let Place::Scratch(buffer) = places[input]
                && last_use[input] == index
                && target != Place::Scratch(buffer)
            {
                free.insert(buffer);
            }
        }
    }
    let output_len: usize = program.output.shape.iter().product();
    let result = places[&program.result];
    let final_copy = (result != Place::Output)
        .then(|| format!("output.copy_from_slice({});", result.read(output_len)));
    Plan {
        steps,
        scratch_used,
        scratch_len,
        final_copy,
    }
}

pub fn generate(program: &Program, provenance: &Provenance, storage: WeightStorage) -> Generated {
    let input_len: usize = program.input.shape.iter().product();
    let output_len: usize = program.output.shape.iter().product();
    let Plan {
        steps: planned,
        scratch_used,
        scratch_len,
        final_copy,
    } = plan(program);
    let has_dense = uses(program, |op| matches!(op, Op::Dense { .. }));
    let has_conv = uses(program, |op| matches!(op, Op::Conv { .. }));
    let has_pool = uses(program, |op| {
        matches!(op, Op::MaxPool { .. } | Op::AveragePool { .. })
    });
    // Both run on the helper's GEMM, which picks its instructions and threads.
    let has_gemm = has_dense || has_conv;

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
                push_weights(&mut weights, dense.packed(), storage);
                push_f32s(&mut weights, bias);
                fields.push(format!(
                    "{}    dense_{index}: Dense,",
                    wrap(&nodes(step), "    /// ")
                ));
                inits.push(format!(
                    "            dense_{index}: dense(&mut weights, {inputs}, {outputs})?,"
                ));
            }
            Op::Conv {
                window,
                groups,
                weights: w,
                bias,
                ..
            } => {
                let conv = Conv::new(*window, *groups, w, bias)
                    .expect("the lowering checked the convolution's shape");
                push_weights(&mut weights, &conv.packed(), storage);
                push_f32s(&mut weights, bias);
                fields.push(format!(
                    "{}    conv_{index}: Conv,",
                    wrap(&nodes(step), "    /// ")
                ));
                inits.push(format!(
                    "            conv_{index}: conv(&mut weights, WINDOW_{index}, {groups}, {})?,",
                    bias.len()
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
    let weight_bytes = weights.len();

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
         `model/weights.bin`, packed for its GEMM{}, and no interpreter is linked. Regenerate \
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
        },
        match storage {
            WeightStorage::F32 => "",
            WeightStorage::F16 => {
                " (the layers' weights as f16: half the bytes, each rounded to 11 significant \
                 bits, which moves outputs by about 1e-3 of their size)"
            }
        }
    );
    src.push_str(&wrap(&title, "//! "));
    src.push_str("//!\n");
    src.push_str(&wrap(&about, "//! "));
    src.push('\n');
    let mut imports = Vec::new();
    let conv_items: Vec<&str> = [
        (has_pool, "self"),
        (has_conv, "Conv"),
        (has_conv || has_pool, "Window"),
    ]
    .into_iter()
    .filter_map(|(used, item)| used.then_some(item))
    .collect();
    if !conv_items.is_empty() {
        imports.push(format!(
            "use wasmpack_infer_kernel::conv::{{{}}};",
            conv_items.join(", ")
        ));
    }
    let cpu_items: Vec<&str> = [
        (
            uses(program, |op| {
                matches!(op, Op::Constant { .. } | Op::Elementwise { .. })
            }),
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
    let cpu_module = uses(program, |op| {
        !op.out_of_place()
            || matches!(
                op,
                Op::Transpose { .. } | Op::Pad { .. } | Op::Gather { .. } | Op::Concat { .. }
            )
    });
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
    if has_gemm {
        imports.push(format!(
            "use wasmpack_infer_kernel::gemm::{{self, {}Isa}};",
            if has_dense { "Dense, " } else { "" }
        ));
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
            "/// Bytes of `model/weights.bin`: every step's constants, in the order `init` reads them.\n\
             const WEIGHT_BYTES: usize = {weight_bytes};\n\
             const WEIGHTS: &[u8] = include_bytes!(\"../model/weights.bin\");\n\
             /// `wpi_init`'s code when the weights are not the ones this code was generated for.\n\
             const WEIGHTS_DO_NOT_MATCH: i32 = 2;\n\
             \n\
             const _: () = assert!(\n    \
                 WEIGHTS.len() == WEIGHT_BYTES,\n    \
                 \"model/weights.bin is not the file this code was generated with: regenerate\"\n\
             );"
        );
    }
    if has_gemm {
        let _ = writeln!(
            src,
            "const _: () = assert!(\n    \
                 gemm::PACKED_LAYOUT == {PACKED_LAYOUT},\n    \
                 \"the helper crate packs weights another way than this code was generated for: \
                 regenerate\"\n\
             );"
        );
    }
    for (index, step) in program.steps.iter().enumerate() {
        if let Op::Gather { indices, .. } = &step.op {
            let _ = writeln!(
                src,
                "\n{}{}",
                wrap(&nodes(step), "/// "),
                indices_constant(index, indices)
            );
        }
        if let Some(window) = window(&step.op) {
            let _ = writeln!(
                src,
                "\n{}const WINDOW_{index}: Window = {};",
                wrap(&nodes(step), "/// "),
                window_literal(window)
            );
        }
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
    if has_gemm {
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
    if has_gemm {
        let _ = writeln!(
            src,
            "    /// CPU threads the last call ran on.\n    threads: usize,"
        );
    }
    let _ = writeln!(src, "}}\n");

    let take = match storage {
        WeightStorage::F32 => "take",
        WeightStorage::F16 => "take_f16",
    };
    if has_dense {
        let _ = writeln!(
            src,
            "/// A dense layer's packed weights and bias, the next values in the file.\n\
             fn dense(weights: &mut F32Reader, inputs: usize, outputs: usize) -> Result<Dense, i32> {{\n    \
                 let packed = weights\n        \
                     .{take}(Dense::packed_len(inputs, outputs))\n        \
                     .ok_or(WEIGHTS_DO_NOT_MATCH)?;\n    \
                 let bias = weights.take(outputs).ok_or(WEIGHTS_DO_NOT_MATCH)?;\n    \
                 Dense::from_packed(inputs, outputs, packed, &bias).ok_or(WEIGHTS_DO_NOT_MATCH)\n\
             }}\n"
        );
    }
    if has_conv {
        let _ = writeln!(
            src,
            "/// A convolution's packed weights and bias, the next values in the file.\n\
             fn conv(\n    \
                 weights: &mut F32Reader,\n    \
                 window: Window,\n    \
                 groups: usize,\n    \
                 out_channels: usize,\n\
             ) -> Result<Conv, i32> {{\n    \
                 let packed = weights\n        \
                     .{take}(Conv::packed_len(&window, groups, out_channels))\n        \
                     .ok_or(WEIGHTS_DO_NOT_MATCH)?;\n    \
                 let bias = weights.take(out_channels).ok_or(WEIGHTS_DO_NOT_MATCH)?;\n    \
                 Conv::from_packed(window, groups, &packed, &bias).ok_or(WEIGHTS_DO_NOT_MATCH)\n\
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
    if has_gemm {
        let _ = writeln!(src, "            isa: Isa::detect(),");
    }
    for init in &inits {
        let _ = writeln!(src, "{init}");
    }
    if scratch_used > 0 {
        let _ = writeln!(src, "            scratch: Default::default(),");
    }
    if has_gemm {
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
    if has_gemm {
        let _ = writeln!(src, "        let threads = device::max_threads();");
    }
    let mut bound: Vec<String> = Vec::new();
    if has_gemm {
        bound.push("isa".into());
    }
    for (index, step) in program.steps.iter().enumerate() {
        match step.op {
            Op::Dense { .. } => bound.push(format!("dense_{index}")),
            Op::Conv { .. } => bound.push(format!("conv_{index}")),
            Op::Constant { .. } => bound.push(format!("constant_{index}")),
            _ => {}
        }
    }
    if scratch_used > 0 {
        bound.push("scratch".into());
    }
    if has_gemm {
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
        let names: Vec<String> = (0..scratch_used).map(scratch_name).collect();
        let _ = writeln!(src, "        let [{}] = scratch;", names.join(", "));
    }
    if has_gemm {
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
    if has_gemm {
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
    // A shape (`[N, 12, 8, 8]`) stays on one line.
    let mut words: Vec<String> = Vec::new();
    let mut open = false;
    for word in text.split(' ') {
        match words.last_mut() {
            Some(last) if open => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
        open = words
            .last()
            .is_some_and(|w| w.matches('[').count() > w.matches(']').count());
    }
    for word in &words {
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

/// The window a step slides, if any.
fn window(op: &Op) -> Option<&Window> {
    match op {
        Op::Conv { window, .. } | Op::MaxPool { window } | Op::AveragePool { window, .. } => {
            Some(window)
        }
        _ => None,
    }
}

/// A `Window` as a Rust constant, in rustfmt's layout.
fn window_literal(w: &Window) -> String {
    let pair = |v: [usize; 2]| format!("[{}, {}]", v[0], v[1]);
    let p = w.pads;
    format!(
        "Window {{\n    channels: {},\n    input: {},\n    kernel: {},\n    strides: {},\n    \
         dilations: {},\n    pads: [{}, {}, {}, {}],\n    output: {},\n}}",
        w.channels,
        pair(w.input),
        pair(w.kernel),
        pair(w.strides),
        pair(w.dilations),
        p[0],
        p[1],
        p[2],
        p[3],
        pair(w.output)
    )
}

fn uses(program: &Program, test: impl Fn(&Op) -> bool) -> bool {
    program.steps.iter().any(|s| test(&s.op))
}

/// A layer's packed weights, stored as `storage` says.
fn push_weights(bytes: &mut Vec<u8>, values: &[f32], storage: WeightStorage) {
    match storage {
        WeightStorage::F32 => push_f32s(bytes, values),
        WeightStorage::F16 => bytes.extend(wasmpack_infer_kernel::cpu::f16_le_bytes(values)),
    }
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

/// A step's call: `sources` are what it reads (an in-place step's first input is `target`).
fn call(index: usize, step: &Step, sources: &[String], target: String) -> String {
    let source = sources.first().cloned().unwrap_or_default();
    let (function, args): (&str, Vec<String>) = match &step.op {
        Op::Dense { relu, .. } => {
            return gemm_call(&format!("dense_{index}"), &source, &target, *relu);
        }
        Op::Conv { relu, .. } => {
            return gemm_call(&format!("conv_{index}"), &source, &target, *relu);
        }
        Op::MaxPool { .. } => (
            "conv::max_pool",
            vec![format!("&WINDOW_{index}"), source, target],
        ),
        Op::AveragePool { count_padding, .. } => (
            "conv::average_pool",
            vec![
                format!("&WINDOW_{index}"),
                source,
                target,
                count_padding.to_string(),
            ],
        ),
        Op::Transpose { shape, perm } => (
            "cpu::transpose",
            vec![source, target, usize_list(shape), usize_list(perm)],
        ),
        Op::Gather {
            axis_len, inner, ..
        } => (
            "cpu::gather",
            vec![
                source,
                target,
                axis_len.to_string(),
                inner.to_string(),
                format!("INDICES_{index}"),
            ],
        ),
        Op::Pad {
            shape,
            begin,
            end,
            value,
        } => (
            "cpu::pad",
            vec![
                source,
                target,
                usize_list(shape),
                usize_list(begin),
                usize_list(end),
                literal(*value),
            ],
        ),
        Op::Elementwise { op, repeat } => (
            "cpu::elementwise",
            vec![
                target,
                source,
                repeat.to_string(),
                format!("Binary::{}", binary_name(*op)),
            ],
        ),
        Op::Concat { blocks } => {
            let list = |items: &[String]| format!("&[{}]", items.join(", "));
            let blocks: Vec<String> = blocks.iter().map(usize::to_string).collect();
            ("cpu::concat", vec![list(sources), list(&blocks), target])
        }
        Op::Relu => ("cpu::relu", vec![target]),
        Op::Sigmoid => ("cpu::sigmoid", vec![target]),
        Op::Tanh => ("cpu::tanh", vec![target]),
        Op::LeakyRelu { alpha } => ("cpu::leaky_relu", vec![target, literal(*alpha)]),
        Op::HardSigmoid { alpha, beta } => (
            "cpu::hard_sigmoid",
            vec![target, literal(*alpha), literal(*beta)],
        ),
        Op::Clip { low, high } => ("cpu::clip", vec![target, literal(*low), literal(*high)]),
        Op::Softmax { width } => ("cpu::softmax", vec![target, width.to_string()]),
        Op::LogSoftmax { width } => ("cpu::log_softmax", vec![target, width.to_string()]),
        Op::Normalize { width, norm } => (
            "cpu::normalize",
            vec![
                target,
                width.to_string(),
                format!(
                    "Norm::{}",
                    match norm {
                        Norm::Max => "Max",
                        Norm::L1 => "L1",
                        Norm::L2 => "L2",
                    }
                ),
            ],
        ),
        Op::Constant { op, .. } => (
            "cpu::with_constant",
            vec![
                target,
                format!("constant_{index}"),
                format!("Binary::{}", binary_name(*op)),
            ],
        ),
    };
    statement_call(function, &args)
}

/// `const INDICES_N: &[usize] = &[…];` in rustfmt's layout: on one line when the list fits its
/// array width (60), else filled into lines of at most 100 columns.
fn indices_constant(index: usize, indices: &[usize]) -> String {
    let items: Vec<String> = indices.iter().map(usize::to_string).collect();
    let head = format!("const INDICES_{index}: &[usize] = &[");
    let joined = items.join(", ");
    if joined.len() <= 60 && head.len() + joined.len() + 2 <= 100 {
        return format!("{head}{joined}];");
    }
    let mut lines = vec![head];
    let mut line = String::from("   ");
    for item in &items {
        if line.len() + 1 + item.len() + 1 > 100 {
            lines.push(std::mem::replace(&mut line, String::from("   ")));
        }
        line.push(' ');
        line.push_str(item);
        line.push(',');
    }
    lines.push(line);
    lines.push("];".into());
    lines.join("\n")
}

/// `&[1, 2, 3]`.
fn usize_list(values: &[usize]) -> String {
    let items: Vec<String> = values.iter().map(usize::to_string).collect();
    format!("&[{}]", items.join(", "))
}

/// `function(args);` in rustfmt's layout at eight columns of indentation: on one line when the
/// arguments fit in its call width (60) and the line in 100, else one argument a line.
fn statement_call(function: &str, args: &[String]) -> String {
    let joined = args.join(", ");
    if joined.len() <= 60 && 8 + function.len() + joined.len() + 3 <= 100 {
        format!("{function}({joined});")
    } else {
        let lines: Vec<String> = args.iter().map(|a| format!("            {a},")).collect();
        format!("{function}(\n{}\n        );", lines.join("\n"))
    }
}

/// A dense layer's or convolution's forward call, keeping the most threads any step used.
fn gemm_call(layer: &str, source: &str, target: &str, relu: bool) -> String {
    let value = format!("(*used).max({layer}.forward(*isa, {source}, {target}, {relu}, threads));");
    // rustfmt's layouts at eight columns of indentation: one line within 100 columns, else the
    // value on the next line if it fits there, else the overflow layout.
    if 8 + "*used = ".len() + value.len() <= 100 {
        format!("*used = {value}")
    } else if 12 + value.len() <= 100 {
        format!("*used =\n            {value}")
    } else {
        format!(
            "*used = (*used).max({layer}.forward(\n            *isa,\n            {source},\n            \
             {target},\n            {relu},\n            threads,\n        ));"
        )
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
