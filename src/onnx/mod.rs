//! Reading ONNX models with the official schema (`onnx.proto` of ONNX 1.23, beside this file,
//! compiled to Rust by prost at build time): what `new kernel --onnx` needs to write a kernel for
//! a model, namely its graph inputs and outputs with element types and shapes, and its operators.

use crate::exit::input_error;
use crate::manifest::Dtype;
use anyhow::{Context, Result};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod codegen;
mod lower;

pub use codegen::{Generated, Provenance, WeightStorage, generate};
pub use lower::{COMPILED_OPS, NodeRef, NotCompiled, Op, Port, Program, Step};

#[allow(clippy::all, missing_docs)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

/// Larger models do not fit protobuf's 2 GiB message limit, nor a browser download.
const MAX_MODEL_BYTES: u64 = 1 << 31;

/// The operators tract-onnx 0.23.9 loads with its default features off (what the kernel
/// template depends on): every name its op registry inserts, read from its sources.
pub const TRACT_OPS: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "ArrayFeatureExtractor",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "AveragePool",
    "BatchNormalization",
    "BiasGelu",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "BlackmanWindow",
    "Cast",
    "CastLike",
    "CategoryMapper",
    "Ceil",
    "Celu",
    "Clip",
    "Compress",
    "Concat",
    "Constant",
    "ConstantLike",
    "ConstantOfShape",
    "Conv",
    "ConvInteger",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DFT",
    "DepthToSpace",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "DynamicQuantizeLinear",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "FastGelu",
    "Flatten",
    "Floor",
    "GRU",
    "Gather",
    "GatherBlockQuantized",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "GridSample",
    "GroupNormalization",
    "HammingWindow",
    "HannWindow",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "If",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LRN",
    "LSTM",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "LinearClassifier",
    "LinearRegressor",
    "Log",
    "LogSoftmax",
    "LpNormalization",
    "MatMul",
    "MatMulInteger",
    "MatMulNBits",
    "Max",
    "MaxPool",
    "Mean",
    "MeanVarianceNormalization",
    "MelWeightMatrix",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Multinomial",
    "Neg",
    "NonMaxSuppression",
    "NonZero",
    "Normalizer",
    "Not",
    "OneHot",
    "Or",
    "PRelu",
    "Pad",
    "ParametricSoftplus",
    "Pow",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "QuickGelu",
    "RMSNormalization",
    "RNN",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "RotaryEmbedding",
    "Round",
    "Rsqrt",
    "STFT",
    "ScaledTanh",
    "Scan",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "SimplifiedLayerNormalization",
    "Sin",
    "Sinh",
    "Size",
    "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Swish",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "TreeEnsembleClassifier",
    "Trilu",
    "Unsqueeze",
    "Where",
    "Xor",
];

/// One axis of a tensor's shape as the model declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(u64),
    /// A symbolic dimension, `dim_param` (e.g. `N`, `batch_size`).
    Named(String),
    /// Neither: left open, as skl2onnx leaves the batch axis.
    Open,
}

/// A graph input or output.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// `None` for an element type the kernel ABI has no dtype for (strings, bool, f16, …).
    pub dtype: Option<Dtype>,
    /// ONNX's name of the element type, e.g. `FLOAT`, `INT64`.
    pub elem_type: String,
    /// `None` when the model declares no shape.
    pub dims: Option<Vec<Dim>>,
}

/// A model file: its bytes, what its graph says, and the decoded model to lower.
#[derive(Debug, Clone)]
pub struct Model {
    pub bytes: Vec<u8>,
    pub summary: ModelSummary,
    proto: pb::ModelProto,
}

#[derive(Debug, Clone)]
pub struct ModelSummary {
    pub producer: String,
    /// `(domain, version)`; the default domain is `ai.onnx`.
    pub opsets: Vec<(String, i64)>,
    /// Inputs that are not initializers (weights).
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    /// Operator type → the names of the nodes that use it.
    pub operators: BTreeMap<String, Vec<String>>,
}

impl ModelSummary {
    /// Operators of the model tract cannot load, with the nodes that use them.
    pub fn unsupported_by_tract(&self) -> Vec<(&str, &[String])> {
        self.operators
            .iter()
            .filter(|(op, _)| !TRACT_OPS.contains(&op.as_str()))
            .map(|(op, nodes)| (op.as_str(), nodes.as_slice()))
            .collect()
    }
}

/// Reads the model at `path`; a file that is not an ONNX model is an input error naming it.
pub fn read(path: &Path) -> Result<Model> {
    let size = std::fs::metadata(path)
        .map_err(|e| input_error(format!("reading {}: {e}", path.display())))?
        .len();
    if size > MAX_MODEL_BYTES {
        return Err(input_error(format!(
            "{}: {size} bytes, over protobuf's 2 GiB limit for one model file",
            path.display()
        )));
    }
    let bytes = crate::fsx::read(path)?;
    let model = pb::ModelProto::decode(bytes.as_slice()).map_err(|e| {
        input_error(format!(
            "{} is not an ONNX model (protobuf: {e})",
            path.display()
        ))
    })?;
    let summary =
        summarize(&model).with_context(|| format!("reading the graph of {}", path.display()))?;
    Ok(Model {
        bytes,
        summary,
        proto: model,
    })
}

/// An output `Model::without_zipmap` turned back into the tensor its `ZipMap` mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct UnzippedOutput {
    pub name: String,
    pub classes: usize,
}

impl Model {
    /// skl2onnx ends a classifier with `ZipMap` (ai.onnx.ml) unless told not to: the
    /// probabilities become a sequence of `{class: probability}` maps, which no tensor holds.
    /// This is the model with each `ZipMap` that makes a graph output taken out and the tensor it
    /// mapped (f32, `[batch, classes]`) made that output, under the output's name; `None` when no
    /// output comes from a `ZipMap`.
    pub fn without_zipmap(&self) -> Result<Option<(Model, Vec<UnzippedOutput>)>> {
        use pb::tensor_shape_proto::{Dimension, dimension};
        let mut proto = self.proto.clone();
        let Some(graph) = proto.graph.as_mut() else {
            return Ok(None);
        };
        let batch = graph
            .input
            .iter()
            .find(|v| !graph.initializer.iter().any(|w| w.name() == v.name()))
            .and_then(|v| match v.r#type.as_ref()?.value.as_ref()? {
                pb::type_proto::Value::TensorType(t) => t.shape.as_ref()?.dim.first().cloned(),
                _ => None,
            })
            .unwrap_or(Dimension {
                value: Some(dimension::Value::DimParam("N".into())),
                ..Default::default()
            });
        let mut unzipped = Vec::new();
        let mut renames = Vec::new();
        graph.node.retain(|node| {
            let [mapped] = node.input.as_slice() else {
                return true;
            };
            let Some(output) = node.output.first() else {
                return true;
            };
            let is_graph_output = graph.output.iter().any(|o| o.name() == output);
            if node.op_type() != "ZipMap" || !is_graph_output {
                return true;
            }
            let classes = node
                .attribute
                .iter()
                .filter(|a| a.name().starts_with("classlabels_"))
                .map(|a| a.ints.len().max(a.strings.len()))
                .max()
                .unwrap_or(0);
            renames.push((mapped.clone(), output.clone()));
            unzipped.push(UnzippedOutput {
                name: output.clone(),
                classes,
            });
            false
        });
        if unzipped.is_empty() {
            return Ok(None);
        }
        // The mapped tensor takes the output's name wherever it is made or read.
        for node in &mut graph.node {
            for name in node.input.iter_mut().chain(node.output.iter_mut()) {
                if let Some((_, output)) = renames.iter().find(|(mapped, _)| mapped == name) {
                    *name = output.clone();
                }
            }
        }
        // Types declared for either name (the mapped tensor, the maps) no longer hold.
        graph.value_info.retain(|v| {
            !renames
                .iter()
                .any(|(mapped, output)| v.name() == mapped || v.name() == output)
        });
        for output in &mut graph.output {
            if let Some(found) = unzipped.iter().find(|u| u.name == output.name()) {
                let classes = Dimension {
                    value: (found.classes > 0)
                        .then_some(dimension::Value::DimValue(found.classes as i64)),
                    ..Default::default()
                };
                output.r#type = Some(pb::TypeProto {
                    value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                        elem_type: Some(pb::tensor_proto::DataType::Float as i32),
                        shape: Some(pb::TensorShapeProto {
                            dim: vec![batch.clone(), classes],
                        }),
                    })),
                    ..Default::default()
                });
            }
        }
        let summary = summarize(&proto).context("reading the graph without its ZipMap")?;
        Ok(Some((
            Model {
                bytes: proto.encode_to_vec(),
                summary,
                proto,
            },
            unzipped,
        )))
    }
}

fn summarize(model: &pb::ModelProto) -> Result<ModelSummary> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| input_error("the model has no graph".to_string()))?;
    let weights: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    let mut operators: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (index, node) in graph.node.iter().enumerate() {
        let name = match node.name() {
            "" => format!("#{index}"),
            name => name.to_string(),
        };
        operators
            .entry(node.op_type().to_string())
            .or_default()
            .push(name);
    }
    Ok(ModelSummary {
        producer: format!("{} {}", model.producer_name(), model.producer_version())
            .trim()
            .to_string(),
        opsets: model
            .opset_import
            .iter()
            .map(|o| {
                let domain = match o.domain() {
                    "" => "ai.onnx",
                    domain => domain,
                };
                (domain.to_string(), o.version())
            })
            .collect(),
        inputs: graph
            .input
            .iter()
            .filter(|v| !weights.contains(v.name()))
            .map(tensor_info)
            .collect(),
        outputs: graph.output.iter().map(tensor_info).collect(),
        operators,
    })
}

fn tensor_info(value: &pb::ValueInfoProto) -> TensorInfo {
    let tensor = value.r#type.as_ref().and_then(|t| match &t.value {
        Some(pb::type_proto::Value::TensorType(tensor)) => Some(tensor),
        _ => None,
    });
    let elem_type = tensor.map_or(0, |t| t.elem_type());
    let element = pb::tensor_proto::DataType::try_from(elem_type).ok();
    TensorInfo {
        name: value.name().to_string(),
        dtype: element.and_then(dtype_of),
        elem_type: element.map_or_else(
            || "not a tensor".to_string(),
            |e| e.as_str_name().to_string(),
        ),
        dims: tensor.and_then(|t| t.shape.as_ref()).map(|shape| {
            shape
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => {
                        Dim::Fixed(*v as u64)
                    }
                    Some(pb::tensor_shape_proto::dimension::Value::DimParam(p))
                        if !p.is_empty() =>
                    {
                        Dim::Named(p.clone())
                    }
                    _ => Dim::Open,
                })
                .collect()
        }),
    }
}

fn dtype_of(element: pb::tensor_proto::DataType) -> Option<Dtype> {
    use pb::tensor_proto::DataType as D;
    Some(match element {
        D::Float => Dtype::F32,
        D::Double => Dtype::F64,
        D::Int8 => Dtype::I8,
        D::Uint8 => Dtype::U8,
        D::Int16 => Dtype::I16,
        D::Uint16 => Dtype::U16,
        D::Int32 => Dtype::I32,
        D::Uint32 => Dtype::U32,
        D::Int64 => Dtype::I64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_digits_model_skl2onnx_wrote() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let model = read(&root.join("examples/digits-onnx/model/digits.onnx"))
            .unwrap()
            .summary;
        assert!(model.producer.starts_with("skl2onnx"), "{}", model.producer);
        assert_eq!(model.inputs.len(), 1, "weights are not inputs");
        let input = &model.inputs[0];
        assert_eq!((input.name.as_str(), input.dtype), ("X", Some(Dtype::F32)));
        assert_eq!(input.dims, Some(vec![Dim::Open, Dim::Fixed(64)]));
        let names: Vec<&str> = model.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["label", "probabilities"]);
        assert_eq!(model.outputs[0].dtype, Some(Dtype::I64));
        assert_eq!(model.outputs[1].dims, Some(vec![Dim::Open, Dim::Fixed(10)]));
        assert!(
            model.operators.contains_key("MatMul"),
            "{:?}",
            model.operators
        );
        assert!(model.unsupported_by_tract().is_empty());
    }

    #[test]
    fn other_files_are_input_errors_naming_them() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"\xff\xff\xff definitely not protobuf").unwrap();
        let err = format!("{:#}", read(file.path()).unwrap_err());
        assert!(err.contains("is not an ONNX model"), "{err}");
    }
}
