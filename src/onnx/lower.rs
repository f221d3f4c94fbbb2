//! Lowering an ONNX graph to the steps a kernel compiled ahead of time runs: the chain of nodes
//! from the graph's input to the chosen output, shapes inferred per sample (the batch axis stays
//! first and free), constants decoded, and neighbours fused (`MatMul` + `Add` + `Relu` is one
//! dense layer with its bias and activation; a `BatchNormalization` or a constant scale after a
//! dense layer is folded into its weights).
//!
//! What it cannot compile it names: every operator the code generator does not know, with its
//! nodes, or the one node whose attributes, inputs or shapes it does not support, and why.

use super::{Model, pb};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use wasmpack_infer_kernel::conv::Window;
use wasmpack_infer_kernel::cpu::{Binary, Norm};

/// The operators the code generator compiles, with what it supports of each: `(domain, op, note)`.
pub const COMPILED_OPS: &[(&str, &str, &str)] = &[
    (
        "ai.onnx",
        "Add",
        "with a constant broadcast over the sample, or of two computed tensors (one may be \
         per channel)",
    ),
    (
        "ai.onnx",
        "AveragePool",
        "1-D or 2-D, any padding (auto_pad too), ceil_mode, no dilation",
    ),
    (
        "ai.onnx",
        "BatchNormalization",
        "inference mode; folded into the dense layer or convolution before it, else a per-channel \
         scale and shift",
    ),
    ("ai.onnx", "Cast", "to float, from float"),
    ("ai.onnx", "Clip", "constant bounds"),
    (
        "ai.onnx",
        "Concat",
        "of computed tensors, along an axis after the batch",
    ),
    (
        "ai.onnx",
        "Conv",
        "1-D or 2-D, constant weights, any padding, strides, dilations and groups; a bias, \
         BatchNormalization, per-channel scale or Relu after it is folded in",
    ),
    (
        "ai.onnx",
        "Div",
        "with a constant broadcast over the sample, or of two computed tensors (one may be \
         per channel)",
    ),
    ("ai.onnx", "Dropout", "inference: passes its input on"),
    ("ai.onnx", "Flatten", "axis 1"),
    (
        "ai.onnx",
        "Gemm",
        "constant B (either layout) and C broadcast per output, transA = 0",
    ),
    (
        "ai.onnx",
        "Gather",
        "constant indices, along an axis after the batch (feature selection), or on a shape \
         (Shape → Gather → Unsqueeze → Concat → Reshape, as PyTorch exports a flatten)",
    ),
    ("ai.onnx", "GlobalAveragePool", "1-D or 2-D"),
    ("ai.onnx", "GlobalMaxPool", "1-D or 2-D"),
    ("ai.onnx", "HardSigmoid", ""),
    ("ai.onnx", "Identity", ""),
    ("ai.onnx", "LeakyRelu", ""),
    ("ai.onnx", "LogSoftmax", "over the last axis"),
    (
        "ai.onnx",
        "MatMul",
        "by a constant 2-D matrix, over the last axis",
    ),
    (
        "ai.onnx",
        "Max",
        "of the tensor and one constant, or of two computed tensors",
    ),
    (
        "ai.onnx",
        "MaxPool",
        "1-D or 2-D, any padding (auto_pad too), strides, dilations, ceil_mode; output 0 only",
    ),
    (
        "ai.onnx",
        "Min",
        "of the tensor and one constant, or of two computed tensors",
    ),
    (
        "ai.onnx",
        "Mul",
        "with a constant broadcast over the sample, or of two computed tensors (one may be \
         per channel)",
    ),
    (
        "ai.onnx",
        "Pad",
        "constant mode, pads after the batch axis; zeros before a Conv are folded into its \
         padding",
    ),
    ("ai.onnx", "Relu", ""),
    ("ai.onnx", "Reshape", "keeping the batch axis first"),
    (
        "ai.onnx",
        "Shape",
        "worked out when the crate is generated, the batch size left free; for Gather, \
         Unsqueeze, Squeeze, Concat, Cast and Reshape",
    ),
    ("ai.onnx", "Sigmoid", ""),
    ("ai.onnx", "Softmax", "over the last axis"),
    ("ai.onnx", "Squeeze", "named axes after the batch"),
    (
        "ai.onnx",
        "Sub",
        "with a constant broadcast over the sample, or of two computed tensors (one may be \
         per channel)",
    ),
    ("ai.onnx", "Tanh", ""),
    (
        "ai.onnx",
        "Transpose",
        "a permutation that keeps the batch axis first",
    ),
    ("ai.onnx", "Unsqueeze", "named axes after the batch"),
    (
        "ai.onnx.ml",
        "LinearClassifier",
        "its scores (output 1); post_transform NONE, SOFTMAX or LOGISTIC",
    ),
    ("ai.onnx.ml", "LinearRegressor", "post_transform NONE"),
    ("ai.onnx.ml", "Normalizer", "MAX, L1 or L2"),
    ("ai.onnx.ml", "Scaler", ""),
];

/// A model lowered to steps over one sample's values (the batch axis is implicit).
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub input: Port,
    pub output: Port,
    pub steps: Vec<Step>,
    /// The tensor the output is (0, the graph input, when no step computes anything).
    pub result: usize,
    /// Nodes after the last step that compute nothing (`Identity`, …), named in the comments.
    pub trailing: Vec<NodeRef>,
    /// The nodes of the graph the output does not depend on (a classifier's label, …).
    pub pruned: usize,
}

/// The graph input or output the kernel reads or writes, and one sample's shape of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    pub shape: Vec<usize>,
}

/// One call into the helper crate, and the ONNX nodes it computes.
///
/// Tensors are numbered: 0 is the graph input, and each step writes a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// In graph order; nodes that compute nothing before it (`Reshape`, `Cast`, …) included.
    pub nodes: Vec<NodeRef>,
    pub op: Op,
    /// The tensors it reads, in the operator's order.
    pub inputs: Vec<usize>,
    pub output: usize,
    /// Of its first input.
    pub input_shape: Vec<usize>,
    pub output_shape: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    pub name: String,
    pub op_type: String,
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name == self.op_type {
            write!(f, "`{}`", self.name)
        } else {
            write!(f, "`{}` ({})", self.name, self.op_type)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `y = x · W + b` over rows of `inputs` values, `W` row-major `[inputs × outputs]`, then
    /// `max(·, 0)` when `relu`.
    Dense {
        inputs: usize,
        outputs: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    },
    /// A convolution over one sample's `[channels, height, width]` (1-D: height 1), weights in
    /// ONNX's layout `[out channels, channels / groups, kernel…]`, then `max(·, 0)` when `relu`.
    Conv {
        window: Window,
        groups: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    },
    MaxPool {
        window: Window,
    },
    AveragePool {
        window: Window,
        count_padding: bool,
    },
    /// `value` around one sample of `shape`: `begin[i]` before and `end[i]` after axis `i`.
    Pad {
        shape: Vec<usize>,
        begin: Vec<usize>,
        end: Vec<usize>,
        value: f32,
    },
    /// Along one axis of `axis_len` values, each `inner` apart: the ones at `indices`.
    Gather {
        axis_len: usize,
        inner: usize,
        indices: Vec<usize>,
    },
    /// Output axis `i` of a sample is its input axis `perm[i]`.
    Transpose {
        shape: Vec<usize>,
        perm: Vec<usize>,
    },
    Relu,
    LeakyRelu {
        alpha: f32,
    },
    Sigmoid,
    Tanh,
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    Clip {
        low: f32,
        high: f32,
    },
    Softmax {
        width: usize,
    },
    LogSoftmax {
        width: usize,
    },
    Normalize {
        width: usize,
        norm: Norm,
    },
    /// An elementwise operation with a constant that repeats every `values.len()` values.
    Constant {
        op: Binary,
        values: Vec<f32>,
    },
    /// An elementwise operation between two computed tensors (a residual connection, a gate),
    /// changing the first; each value of the second applies to `repeat` neighbours of the first
    /// (1 when their shapes agree; `height × width` for a per-channel gate).
    Elementwise {
        op: Binary,
        repeat: usize,
    },
    /// The inputs side by side along one axis: per index of the axes before it, `blocks[i]`
    /// values of input `i`.
    Concat {
        blocks: Vec<usize>,
    },
}

impl Op {
    /// Whether it writes a new buffer rather than changing its input in place.
    pub fn out_of_place(&self) -> bool {
        matches!(
            self,
            Op::Dense { .. }
                | Op::Conv { .. }
                | Op::MaxPool { .. }
                | Op::AveragePool { .. }
                | Op::Transpose { .. }
                | Op::Pad { .. }
                | Op::Gather { .. }
                | Op::Concat { .. }
        )
    }
}

/// Why a model cannot be compiled ahead of time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCompiled {
    /// Operators the code generator does not know: `domain op` → the nodes that use them.
    Operators(BTreeMap<String, Vec<String>>),
    /// A node it knows, used in a way it does not support.
    Node { node: NodeRef, why: String },
    /// The graph's shape: not a chain from the input to the output, a value with no producer, …
    Graph(String),
}

impl fmt::Display for NotCompiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotCompiled::Operators(operators) => {
                let listed: Vec<String> = operators
                    .iter()
                    .map(|(op, nodes)| format!("`{op}` (node {})", nodes.join(", ")))
                    .collect();
                write!(
                    f,
                    "the code generator does not compile operator{} {}",
                    if listed.len() == 1 { "" } else { "s" },
                    listed.join(", ")
                )
            }
            NotCompiled::Node { node, why } => write!(f, "node {node}: {why}"),
            NotCompiled::Graph(why) => f.write_str(why),
        }
    }
}

/// A decoded constant tensor.
#[derive(Debug, Clone)]
struct Const {
    dims: Vec<usize>,
    values: Values,
}

#[derive(Debug, Clone)]
enum Values {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Const {
    fn floats(&self) -> Option<&[f32]> {
        match &self.values {
            Values::F32(v) => Some(v),
            Values::I64(_) => None,
        }
    }

    fn ints(&self) -> Option<&[i64]> {
        match &self.values {
            Values::I64(v) => Some(v),
            Values::F32(_) => None,
        }
    }
}

impl Model {
    /// Lowers the graph from its input (one sample of `input_shape`) to output `output`.
    pub fn lower(&self, output: &str, input_shape: &[usize]) -> Result<Program, NotCompiled> {
        let graph = self
            .proto
            .graph
            .as_ref()
            .ok_or_else(|| NotCompiled::Graph("the model has no graph".into()))?;
        let opset = self
            .proto
            .opset_import
            .iter()
            .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
            .map_or(1, |o| o.version());
        let [input] = self.summary.inputs.as_slice() else {
            return Err(NotCompiled::Graph(format!(
                "the graph has {} inputs; a kernel takes one",
                self.summary.inputs.len()
            )));
        };
        let mut constants: HashMap<&str, Const> = HashMap::new();
        for tensor in &graph.initializer {
            let decoded = decode(tensor).map_err(|why| {
                NotCompiled::Graph(format!("initializer `{}`: {why}", tensor.name()))
            })?;
            constants.insert(tensor.name(), decoded);
        }
        for node in graph.node.iter().filter(|n| n.op_type() == "Constant") {
            let value = constant_node(node).map_err(|why| NotCompiled::Node {
                node: node_ref(node, 0),
                why,
            })?;
            if let Some(name) = node.output.first() {
                constants.insert(name, value);
            }
        }
        let order = needed_nodes(graph, &input.name, output, &constants)?;
        let unknown: BTreeMap<String, Vec<String>> =
            order.iter().fold(BTreeMap::new(), |mut unknown, &index| {
                let node = &graph.node[index];
                if !is_compiled(node) {
                    unknown
                        .entry(qualified_op(node))
                        .or_default()
                        .push(node_ref(node, index).name);
                }
                unknown
            });
        if !unknown.is_empty() {
            return Err(NotCompiled::Operators(unknown));
        }
        let mut consumers: HashMap<String, usize> = HashMap::from([(output.to_string(), 1)]);
        for &index in &order {
            for name in &graph.node[index].input {
                if !name.is_empty() && !constants.contains_key(name.as_str()) {
                    *consumers.entry(name.clone()).or_default() += 1;
                }
            }
        }
        let mut lowering = Lowering {
            constants: &constants,
            opset,
            values: HashMap::from([(
                input.name.clone(),
                Tensor {
                    id: 0,
                    shape: input_shape.to_vec(),
                },
            )]),
            shapes: HashMap::new(),
            uses: vec![consumers.get(&input.name).copied().unwrap_or(0)],
            consumers,
            inputs: Vec::new(),
            shape: Vec::new(),
            steps: Vec::new(),
            pending: Vec::new(),
        };
        for &index in &order {
            let node = &graph.node[index];
            lowering
                .node(node, node_ref(node, index))
                .map_err(|why| NotCompiled::Node {
                    node: node_ref(node, index),
                    why,
                })?;
        }
        let used: BTreeSet<usize> = order.iter().copied().collect();
        let pruned = graph
            .node
            .iter()
            .enumerate()
            .filter(|(index, node)| !used.contains(index) && node.op_type() != "Constant")
            .count();
        let result = lowering.values[output].clone();
        Ok(Program {
            input: Port {
                name: input.name.clone(),
                shape: input_shape.to_vec(),
            },
            output: Port {
                name: output.to_string(),
                shape: result.shape,
            },
            steps: lowering.steps,
            result: result.id,
            trailing: lowering.pending.into_iter().map(|(node, _)| node).collect(),
            pruned,
        })
    }
}

fn node_ref(node: &pb::NodeProto, index: usize) -> NodeRef {
    NodeRef {
        name: match node.name() {
            "" => format!("#{index}"),
            name => name.to_string(),
        },
        op_type: node.op_type().to_string(),
    }
}

fn domain(node: &pb::NodeProto) -> &str {
    match node.domain() {
        "" => "ai.onnx",
        domain => domain,
    }
}

fn qualified_op(node: &pb::NodeProto) -> String {
    match domain(node) {
        "ai.onnx" => node.op_type().to_string(),
        other => format!("{other}.{}", node.op_type()),
    }
}

fn is_compiled(node: &pb::NodeProto) -> bool {
    COMPILED_OPS
        .iter()
        .any(|&(d, op, _)| d == domain(node) && op == node.op_type())
}

/// The nodes `output` depends on, each after every node it reads from.
fn needed_nodes(
    graph: &pb::GraphProto,
    input: &str,
    output: &str,
    constants: &HashMap<&str, Const>,
) -> Result<Vec<usize>, NotCompiled> {
    let producers: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(index, node)| node.output.iter().map(move |o| (o.as_str(), index)))
        .collect();
    let producer = |value: &str| {
        producers.get(value).copied().ok_or_else(|| {
            NotCompiled::Graph(if constants.contains_key(value) {
                format!("`{value}` is a constant, not computed from the input")
            } else {
                format!("nothing in the graph computes `{value}`")
            })
        })
    };
    let mut order = Vec::new();
    if output == input {
        return Ok(order);
    }
    // Depth first, without recursion (graphs can be deep): a node is done once its inputs are.
    let mut done: HashMap<usize, bool> = HashMap::new();
    let first = producer(output)?;
    done.insert(first, false);
    let mut stack = vec![(first, 0usize)];
    while let Some((index, slot)) = stack.last_mut() {
        let node = &graph.node[*index];
        if let Some(name) = node.input.get(*slot) {
            *slot += 1;
            if name.is_empty() || name == input || constants.contains_key(name.as_str()) {
                continue;
            }
            let from = producer(name)?;
            match done.get(&from) {
                Some(true) => {}
                Some(false) => return Err(NotCompiled::Graph("the graph has a cycle".into())),
                None => {
                    done.insert(from, false);
                    stack.push((from, 0));
                }
            }
            continue;
        }
        let computed = node
            .input
            .iter()
            .any(|name| !name.is_empty() && !constants.contains_key(name.as_str()));
        if !computed {
            return Err(NotCompiled::Node {
                node: node_ref(node, *index),
                why: "computes from constants alone (fold it into an initializer)".into(),
            });
        }
        done.insert(*index, true);
        order.push(*index);
        stack.pop();
    }
    Ok(order)
}

fn decode(tensor: &pb::TensorProto) -> Result<Const, String> {
    use pb::tensor_proto::{DataLocation, DataType};
    if tensor.data_location() == DataLocation::External {
        return Err(
            "its data is in an external file: save the model with every tensor inside it".into(),
        );
    }
    let dims = tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("a negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    let count: usize = dims.iter().product();
    let raw = tensor.raw_data.as_deref();
    let values = match DataType::try_from(tensor.data_type()) {
        Ok(DataType::Float) => Values::F32(match raw {
            Some(raw) => wasmpack_infer_kernel::cpu::f32s_from_le_bytes(raw),
            None => tensor.float_data.clone(),
        }),
        Ok(DataType::Double) => Values::F32(match raw {
            Some(raw) => raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            None => tensor.double_data.iter().map(|&v| v as f32).collect(),
        }),
        Ok(DataType::Int64) => Values::I64(match raw {
            Some(raw) => raw
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
            None => tensor.int64_data.clone(),
        }),
        Ok(DataType::Int32) => Values::I64(match raw {
            Some(raw) => raw
                .chunks_exact(4)
                .map(|b| i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes"))))
                .collect(),
            None => tensor.int32_data.iter().map(|&v| i64::from(v)).collect(),
        }),
        Ok(other) => return Err(format!("{} values are not compiled", other.as_str_name())),
        Err(_) => return Err(format!("unknown element type {}", tensor.data_type())),
    };
    let len = match &values {
        Values::F32(v) => v.len(),
        Values::I64(v) => v.len(),
    };
    if len != count {
        return Err(format!("{len} values for dimensions {dims:?}"));
    }
    Ok(Const { dims, values })
}

fn constant_node(node: &pb::NodeProto) -> Result<Const, String> {
    let attribute = node
        .attribute
        .first()
        .ok_or_else(|| "a Constant node without a value".to_string())?;
    match attribute.name() {
        "value" => decode(attribute.t.as_ref().ok_or("`value` holds no tensor")?),
        "value_float" => Ok(Const {
            dims: vec![],
            values: Values::F32(vec![attribute.f()]),
        }),
        "value_floats" => Ok(Const {
            dims: vec![attribute.floats.len()],
            values: Values::F32(attribute.floats.clone()),
        }),
        "value_int" => Ok(Const {
            dims: vec![],
            values: Values::I64(vec![attribute.i()]),
        }),
        "value_ints" => Ok(Const {
            dims: vec![attribute.ints.len()],
            values: Values::I64(attribute.ints.clone()),
        }),
        other => Err(format!("a Constant given as `{other}` is not compiled")),
    }
}

fn attribute<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name() == name)
}

fn float_attr(node: &pb::NodeProto, name: &str, default: f32) -> f32 {
    attribute(node, name).map_or(default, |a| a.f())
}

fn int_attr(node: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attribute(node, name).map_or(default, |a| a.i())
}

fn string_attr(node: &pb::NodeProto, name: &str, default: &str) -> String {
    attribute(node, name).map_or_else(
        || default.to_string(),
        |a| String::from_utf8_lossy(a.s()).into_owned(),
    )
}

/// One entry of a shape worked out at generation time: the batch size is known only at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShapeEntry {
    Batch,
    Fixed(i64),
}

/// A value computed from a tensor's shape alone (`Shape`, and `Gather`, `Concat`, … of it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShapeValue {
    entries: Vec<ShapeEntry>,
    /// A rank-0 value (a `Gather` of one index), as opposed to a 1-D one of one entry.
    scalar: bool,
}

/// A computed ONNX value: the tensor that holds it and one sample's shape (a `Reshape` gives the
/// same tensor another shape).
#[derive(Debug, Clone)]
struct Tensor {
    id: usize,
    shape: Vec<usize>,
}

/// The walk through the graph: where each value is, the steps, and the nodes that computed
/// nothing since the last step (named in the next one's comment).
struct Lowering<'a> {
    constants: &'a HashMap<&'a str, Const>,
    opset: i64,
    values: HashMap<String, Tensor>,
    /// Values computed from shapes alone, folded as the crate is generated.
    shapes: HashMap<String, ShapeValue>,
    /// Per tensor, the reads of it still to come (the graph output counts as one): a step may
    /// be fused with the next only when nothing else reads what it wrote.
    uses: Vec<usize>,
    /// Per ONNX value, the nodes that read it (and 1 for the graph output).
    consumers: HashMap<String, usize>,
    /// The tensors the node being lowered reads (then, once it pushed a step, that step's
    /// output), and the shape of the first.
    inputs: Vec<usize>,
    shape: Vec<usize>,
    steps: Vec<Step>,
    /// With the tensor each views, or `None` for shape arithmetic (named by the next step).
    pending: Vec<(NodeRef, Option<usize>)>,
}

impl Lowering<'_> {
    fn constant(&self, node: &pb::NodeProto, slot: usize) -> Option<&Const> {
        node.input
            .get(slot)
            .filter(|name| !name.is_empty())
            .and_then(|name| self.constants.get(name.as_str()))
    }

    fn float_constant(&self, node: &pb::NodeProto, slot: usize) -> Result<&Const, String> {
        let value = self
            .constant(node, slot)
            .ok_or_else(|| format!("input {slot} must be a constant"))?;
        value
            .floats()
            .map(|_| value)
            .ok_or_else(|| format!("input {slot} (`{}`) must hold floats", node.input[slot]))
    }

    fn push(&mut self, node: NodeRef, op: Op, output_shape: Vec<usize>) {
        // The nodes that computed nothing on the way to this step's inputs, not other branches'.
        let (nodes, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(_, tensor)| tensor.is_none_or(|id| self.inputs.contains(&id)));
        self.pending = others;
        let mut nodes: Vec<NodeRef> = nodes.into_iter().map(|(node, _)| node).collect();
        nodes.push(node);
        let input_shape = std::mem::replace(&mut self.shape, output_shape.clone());
        let follows_alone = match self.inputs[..] {
            [id] => self.uses[id] == 0 && self.steps.last().is_some_and(|s| s.output == id),
            _ => false,
        };
        if follows_alone && self.fuse(&nodes, &op) {
            return;
        }
        let output = self.uses.len();
        self.uses.push(0);
        self.steps.push(Step {
            nodes,
            op,
            inputs: std::mem::replace(&mut self.inputs, vec![output]),
            output,
            input_shape,
            output_shape,
        });
    }

    /// Folds `op` into the dense layer or convolution it follows when that computes the same: a
    /// bias added or subtracted, a scale per output (before any activation), a ReLU.
    fn fuse(&mut self, nodes: &[NodeRef], op: &Op) -> bool {
        let Some(Step {
            op: last,
            nodes: fused,
            ..
        }) = self.steps.last_mut()
        else {
            return false;
        };
        // Dense weights are `[inputs × outputs]` (an output's weights are a column) over rows
        // of outputs; a convolution's are `[outputs × …]` (a row each) over channel planes.
        let (weights, bias, relu, positions) = match last {
            Op::Dense {
                weights,
                bias,
                relu,
                ..
            } => (weights, bias, relu, None),
            Op::Conv {
                window,
                weights,
                bias,
                relu,
                ..
            } => (weights, bias, relu, Some(window.positions())),
            _ => return false,
        };
        let outputs = bias.len();
        let per_output = |values: &[f32]| match positions {
            None => (!values.is_empty() && outputs.is_multiple_of(values.len())).then(|| {
                values
                    .iter()
                    .cycle()
                    .take(outputs)
                    .copied()
                    .collect::<Vec<f32>>()
            }),
            Some(positions) => per_channel(values, outputs, positions),
        };
        match op {
            Op::Relu if !*relu => *relu = true,
            Op::Constant {
                op: op @ (Binary::Add | Binary::Sub),
                values,
            } if !*relu => {
                let Some(values) = per_output(values) else {
                    return false;
                };
                for (b, c) in bias.iter_mut().zip(values) {
                    *b = if *op == Binary::Add { *b + c } else { *b - c };
                }
            }
            Op::Constant {
                op: Binary::Mul,
                values,
            } if !*relu => {
                let Some(values) = per_output(values) else {
                    return false;
                };
                if positions.is_none() {
                    for row in weights.chunks_exact_mut(outputs) {
                        for (w, c) in row.iter_mut().zip(&values) {
                            *w *= c;
                        }
                    }
                } else {
                    let filter = weights.len() / outputs;
                    for (row, c) in weights.chunks_exact_mut(filter).zip(&values) {
                        row.iter_mut().for_each(|w| *w *= c);
                    }
                }
                for (b, c) in bias.iter_mut().zip(&values) {
                    *b *= c;
                }
            }
            _ => return false,
        }
        for node in nodes {
            if !fused.contains(node) {
                fused.push(node.clone());
            }
        }
        true
    }

    fn node(&mut self, node: &pb::NodeProto, me: NodeRef) -> Result<(), String> {
        if self.fold_shape(node)? {
            self.pending.push((me, None));
            return Ok(());
        }
        let tensors: Vec<(usize, Tensor)> = node
            .input
            .iter()
            .enumerate()
            .filter(|(_, name)| {
                !name.is_empty()
                    && !self.constants.contains_key(name.as_str())
                    && !self.shapes.contains_key(name.as_str())
            })
            .map(|(slot, name)| {
                let tensor = self.values.get(name.as_str()).cloned();
                (
                    slot,
                    tensor.expect("needed_nodes puts every producer first"),
                )
            })
            .collect();
        for (_, tensor) in &tensors {
            self.uses[tensor.id] -= 1;
        }
        let wanted = match (domain(node), node.op_type()) {
            // Output 0 is the label (int64), output 1 the scores.
            ("ai.onnx.ml", "LinearClassifier") => 1,
            _ => 0,
        };
        for (index, name) in node.output.iter().enumerate() {
            if index != wanted && self.consumers.get(name).is_some_and(|&n| n > 0) {
                return Err(format!(
                    "its output {index} (`{name}`) is used; compiled: output {wanted}"
                ));
            }
        }
        let binary = matches!(
            (domain(node), node.op_type()),
            ("ai.onnx", "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min")
        );
        let concat = (domain(node), node.op_type()) == ("ai.onnx", "Concat");
        let data = match tensors.as_slice() {
            [(slot, _)] => *slot,
            [_, _] if binary => 0,
            _ if concat => 0,
            several => {
                let names: Vec<&str> = several
                    .iter()
                    .map(|(slot, _)| node.input[*slot].as_str())
                    .collect();
                return Err(format!(
                    "reads {} computed tensors ({}); compiled: two for Add, Sub, Mul, Div, Max \
                     and Min, any number for Concat, one for the rest",
                    names.len(),
                    names.join(", ")
                ));
            }
        };
        if data != 0 && !binary {
            return Err(format!("its data arrives on input {data}, not input 0"));
        }
        self.inputs = tensors.iter().map(|(_, t)| t.id).collect();
        self.shape = tensors[0].1.shape.clone();
        let len: usize = self.shape.iter().product();
        let last = self.shape.last().copied().unwrap_or(1);
        match (domain(node), node.op_type()) {
            ("ai.onnx", "Identity") => self.alias(me),
            ("ai.onnx", "Dropout") => {
                let training = self
                    .constant(node, 2)
                    .and_then(|c| c.ints().map(|v| v.first().copied().unwrap_or(0)))
                    .unwrap_or(0);
                if training != 0 {
                    return Err("runs in training mode".into());
                }
                self.alias(me);
            }
            ("ai.onnx", "Cast") => {
                let to = int_attr(node, "to", 0);
                if to != pb::tensor_proto::DataType::Float as i64 {
                    return Err(format!(
                        "casts to {}: the kernel computes in f32",
                        pb::tensor_proto::DataType::try_from(to as i32)
                            .map_or("an unknown type", |t| t.as_str_name())
                    ));
                }
                self.alias(me);
            }
            ("ai.onnx", "Flatten") => {
                let rank = self.shape.len() as i64 + 1;
                let axis = int_attr(node, "axis", 1);
                if axis != 1 && axis + rank != 1 {
                    return Err(format!(
                        "flattens at axis {axis}: only axis 1 keeps the batch axis apart"
                    ));
                }
                self.shape = vec![len];
                self.alias(me);
            }
            ("ai.onnx", "Reshape") => {
                let target: Vec<i64> = match node.input.get(1).and_then(|n| self.shapes.get(n)) {
                    // The batch size, worked out from a shape, stays the batch: as a 0 would.
                    Some(shape) => shape
                        .entries
                        .iter()
                        .enumerate()
                        .map(|(at, entry)| match entry {
                            ShapeEntry::Batch if at == 0 => Ok(0),
                            ShapeEntry::Batch => {
                                Err(format!("puts the batch size at axis {at} of its new shape"))
                            }
                            ShapeEntry::Fixed(d) => Ok(*d),
                        })
                        .collect::<Result<_, _>>()?,
                    None => self
                        .constant(node, 1)
                        .and_then(Const::ints)
                        .ok_or(
                            "its shape must be a constant int64 tensor, or worked out from a shape",
                        )?
                        .to_vec(),
                };
                if int_attr(node, "allowzero", 0) != 0 && target.contains(&0) {
                    return Err("allowzero with a 0 in the shape is not compiled".into());
                }
                self.shape = reshape(&self.shape, &target)?;
                self.alias(me);
            }
            ("ai.onnx", op @ ("Squeeze" | "Unsqueeze")) => {
                let axes: Vec<i64> = match attribute(node, "axes") {
                    Some(a) => a.ints.clone(),
                    None => self
                        .constant(node, 1)
                        .and_then(Const::ints)
                        .map(<[i64]>::to_vec)
                        .ok_or("its axes must be given (attribute or constant input)")?,
                };
                self.shape = squeeze(&self.shape, &axes, op == "Unsqueeze")?;
                self.alias(me);
            }
            ("ai.onnx", "MatMul") => {
                let b = self.float_constant(node, 1)?;
                let [k, m] = b.dims[..] else {
                    return Err(format!(
                        "multiplies by a {}-D constant; compiled: a 2-D matrix",
                        b.dims.len()
                    ));
                };
                if last != k || m == 0 {
                    return Err(format!(
                        "multiplies rows of {last} values by a {k}×{m} matrix"
                    ));
                }
                let weights = b.floats().expect("checked").to_vec();
                let mut shape = self.shape.clone();
                *shape.last_mut().expect("a matrix input has an axis") = m;
                self.push(
                    me,
                    Op::Dense {
                        inputs: k,
                        outputs: m,
                        weights,
                        bias: vec![0.0; m],
                        relu: false,
                    },
                    shape,
                );
            }
            ("ai.onnx", "Gemm") => {
                if int_attr(node, "transA", 0) != 0 {
                    return Err("transA = 1 transposes the batch into the rows".into());
                }
                if self.shape.len() != 1 {
                    return Err(format!(
                        "its input is {:?} per sample, not a row",
                        self.shape
                    ));
                }
                let b = self.float_constant(node, 1)?;
                let [rows, cols] = b.dims[..] else {
                    return Err("B must be a 2-D constant".into());
                };
                let b_values = b.floats().expect("checked");
                let trans_b = int_attr(node, "transB", 0) != 0;
                let (k, m) = if trans_b { (cols, rows) } else { (rows, cols) };
                if k != len || m == 0 {
                    return Err(format!("multiplies {len} values by a {k}×{m} matrix"));
                }
                let alpha = float_attr(node, "alpha", 1.0);
                let weights: Vec<f32> = (0..k * m)
                    .map(|at| {
                        let (i, j) = (at / m, at % m);
                        let w = if trans_b {
                            b_values[j * k + i]
                        } else {
                            b_values[at]
                        };
                        if alpha == 1.0 { w } else { alpha * w }
                    })
                    .collect();
                let bias = match self.constant(node, 2) {
                    None => vec![0.0; m],
                    Some(c) => {
                        let values = c.floats().ok_or("C must hold floats")?;
                        let beta = float_attr(node, "beta", 1.0);
                        let per_output =
                            broadcast(&c.dims, values, &[m]).map_err(|why| format!("C: {why}"))?;
                        per_output
                            .iter()
                            .cycle()
                            .take(m)
                            .map(|&v| if beta == 1.0 { v } else { beta * v })
                            .collect()
                    }
                };
                if node.input.get(2).is_some_and(|c| !c.is_empty())
                    && self.constant(node, 2).is_none()
                {
                    return Err("C must be a constant".into());
                }
                self.push(
                    me,
                    Op::Dense {
                        inputs: k,
                        outputs: m,
                        weights,
                        bias,
                        relu: false,
                    },
                    vec![m],
                );
            }
            ("ai.onnx", op @ ("Add" | "Sub" | "Mul" | "Div" | "Max" | "Min")) => {
                if node.input.len() != 2 {
                    return Err(format!(
                        "{} inputs; compiled: two (computed, or one of them constant)",
                        node.input.len()
                    ));
                }
                if let [(_, a), (_, b)] = tensors.as_slice() {
                    self.elementwise(op, a, b, me)?;
                    self.finish(node, wanted);
                    return Ok(());
                }
                let constant = self.float_constant(node, 1 - data)?;
                let values = broadcast(
                    &constant.dims,
                    constant.floats().expect("checked"),
                    &self.shape,
                )?;
                let constant_first = data == 1;
                let op = match (op, constant_first) {
                    ("Add", _) => Binary::Add,
                    ("Mul", _) => Binary::Mul,
                    ("Max", _) => Binary::Max,
                    ("Min", _) => Binary::Min,
                    ("Sub", false) => Binary::Sub,
                    ("Sub", true) => Binary::SubFrom,
                    ("Div", false) => Binary::Div,
                    _ => Binary::DivInto,
                };
                let shape = self.shape.clone();
                self.push(me, Op::Constant { op, values }, shape);
            }
            ("ai.onnx", "Conv") => {
                let (channels, input, one_d) = planes(&self.shape)?;
                let w = self.float_constant(node, 1)?.clone();
                let dims = w.dims.clone();
                let kernel = match (one_d, &dims[..]) {
                    (true, &[_, _, k]) => [1, k],
                    (false, &[_, _, kh, kw]) => [kh, kw],
                    _ => {
                        return Err(format!(
                            "weights of {dims:?} for a {}-D input",
                            if one_d { 1 } else { 2 }
                        ));
                    }
                };
                let groups = usize::try_from(int_attr(node, "group", 1))
                    .ok()
                    .filter(|&g| g > 0)
                    .ok_or("its group is not a positive count")?;
                let out_channels = dims[0];
                if dims[1] * groups != channels || !out_channels.is_multiple_of(groups) {
                    return Err(format!(
                        "weights of {dims:?} in {groups} group(s) for {channels} input channels"
                    ));
                }
                let mut window = window(node, channels, input, one_d, Some(kernel), false)?;
                self.fold_zero_pad(&mut window);
                let bias = match self.constant(node, 2) {
                    Some(c) => {
                        let values = c.floats().ok_or("its bias must hold floats")?;
                        if values.len() != out_channels {
                            return Err(format!(
                                "{} bias values for {out_channels} output channels",
                                values.len()
                            ));
                        }
                        values.to_vec()
                    }
                    None if node.input.get(2).is_some_and(|b| !b.is_empty()) => {
                        return Err("its bias must be a constant".into());
                    }
                    None => vec![0.0; out_channels],
                };
                let shape = spatial_shape(out_channels, window.output, one_d);
                let weights = w.floats().expect("checked").to_vec();
                self.push(
                    me,
                    Op::Conv {
                        window,
                        groups,
                        weights,
                        bias,
                        relu: false,
                    },
                    shape,
                );
            }
            ("ai.onnx", op @ ("MaxPool" | "AveragePool")) => {
                let (channels, input, one_d) = planes(&self.shape)?;
                if int_attr(node, "storage_order", 0) != 0 {
                    return Err("storage_order 1 (column-major indices) is not compiled".into());
                }
                let ceil = int_attr(node, "ceil_mode", 0) != 0;
                let window = window(node, channels, input, one_d, None, ceil)?;
                let shape = spatial_shape(channels, window.output, one_d);
                let op = if op == "MaxPool" {
                    Op::MaxPool { window }
                } else {
                    if window.dilations != [1, 1] {
                        return Err("dilated average pooling is not compiled".into());
                    }
                    Op::AveragePool {
                        window,
                        count_padding: int_attr(node, "count_include_pad", 0) != 0,
                    }
                };
                self.push(me, op, shape);
            }
            ("ai.onnx", op @ ("GlobalAveragePool" | "GlobalMaxPool")) => {
                let (channels, input, one_d) = planes(&self.shape)?;
                let window = Window {
                    channels,
                    input,
                    kernel: input,
                    strides: [1, 1],
                    dilations: [1, 1],
                    pads: [0; 4],
                    output: [1, 1],
                };
                let op = if op == "GlobalMaxPool" {
                    Op::MaxPool { window }
                } else {
                    Op::AveragePool {
                        window,
                        count_padding: false,
                    }
                };
                self.push(me, op, spatial_shape(channels, [1, 1], one_d));
            }
            ("ai.onnx", "Transpose") => {
                let rank = self.shape.len() + 1;
                let perm: Vec<i64> = attribute(node, "perm")
                    .map_or_else(|| (0..rank as i64).rev().collect(), |a| a.ints.clone());
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..rank as i64).collect::<Vec<_>>() {
                    return Err(format!("{perm:?} is not a permutation of {rank} axes"));
                }
                if perm[0] != 0 {
                    return Err(format!(
                        "permutes the axes by {perm:?}: the batch axis must stay first"
                    ));
                }
                let perm: Vec<usize> = perm[1..].iter().map(|&p| p as usize - 1).collect();
                let moved: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
                // Axes of one value move nothing: the values stay in their order.
                let order: Vec<usize> = perm
                    .iter()
                    .copied()
                    .filter(|&p| self.shape[p] != 1)
                    .collect();
                if order.windows(2).all(|pair| pair[0] < pair[1]) {
                    self.shape = moved;
                    self.alias(me);
                } else {
                    let shape = self.shape.clone();
                    self.push(me, Op::Transpose { shape, perm }, moved);
                }
            }
            ("ai.onnx", "Concat") => {
                if tensors.len() != node.input.len() {
                    return Err("a constant input: compiled, computed tensors side by side".into());
                }
                let rank = self.shape.len() as i64 + 1;
                let given = attribute(node, "axis")
                    .map(|a| a.i())
                    .ok_or("it has no axis")?;
                let axis = if given < 0 { given + rank } else { given };
                if axis < 1 || axis >= rank {
                    return Err(format!(
                        "concatenates along axis {given} of {rank}: the batch axis stays"
                    ));
                }
                let axis = axis as usize - 1;
                let mut shape = self.shape.clone();
                shape[axis] = 0;
                let mut blocks = Vec::new();
                for (slot, tensor) in &tensors {
                    let fits = tensor.shape.len() == shape.len()
                        && (0..shape.len()).all(|a| a == axis || tensor.shape[a] == shape[a]);
                    if !fits {
                        return Err(format!(
                            "input {slot} is {:?} per sample, input 0 {:?}: they differ \
                             elsewhere than along axis {given}",
                            tensor.shape, self.shape
                        ));
                    }
                    shape[axis] += tensor.shape[axis];
                    blocks.push(tensor.shape[axis..].iter().product());
                }
                self.push(me, Op::Concat { blocks }, shape);
            }
            ("ai.onnx", "Gather") => {
                let indices = self
                    .constant(node, 1)
                    .ok_or("its indices must be a constant")?;
                let values = indices.ints().ok_or("its indices must be integers")?;
                let rank = self.shape.len() as i64 + 1;
                let given = int_attr(node, "axis", 0);
                let axis = if given < 0 { given + rank } else { given };
                if axis < 1 || axis >= rank {
                    return Err(format!(
                        "gathers along axis {given} of {rank}: compiled along an axis after the \
                         batch"
                    ));
                }
                let axis = axis as usize - 1;
                let axis_len = self.shape[axis];
                let indices: Vec<usize> = values
                    .iter()
                    .map(|&i| {
                        let at = if i < 0 { i + axis_len as i64 } else { i };
                        usize::try_from(at)
                            .ok()
                            .filter(|&at| at < axis_len)
                            .ok_or_else(|| format!("index {i} along an axis of {axis_len}"))
                    })
                    .collect::<Result<_, _>>()?;
                let mut shape = self.shape[..axis].to_vec();
                shape.extend(&indices_dims(
                    indices.len(),
                    &self.constant(node, 1).expect("read").dims,
                ));
                shape.extend(&self.shape[axis + 1..]);
                let inner = self.shape[axis + 1..].iter().product();
                self.push(
                    me,
                    Op::Gather {
                        axis_len,
                        inner,
                        indices,
                    },
                    shape,
                );
            }
            ("ai.onnx", "Pad") => {
                let mode = string_attr(node, "mode", "constant");
                if mode != "constant" {
                    return Err(format!("mode `{mode}`; compiled: constant"));
                }
                let rank = self.shape.len() + 1;
                let (pads, value): (Vec<i64>, f32) = if self.opset < 11 {
                    let pads = attribute(node, "pads").map(|a| a.ints.clone());
                    (
                        pads.ok_or("it has no pads")?,
                        float_attr(node, "value", 0.0),
                    )
                } else {
                    if node.input.get(3).is_some_and(|a| !a.is_empty()) {
                        return Err(
                            "its axes input is not compiled: give pads for every axis".into()
                        );
                    }
                    let pads = self
                        .constant(node, 1)
                        .and_then(Const::ints)
                        .ok_or("its pads must be a constant int64 tensor")?
                        .to_vec();
                    let value = match self.constant(node, 2) {
                        None => 0.0,
                        Some(c) => *c
                            .floats()
                            .and_then(|v| v.first())
                            .ok_or("its constant_value must be a float")?,
                    };
                    (pads, value)
                };
                if pads.len() != 2 * rank {
                    return Err(format!("{} pads for {rank} axes", pads.len()));
                }
                if pads.iter().any(|&p| p < 0) {
                    return Err(format!("pads {pads:?}: cropping is not compiled"));
                }
                if pads[0] != 0 || pads[rank] != 0 {
                    return Err(format!("pads {pads:?} grow the batch axis"));
                }
                let begin: Vec<usize> = pads[1..rank].iter().map(|&p| p as usize).collect();
                let end: Vec<usize> = pads[rank + 1..].iter().map(|&p| p as usize).collect();
                let padded: Vec<usize> = (0..rank - 1)
                    .map(|a| self.shape[a] + begin[a] + end[a])
                    .collect();
                let shape = self.shape.clone();
                self.push(
                    me,
                    Op::Pad {
                        shape,
                        begin,
                        end,
                        value,
                    },
                    padded,
                );
            }
            ("ai.onnx", "Relu") => self.in_place(me, Op::Relu),
            ("ai.onnx", "Sigmoid") => self.in_place(me, Op::Sigmoid),
            ("ai.onnx", "Tanh") => self.in_place(me, Op::Tanh),
            ("ai.onnx", "LeakyRelu") => {
                let alpha = float_attr(node, "alpha", 0.01);
                self.in_place(me, Op::LeakyRelu { alpha });
            }
            ("ai.onnx", "HardSigmoid") => {
                let (alpha, beta) = (
                    float_attr(node, "alpha", 0.2),
                    float_attr(node, "beta", 0.5),
                );
                self.in_place(me, Op::HardSigmoid { alpha, beta });
            }
            ("ai.onnx", "Clip") => {
                let (low, high) = if self.opset < 11 {
                    (
                        float_attr(node, "min", f32::NEG_INFINITY),
                        float_attr(node, "max", f32::INFINITY),
                    )
                } else {
                    let bound = |slot: usize, default: f32| -> Result<f32, String> {
                        if node.input.get(slot).is_none_or(|n| n.is_empty()) {
                            return Ok(default);
                        }
                        let c = self.float_constant(node, slot)?;
                        c.floats()
                            .and_then(|v| v.first().copied())
                            .ok_or_else(|| format!("input {slot} is empty"))
                    };
                    (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
                };
                self.in_place(me, Op::Clip { low, high });
            }
            ("ai.onnx", op @ ("Softmax" | "LogSoftmax")) => {
                let rank = self.shape.len() as i64 + 1;
                let default = if self.opset < 13 { 1 } else { -1 };
                let mut axis = int_attr(node, "axis", default);
                if axis < 0 {
                    axis += rank;
                }
                let width = if self.opset < 13 {
                    // Before opset 13 the axis splits the tensor in two: rows of every axis from
                    // it on.
                    if axis < 1 || axis >= rank {
                        return Err(format!("axis {axis} takes in the batch axis"));
                    }
                    self.shape[axis as usize - 1..].iter().product()
                } else {
                    let trailing: usize = self
                        .shape
                        .get(axis as usize..)
                        .map_or(1, |s| s.iter().product());
                    if axis < 1 || axis >= rank || trailing != 1 {
                        return Err(format!(
                            "runs over axis {axis} of {rank}: compiled over the last axis"
                        ));
                    }
                    last
                };
                let op = if op == "Softmax" {
                    Op::Softmax { width }
                } else {
                    Op::LogSoftmax { width }
                };
                self.in_place(me, op);
            }
            ("ai.onnx", "BatchNormalization") => {
                if int_attr(node, "training_mode", 0) != 0 || node.output.len() > 1 {
                    return Err("runs in training mode".into());
                }
                let epsilon = float_attr(node, "epsilon", 1e-5);
                let channels = *self.shape.first().ok_or("its input has no channel axis")?;
                let per_channel = |slot: usize| -> Result<Vec<f32>, String> {
                    let c = self.float_constant(node, slot)?;
                    let v = c.floats().expect("checked");
                    if v.len() != channels {
                        return Err(format!(
                            "input {slot} has {} values for {channels} channels",
                            v.len()
                        ));
                    }
                    Ok(v.to_vec())
                };
                let (scale, bias, mean, var) = (
                    per_channel(1)?,
                    per_channel(2)?,
                    per_channel(3)?,
                    per_channel(4)?,
                );
                // As ONNX Runtime computes it: one scale and one shift per channel.
                let factor: Vec<f32> = scale
                    .iter()
                    .zip(&var)
                    .map(|(s, v)| s / (v + epsilon).sqrt())
                    .collect();
                let shift: Vec<f32> = bias
                    .iter()
                    .zip(&mean)
                    .zip(&factor)
                    .map(|((b, m), f)| b - m * f)
                    .collect();
                let spatial = len / channels;
                let expand = |values: &[f32]| -> Vec<f32> {
                    values
                        .iter()
                        .flat_map(|&v| std::iter::repeat_n(v, spatial))
                        .collect()
                };
                let shape = self.shape.clone();
                self.push(
                    me.clone(),
                    Op::Constant {
                        op: Binary::Mul,
                        values: shortest_period(expand(&factor)),
                    },
                    shape.clone(),
                );
                self.push(
                    me,
                    Op::Constant {
                        op: Binary::Add,
                        values: shortest_period(expand(&shift)),
                    },
                    shape,
                );
            }
            ("ai.onnx.ml", "LinearClassifier" | "LinearRegressor") => {
                self.linear(node, me, len)?;
            }
            ("ai.onnx.ml", "Normalizer") => {
                let norm = match string_attr(node, "norm", "MAX").as_str() {
                    "MAX" => Norm::Max,
                    "L1" => Norm::L1,
                    "L2" => Norm::L2,
                    other => return Err(format!("norm `{other}` is not MAX, L1 or L2")),
                };
                self.in_place(me, Op::Normalize { width: last, norm });
            }
            ("ai.onnx.ml", "Scaler") => {
                let repeat = |name: &str| -> Result<Vec<f32>, String> {
                    let values = attribute(node, name)
                        .map(|a| a.floats.clone())
                        .unwrap_or_default();
                    match values.len() {
                        1 => Ok(values),
                        n if n == last => Ok(values),
                        n => Err(format!("{n} `{name}` values for rows of {last}")),
                    }
                };
                let (offset, scale) = (repeat("offset")?, repeat("scale")?);
                let shape = self.shape.clone();
                self.push(
                    me.clone(),
                    Op::Constant {
                        op: Binary::Sub,
                        values: offset,
                    },
                    shape.clone(),
                );
                self.push(
                    me,
                    Op::Constant {
                        op: Binary::Mul,
                        values: scale,
                    },
                    shape,
                );
            }
            _ => unreachable!("the graph's needed nodes are compiled operators only"),
        }
        self.finish(node, wanted);
        Ok(())
    }

    /// A convolution reading zeros a `Pad` put around its input, where nothing else reads them,
    /// pads the input itself: the `Pad` step goes, and its nodes join the convolution's.
    fn fold_zero_pad(&mut self, window: &mut Window) {
        let [input] = self.inputs[..] else {
            return;
        };
        let Some(at) = self.steps.iter().position(|s| s.output == input) else {
            return;
        };
        let Op::Pad {
            begin, end, value, ..
        } = &self.steps[at].op
        else {
            return;
        };
        let read_elsewhere = self.steps.iter().any(|s| s.inputs.contains(&input));
        // Only the spatial axes: the last one of a 1-D input, the last two of a 2-D one.
        let spatial = begin.len() - 1;
        let channels_padded = begin[..1].iter().chain(&end[..1]).any(|&p| p != 0);
        if *value != 0.0 || self.uses[input] != 0 || read_elsewhere || channels_padded {
            return;
        }
        let first_axis = 2 - spatial;
        for (a, axis) in (first_axis..2).enumerate() {
            window.pads[axis] += begin[1 + a];
            window.pads[axis + 2] += end[1 + a];
            window.input[axis] -= begin[1 + a] + end[1 + a];
        }
        let pad = self.steps.remove(at);
        let viewed = Some(pad.inputs[0]);
        let mut nodes: Vec<_> = pad.nodes.into_iter().map(|n| (n, viewed)).collect();
        // Views of the padded tensor are views of what the convolution now reads.
        for (node, tensor) in std::mem::take(&mut self.pending) {
            nodes.push((
                node,
                if tensor == Some(input) {
                    viewed
                } else {
                    tensor
                },
            ));
        }
        self.pending = nodes;
        self.inputs = pad.inputs;
        self.shape = pad.input_shape;
    }

    /// A node that computes nothing (its output is its input, maybe shaped anew), named in the
    /// comment of the next step that reads it.
    fn alias(&mut self, me: NodeRef) {
        self.pending.push((me, Some(self.inputs[0])));
    }

    /// Works out a node computed from shapes alone (`Shape` of a tensor; `Gather`, `Unsqueeze`,
    /// `Squeeze`, `Concat`, `Cast` or `Identity` of such values and constants); false for any
    /// other node.
    fn fold_shape(&mut self, node: &pb::NodeProto) -> Result<bool, String> {
        let op = node.op_type();
        let Some(output) = node.output.first() else {
            return Ok(false);
        };
        if domain(node) != "ai.onnx" {
            return Ok(false);
        }
        if op == "Shape" {
            let tensor = node
                .input
                .first()
                .and_then(|name| self.values.get(name.as_str()))
                .ok_or("takes the shape of a value that is not a computed tensor")?
                .clone();
            self.uses[tensor.id] -= 1;
            let mut entries = vec![ShapeEntry::Batch];
            entries.extend(tensor.shape.iter().map(|&d| ShapeEntry::Fixed(d as i64)));
            let rank = entries.len() as i64;
            let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
            let start = clamp(int_attr(node, "start", 0));
            let end = clamp(int_attr(node, "end", rank));
            entries = entries[start..end.max(start)].to_vec();
            self.shapes.insert(
                output.clone(),
                ShapeValue {
                    entries,
                    scalar: false,
                },
            );
            return Ok(true);
        }
        let from_shape = node
            .input
            .iter()
            .any(|name| self.shapes.contains_key(name.as_str()));
        if !from_shape {
            return Ok(false);
        }
        // Every input a shape value or an integer constant.
        let operand = |slot: usize| -> Result<ShapeValue, String> {
            let name = &node.input[slot];
            if let Some(value) = self.shapes.get(name.as_str()) {
                return Ok(value.clone());
            }
            let constant = self.constants.get(name.as_str()).ok_or_else(|| {
                format!("input {slot} (`{name}`) is computed from data, not a shape")
            })?;
            let ints = constant
                .ints()
                .ok_or_else(|| format!("input {slot} (`{name}`) is not an integer constant"))?;
            Ok(ShapeValue {
                entries: ints.iter().map(|&v| ShapeEntry::Fixed(v)).collect(),
                scalar: constant.dims.is_empty(),
            })
        };
        let folded = match op {
            "Identity" | "Cast" => operand(0)?,
            "Gather" => {
                let data = operand(0)?;
                let indices = operand(1)?;
                if int_attr(node, "axis", 0) != 0 || data.scalar {
                    return Err("gathers along an axis a shape does not have".into());
                }
                let len = data.entries.len() as i64;
                let entries = indices
                    .entries
                    .iter()
                    .map(|index| match index {
                        ShapeEntry::Fixed(i) if (-len..len).contains(i) => {
                            Ok(data.entries[if *i < 0 { i + len } else { *i } as usize])
                        }
                        other => Err(format!("index {other:?} into a shape of {len}")),
                    })
                    .collect::<Result<_, String>>()?;
                ShapeValue {
                    entries,
                    scalar: indices.scalar,
                }
            }
            "Unsqueeze" | "Squeeze" => {
                let value = operand(0)?;
                let axes: Vec<i64> = match attribute(node, "axes") {
                    Some(a) => a.ints.clone(),
                    None if node.input.len() > 1 => operand(1)?
                        .entries
                        .iter()
                        .map(|e| match e {
                            ShapeEntry::Fixed(v) => Ok(*v),
                            ShapeEntry::Batch => Err("axes worked out from a shape".to_string()),
                        })
                        .collect::<Result<_, _>>()?,
                    None => vec![],
                };
                match (op, value.scalar, axes.as_slice()) {
                    ("Unsqueeze", true, [0 | -1]) | ("Squeeze", false, [] | [0 | -1])
                        if op == "Unsqueeze" || value.entries.len() == 1 =>
                    {
                        ShapeValue {
                            entries: value.entries,
                            scalar: op == "Squeeze",
                        }
                    }
                    _ => {
                        return Err(format!(
                            "{op} of a shape value by axes {axes:?}: compiled, a scalar to one \
                             entry and back"
                        ));
                    }
                }
            }
            "Concat" => {
                let mut entries = Vec::new();
                for slot in 0..node.input.len() {
                    let part = operand(slot)?;
                    if part.scalar {
                        return Err(format!("input {slot} is a scalar"));
                    }
                    entries.extend(part.entries);
                }
                ShapeValue {
                    entries,
                    scalar: false,
                }
            }
            _ => return Ok(false),
        };
        self.shapes.insert(output.clone(), folded);
        Ok(true)
    }

    /// Records where the node's output is: the last step's tensor, or its input's when it
    /// computed nothing.
    fn finish(&mut self, node: &pb::NodeProto, wanted: usize) {
        let Some(name) = node.output.get(wanted) else {
            return;
        };
        let id = self.inputs[0];
        self.uses[id] += self.consumers.get(name).copied().unwrap_or(0);
        self.values.insert(
            name.clone(),
            Tensor {
                id,
                shape: self.shape.clone(),
            },
        );
    }

    /// Two computed tensors, elementwise: the larger is changed, the other broadcast over it per
    /// channel (or of the same shape).
    fn elementwise(&mut self, op: &str, a: &Tensor, b: &Tensor, me: NodeRef) -> Result<(), String> {
        let op = match op {
            "Add" => Binary::Add,
            "Sub" => Binary::Sub,
            "Mul" => Binary::Mul,
            "Div" => Binary::Div,
            "Max" => Binary::Max,
            _ => Binary::Min,
        };
        let (len_a, len_b) = (a.shape.iter().product::<usize>(), b.shape.iter().product());
        let (large, small, op) = if len_a >= len_b {
            (a, b, op)
        } else {
            (b, a, op.swapped())
        };
        let repeat = channel_repeat(&large.shape, &small.shape).ok_or_else(|| {
            format!(
                "{:?} and {:?} per sample do not broadcast as compiled: the same shape, or one \
                 whose trailing axes are 1 (per channel)",
                a.shape, b.shape
            )
        })?;
        self.inputs = vec![large.id, small.id];
        self.shape = large.shape.clone();
        self.push(me, Op::Elementwise { op, repeat }, large.shape.clone());
        Ok(())
    }

    fn in_place(&mut self, me: NodeRef, op: Op) {
        let shape = self.shape.clone();
        self.push(me, op, shape);
    }

    /// ONNX-ML's linear models: `scores = x · coefficientsᵀ + intercepts`, then the classifier's
    /// post-transform.
    fn linear(&mut self, node: &pb::NodeProto, me: NodeRef, len: usize) -> Result<(), String> {
        if self.shape.len() != 1 {
            return Err(format!(
                "its input is {:?} per sample, not a row",
                self.shape
            ));
        }
        let classifier = node.op_type() == "LinearClassifier";
        let coefficients = attribute(node, "coefficients")
            .map(|a| a.floats.clone())
            .ok_or("it has no coefficients")?;
        let outputs = if classifier {
            let classes = attribute(node, "classlabels_ints")
                .map(|a| a.ints.len())
                .filter(|&n| n > 0)
                .or_else(|| attribute(node, "classlabels_strings").map(|a| a.strings.len()))
                .ok_or("it has no class labels")?;
            if coefficients.len() != classes * len {
                return Err(format!(
                    "{} coefficients for {classes} classes of {len} features (a binary \
                     classifier's single row is not compiled)",
                    coefficients.len()
                ));
            }
            classes
        } else {
            int_attr(node, "targets", 1) as usize
        };
        if coefficients.len() != outputs * len || outputs == 0 {
            return Err(format!(
                "{} coefficients for {outputs} outputs of {len} features",
                coefficients.len()
            ));
        }
        let intercepts = attribute(node, "intercepts")
            .map(|a| a.floats.clone())
            .unwrap_or_else(|| vec![0.0; outputs]);
        if intercepts.len() != outputs {
            return Err(format!(
                "{} intercepts for {outputs} outputs",
                intercepts.len()
            ));
        }
        let weights: Vec<f32> = (0..len * outputs)
            .map(|at| coefficients[(at % outputs) * len + at / outputs])
            .collect();
        let post = string_attr(node, "post_transform", "NONE");
        let after = match (classifier, post.as_str()) {
            (_, "NONE") => None,
            (true, "SOFTMAX") => Some(Op::Softmax { width: outputs }),
            (true, "LOGISTIC") => Some(Op::Sigmoid),
            (_, other) => return Err(format!("post_transform {other} is not compiled")),
        };
        self.push(
            me.clone(),
            Op::Dense {
                inputs: len,
                outputs,
                weights,
                bias: intercepts,
                relu: false,
            },
            vec![outputs],
        );
        if let Some(op) = after {
            self.in_place(me, op);
        }
        Ok(())
    }
}

/// The dimensions an index tensor puts in place of the axis it gathers along (none for one index
/// given as a scalar).
fn indices_dims(count: usize, dims: &[usize]) -> Vec<usize> {
    if dims.is_empty() && count == 1 {
        Vec::new()
    } else {
        dims.to_vec()
    }
}

/// One sample's `[channels, height, width]` as a window's input, and whether it is 1-D
/// (`[channels, length]`, taken as height 1).
fn planes(shape: &[usize]) -> Result<(usize, [usize; 2], bool), String> {
    match *shape {
        [channels, length] => Ok((channels, [1, length], true)),
        [channels, height, width] => Ok((channels, [height, width], false)),
        _ => Err(format!(
            "its input is {shape:?} per sample; compiled: [channels, length] or [channels, \
             height, width]"
        )),
    }
}

fn spatial_shape(channels: usize, output: [usize; 2], one_d: bool) -> Vec<usize> {
    if one_d {
        vec![channels, output[1]]
    } else {
        vec![channels, output[0], output[1]]
    }
}

/// A node's window over one sample: `kernel_shape` (or the weights' `kernel`), `strides`,
/// `dilations`, `pads` or `auto_pad`, and, for pooling, `ceil_mode`.
fn window(
    node: &pb::NodeProto,
    channels: usize,
    input: [usize; 2],
    one_d: bool,
    kernel: Option<[usize; 2]>,
    ceil: bool,
) -> Result<Window, String> {
    let axes = if one_d { 1 } else { 2 };
    let sizes = |name: &str, len: usize| -> Result<Option<Vec<usize>>, String> {
        let Some(a) = attribute(node, name) else {
            return Ok(None);
        };
        if a.ints.len() != len {
            return Err(format!(
                "`{name}` has {} values for {axes} spatial axes",
                a.ints.len()
            ));
        }
        a.ints
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| format!("`{name}` holds {v}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    // Attributes list the spatial axes; a 1-D window is the width of a height-1 one.
    let pair = |values: Vec<usize>| {
        if one_d {
            [1, values[0]]
        } else {
            [values[0], values[1]]
        }
    };
    let kernel = match (sizes("kernel_shape", axes)?, kernel) {
        (Some(given), Some(weights)) if pair(given.clone()) != weights => {
            return Err(format!(
                "kernel_shape {given:?} is not the weights' {:?}",
                &weights[2 - axes..]
            ));
        }
        (_, Some(weights)) => weights,
        (Some(given), None) => pair(given),
        (None, None) => return Err("it has no kernel_shape".into()),
    };
    let strides = sizes("strides", axes)?.map_or([1, 1], pair);
    let dilations = sizes("dilations", axes)?.map_or([1, 1], pair);
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        return Err("a stride, dilation or kernel size of 0".into());
    }
    let pads = match string_attr(node, "auto_pad", "NOTSET").as_str() {
        "NOTSET" => match sizes("pads", 2 * axes)? {
            None => [0; 4],
            Some(p) if one_d => [0, p[0], 0, p[1]],
            Some(p) => [p[0], p[1], p[2], p[3]],
        },
        "VALID" => [0; 4],
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let mut pads = [0; 4];
            for a in 0..2 {
                let out = input[a].div_ceil(strides[a]);
                let span = (kernel[a] - 1) * dilations[a] + 1;
                let total = ((out - 1) * strides[a] + span).saturating_sub(input[a]);
                let before = if mode == "SAME_UPPER" {
                    total / 2
                } else {
                    total - total / 2
                };
                pads[a] = before;
                pads[a + 2] = total - before;
            }
            pads
        }
        other => return Err(format!("auto_pad `{other}` is not an ONNX padding mode")),
    };
    let output =
        Window::output_size(input, kernel, strides, dilations, pads, ceil).ok_or_else(|| {
            format!("its {kernel:?} kernel does not fit in the padded {input:?} input")
        })?;
    Ok(Window {
        channels,
        input,
        kernel,
        strides,
        dilations,
        pads,
        output,
    })
}

/// `Reshape`'s new sample shape: the batch axis kept first (`0` copies it, `-1` leaves it free
/// with the rest fixed).
fn reshape(shape: &[usize], target: &[i64]) -> Result<Vec<usize>, String> {
    let len: usize = shape.iter().product();
    let Some((&first, rest)) = target.split_first() else {
        return Err("reshapes to a scalar".into());
    };
    if first != 0 && first != -1 {
        return Err(format!(
            "reshapes to {target:?}: the first axis must stay the batch (0 or -1)"
        ));
    }
    let free = rest.iter().filter(|&&d| d == -1).count();
    if first == -1 && free > 0 || free > 1 {
        return Err(format!("reshapes to {target:?}: more than one free axis"));
    }
    let mut dims: Vec<Option<usize>> = Vec::with_capacity(rest.len());
    for (index, &d) in rest.iter().enumerate() {
        dims.push(match d {
            -1 => None,
            0 => Some(*shape.get(index).ok_or_else(|| {
                format!(
                    "reshapes to {target:?}: axis {} copies an axis that is not there",
                    index + 1
                )
            })?),
            d if d > 0 => Some(d as usize),
            d => return Err(format!("reshapes to {target:?}: axis size {d}")),
        });
    }
    let known: usize = dims.iter().flatten().product();
    let resolved: Vec<usize> = dims
        .iter()
        .map(|d| d.unwrap_or(len.checked_div(known).unwrap_or(0)))
        .collect();
    if resolved.iter().product::<usize>() != len {
        return Err(format!(
            "reshapes {shape:?} (per sample) to {target:?}: not the same number of values"
        ));
    }
    Ok(resolved)
}

/// `Squeeze`/`Unsqueeze` on a sample's axes (`axes` count the batch axis as 0).
fn squeeze(shape: &[usize], axes: &[i64], unsqueeze: bool) -> Result<Vec<usize>, String> {
    let rank = shape.len() as i64 + 1 + if unsqueeze { axes.len() as i64 } else { 0 };
    let mut normalized: Vec<usize> = axes
        .iter()
        .map(|&a| {
            let a = if a < 0 { a + rank } else { a };
            if a <= 0 || a >= rank {
                Err(format!("axis {a} of {rank}: the batch axis stays"))
            } else {
                Ok(a as usize - 1)
            }
        })
        .collect::<Result<_, _>>()?;
    normalized.sort_unstable();
    normalized.dedup();
    let mut out = shape.to_vec();
    if unsqueeze {
        for axis in normalized {
            out.insert(axis.min(out.len()), 1);
        }
    } else {
        for axis in normalized.into_iter().rev() {
            if out.get(axis) != Some(&1) {
                return Err(format!(
                    "squeezes axis {} of {shape:?}, which is not 1",
                    axis + 1
                ));
            }
            out.remove(axis);
        }
    }
    Ok(out)
}

/// A constant (dimensions `dims`) broadcast against one sample of `shape`: its values over the
/// sample, shortened to their period. Refused when it varies along the batch axis or would grow
/// the tensor.
fn broadcast(dims: &[usize], values: &[f32], shape: &[usize]) -> Result<Vec<f32>, String> {
    let rank = shape.len() + 1;
    if dims.len() > rank {
        return Err(format!(
            "a constant of {dims:?} has more axes than the tensor"
        ));
    }
    let offset = rank - dims.len();
    let mut strides = vec![0usize; shape.len()];
    let mut stride = 1;
    for (index, &d) in dims.iter().enumerate().rev() {
        let axis = offset + index;
        if axis == 0 {
            if d != 1 {
                return Err(format!(
                    "a constant of {dims:?} varies along the batch axis"
                ));
            }
            continue;
        }
        let size = shape[axis - 1];
        if d != 1 && d != size {
            return Err(format!(
                "a constant of {dims:?} does not broadcast over {shape:?} per sample"
            ));
        }
        if d == size && d != 1 {
            strides[axis - 1] = stride;
        }
        stride *= d;
    }
    let len: usize = shape.iter().product();
    let expanded: Vec<f32> = (0..len)
        .map(|flat| {
            let mut rest = flat;
            let mut at = 0;
            for (axis, &size) in shape.iter().enumerate().rev() {
                at += (rest % size) * strides[axis];
                rest /= size;
            }
            values[at]
        })
        .collect();
    Ok(shortest_period(expanded))
}

/// How many neighbouring values of a tensor of `large` shape each value of one of `small` shape
/// applies to: 1 for the same shape, `height × width` for `[C, 1, 1]` against `[C, H, W]`;
/// `None` for any other broadcast.
fn channel_repeat(large: &[usize], small: &[usize]) -> Option<usize> {
    if large.len() != small.len() {
        return None;
    }
    let kept = small.iter().zip(large).take_while(|(s, l)| s == l).count();
    small[kept..]
        .iter()
        .all(|&d| d == 1)
        .then(|| large[kept..].iter().product())
}

/// One value per channel when `values`, repeated over `channels` planes of `positions`, is
/// constant over each plane.
fn per_channel(values: &[f32], channels: usize, positions: usize) -> Option<Vec<f32>> {
    let len = channels * positions;
    if values.is_empty() || !len.is_multiple_of(values.len()) {
        return None;
    }
    let expanded: Vec<f32> = values.iter().cycle().take(len).copied().collect();
    expanded
        .chunks_exact(positions)
        .map(|plane| {
            plane
                .iter()
                .all(|v| v.to_bits() == plane[0].to_bits())
                .then_some(plane[0])
        })
        .collect()
}

/// The shortest prefix whose repetition gives `values` (which `cpu::with_constant` repeats).
fn shortest_period(values: Vec<f32>) -> Vec<f32> {
    let len = values.len();
    let period = (1..len)
        .filter(|p| len.is_multiple_of(*p))
        .find(|&p| (p..len).all(|i| values[i].to_bits() == values[i - p].to_bits()))
        .unwrap_or(len);
    values[..period].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_broadcast_per_feature_and_per_channel() {
        assert_eq!(
            broadcast(&[3], &[1.0, 2.0, 3.0], &[3]).unwrap(),
            [1.0, 2.0, 3.0]
        );
        assert_eq!(
            broadcast(&[1, 3], &[1.0, 2.0, 3.0], &[3]).unwrap(),
            [1.0, 2.0, 3.0]
        );
        assert_eq!(broadcast(&[], &[5.0], &[4]).unwrap(), [5.0]);
        // Per channel over [C=2, H=1, W=2]: each value twice.
        assert_eq!(
            broadcast(&[2, 1, 1], &[1.0, 2.0], &[2, 1, 2]).unwrap(),
            [1.0, 1.0, 2.0, 2.0]
        );
        assert!(
            broadcast(&[2, 3], &[0.0; 6], &[3])
                .unwrap_err()
                .contains("batch axis")
        );
        assert!(broadcast(&[4], &[0.0; 4], &[3]).is_err());
    }

    #[test]
    fn reshapes_keep_the_batch_axis() {
        assert_eq!(reshape(&[4, 2], &[-1, 8]).unwrap(), [8]);
        assert_eq!(reshape(&[1], &[-1, 1]).unwrap(), [1]);
        assert_eq!(reshape(&[8], &[0, 2, -1]).unwrap(), [2, 4]);
        assert_eq!(reshape(&[2, 4], &[0, 0, 4]).unwrap(), [2, 4]);
        assert!(
            reshape(&[8], &[-1]).is_err(),
            "folds the sample into the batch"
        );
        assert!(reshape(&[8], &[4, 2]).is_err());
        assert!(reshape(&[8], &[0, 3]).is_err());
    }

    #[test]
    fn squeezes_name_axes_after_the_batch() {
        assert_eq!(squeeze(&[3, 1], &[2], false).unwrap(), [3]);
        assert_eq!(squeeze(&[3], &[-1], true).unwrap(), [3, 1]);
        assert!(squeeze(&[3, 1], &[1], false).is_err());
        assert!(squeeze(&[3], &[0], true).is_err());
    }

    /// Each step's operation by name: `["Conv", "MaxPool", …]`.
    fn step_kinds(program: &Program) -> Vec<String> {
        program
            .steps
            .iter()
            .map(|s| {
                format!("{:?}", s.op)
                    .split([' ', '{'])
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn fixture(name: &str) -> Model {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        super::super::read(&root.join("tests/fixtures/onnx-aot").join(name)).unwrap()
    }

    /// A fixture with its node `name` changed.
    fn changed(file: &str, name: &str, change: impl FnOnce(&mut pb::NodeProto)) -> Model {
        let mut model = fixture(file);
        let graph = model.proto.graph.as_mut().unwrap();
        change(graph.node.iter_mut().find(|n| n.name() == name).unwrap());
        model
    }

    #[test]
    fn a_small_cnn_lowers_to_fused_convolutions_and_pools() {
        let program = fixture("digits-cnn.onnx")
            .lower("probabilities", &[1, 8, 8])
            .unwrap();
        let kinds = step_kinds(&program);
        assert_eq!(
            kinds,
            ["Conv", "MaxPool", "Conv", "AveragePool", "Dense", "Softmax"]
        );
        let first = &program.steps[0];
        let names: Vec<&str> = first.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["conv1", "norm1", "relu1"], "BN and ReLU folded in");
        assert!(matches!(
            first.op,
            Op::Conv {
                relu: true,
                groups: 1,
                ..
            }
        ));
        assert_eq!(first.output_shape, [12, 8, 8]);
        assert_eq!(program.steps[3].output_shape, [24, 2, 2]);
        assert_eq!(program.output.shape, [10]);
    }

    #[test]
    fn a_transpose_across_the_batch_axis_is_refused_naming_the_node() {
        let model = changed("cnn-ops.onnx", "channels_last", |node| {
            node.attribute[0].ints = vec![1, 0, 2, 3];
        });
        match model.lower("y", &[3, 9, 7]) {
            Err(NotCompiled::Node { node, why }) => {
                assert_eq!(node.name, "channels_last");
                assert!(why.contains("the batch axis must stay first"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn branches_read_their_tensors_by_number_and_fuse_only_what_nothing_else_reads() {
        let program = fixture("residual-mlp.onnx").lower("y", &[8]).unwrap();
        let step = |name: &str| {
            program
                .steps
                .iter()
                .find(|s| s.nodes.iter().any(|n| n.name == name))
                .unwrap()
        };
        // `fc1` + `relu1` fuse (the residual reads their result, not the Gemm's).
        let fc1 = step("fc1");
        assert!(matches!(fc1.op, Op::Dense { relu: true, .. }));
        let residual = step("residual");
        assert!(matches!(
            residual.op,
            Op::Elementwise {
                op: Binary::Add,
                repeat: 1
            }
        ));
        assert_eq!(residual.inputs, [step("relu2").output, fc1.output]);
        // The graph input is read twice by `double`, and again by `skip`.
        assert_eq!(step("double").inputs, [0, 0]);
        let skip = step("skip");
        assert_eq!(skip.inputs, [residual.output, 0]);
        assert_eq!(
            skip.op,
            Op::Concat {
                blocks: vec![16, 8]
            }
        );
        assert_eq!(program.result, program.steps.last().unwrap().output);
    }

    #[test]
    fn concat_across_the_batch_axis_and_other_broadcasts_are_refused() {
        let model = changed("residual-mlp.onnx", "skip", |node| {
            node.attribute[0].i = Some(0)
        });
        let Err(NotCompiled::Node { node, why }) = model.lower("y", &[8]) else {
            panic!("a Concat along the batch axis compiled");
        };
        assert_eq!(node.name, "skip");
        assert!(why.contains("the batch axis stays"), "{why}");
        assert_eq!(channel_repeat(&[4, 6, 6], &[4, 1, 1]), Some(36));
        assert_eq!(channel_repeat(&[4, 6], &[4, 6]), Some(1));
        assert_eq!(
            channel_repeat(&[4, 6, 6], &[1, 6, 6]),
            None,
            "over channels"
        );
        assert_eq!(channel_repeat(&[4, 6, 6], &[4, 1]), None);
    }

    #[test]
    fn torch_shape_arithmetic_folds_and_a_zero_pad_joins_the_convolution() {
        let program = fixture("torch-style-cnn.onnx")
            .lower("y", &[1, 8, 8])
            .unwrap();
        let kinds = step_kinds(&program);
        assert_eq!(kinds, ["Conv", "Pad", "MaxPool", "Dense", "LogSoftmax"]);
        let Op::Conv { window, .. } = &program.steps[0].op else {
            unreachable!()
        };
        assert_eq!((window.input, window.pads), ([8, 8], [1, 1, 1, 1]));
        assert_eq!(
            program.steps[0].inputs,
            [0],
            "reads the graph input, unpadded"
        );
        // The -0.5 padding before the pool stays a step of its own.
        assert!(matches!(program.steps[1].op, Op::Pad { value: -0.5, .. }));
        let names: Vec<&str> = program.steps[3]
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "/Shape",
                "/Gather",
                "/Unsqueeze",
                "/Concat",
                "/Reshape",
                "/fc/Gemm"
            ]
        );

        // The batch size moved off the first axis is refused, naming the Reshape.
        let model = changed("torch-style-cnn.onnx", "/Concat", |node| {
            node.input.swap(0, 1)
        });
        let Err(NotCompiled::Node { node, why }) = model.lower("y", &[1, 8, 8]) else {
            panic!("a batch size at axis 1 compiled");
        };
        assert_eq!(node.name, "/Reshape");
        assert!(why.contains("batch size at axis 1"), "{why}");
    }

    #[test]
    fn gathers_replace_their_axis_by_the_indices_shape() {
        let program = fixture("gather-ops.onnx").lower("y", &[4, 6]).unwrap();
        let gathers: Vec<(&[usize], &Op)> = program
            .steps
            .iter()
            .filter(|s| matches!(s.op, Op::Gather { .. }))
            .map(|s| (s.output_shape.as_slice(), &s.op))
            .collect();
        let [(pairs, pairs_op), (row, _), (picked, _)] = gathers[..] else {
            panic!("{gathers:?}");
        };
        assert_eq!((pairs, row, picked), (&[4, 2, 2][..], &[6][..], &[40][..]));
        // Negative indices count from the end of the axis: -4 of 6 is 2.
        assert_eq!(
            *pairs_op,
            Op::Gather {
                axis_len: 6,
                inner: 1,
                indices: vec![5, 0, 2, 2]
            }
        );
    }

    #[test]
    fn windows_resolve_auto_pad_and_one_dimensional_attributes() {
        let ints = |name: &str, values: &[i64]| pb::AttributeProto {
            name: Some(name.into()),
            ints: values.to_vec(),
            ..Default::default()
        };
        let text = |name: &str, value: &str| pb::AttributeProto {
            name: Some(name.into()),
            s: Some(value.as_bytes().to_vec()),
            ..Default::default()
        };
        let node = |attribute: Vec<pb::AttributeProto>| pb::NodeProto {
            attribute,
            ..Default::default()
        };
        // 2-D, kernel 4 over 5 with stride 2: three outputs need 3 values of padding in all,
        // the odd one after (SAME_UPPER) or before (SAME_LOWER).
        for (mode, pads) in [("SAME_UPPER", [1, 1, 2, 2]), ("SAME_LOWER", [2, 2, 1, 1])] {
            let same = node(vec![
                ints("kernel_shape", &[4, 4]),
                ints("strides", &[2, 2]),
                text("auto_pad", mode),
            ]);
            let w = window(&same, 3, [5, 5], false, None, false).unwrap();
            assert_eq!((w.pads, w.output), (pads, [3, 3]), "{mode}");
        }
        // 1-D attributes describe the width of a height-1 window.
        let one_d = node(vec![
            ints("kernel_shape", &[3]),
            ints("pads", &[2, 1]),
            ints("dilations", &[2]),
        ]);
        let w = window(&one_d, 2, [1, 9], true, None, false).unwrap();
        assert_eq!(
            (w.kernel, w.pads, w.dilations, w.output),
            ([1, 3], [0, 2, 0, 1], [1, 2], [1, 8])
        );
        let err = window(
            &node(vec![ints("pads", &[1, 1])]),
            2,
            [4, 4],
            false,
            Some([3, 3]),
            false,
        )
        .unwrap_err();
        assert!(
            err.contains("`pads` has 2 values for 2 spatial axes"),
            "{err}"
        );
    }

    #[test]
    fn periods_are_the_shortest_repeating_prefix() {
        assert_eq!(shortest_period(vec![1.0, 2.0, 1.0, 2.0]), [1.0, 2.0]);
        assert_eq!(shortest_period(vec![7.0; 6]), [7.0]);
        assert_eq!(shortest_period(vec![1.0, 2.0, 3.0]), [1.0, 2.0, 3.0]);
    }
}
