//! The two variants of one kernel, as every parity and timing run takes them.

use crate::manifest::TensorSpec;
use crate::measure::timing::SampleSet;
use crate::profile::CUDA_FEATURE;
use std::path::Path;

/// The two variants of one kernel and the samples they are compared and timed on.
pub struct Variants<'a> {
    pub wasm: &'a [u8],
    pub native_library: &'a Path,
    pub samples: SampleSet<'a>,
    pub output: &'a TensorSpec,
    pub tolerance: f64,
    pub cuda: CudaRequest,
}

/// Whether the native library is built with CUDA, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CudaRequest {
    Requested,
    NotRequested(String),
}

impl CudaRequest {
    /// From the features a native library was built with.
    pub fn from_features(features: &[String]) -> Self {
        if features.iter().any(|f| f == CUDA_FEATURE) {
            Self::Requested
        } else {
            Self::NotRequested("the native library was built without the `cuda` feature".into())
        }
    }
}
