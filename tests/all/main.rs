//! Every integration test in one binary, as wasmtime keeps its `tests/all`: the crate links
//! wasmtime and binaryen once instead of once per test file. Each module runs the real binary
//! (or the library) on the examples and the fixtures in `tests/fixtures`.

mod browser;
mod check;
mod cli_cases;
mod common;
mod differential;
mod example;
mod hosts;
mod kernel;
mod onnx_aot;
mod python;
mod report;
mod workflow;
