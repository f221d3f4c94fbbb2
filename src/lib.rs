//! cargo-wasmpack-infer: turn an inference kernel into a measured release with a WASM variant and a
//! native sibling, described by one manifest.
//!
//! Data flows one way, each arrow a plain function over typed values: a project (what was given)
//! → [`profile`] (how to build it) → the stages of [`kernel`] or its mirror image [`python`] →
//! [`measure`] → [`manifest`] → [`report`]. Each pipeline runs its stages and tells a
//! [`report::Reporter`] what happened; nothing below it prints. [`bundle`] writes and reads the
//! bundle's files; [`manifest`] is the leaf everything else describes its results in.

pub mod abi;
pub mod archive;
pub mod budget;
pub mod bundle;
pub mod diff;
pub mod exit;
pub mod fsx;
pub mod kernel;
pub mod manifest;
pub mod measure;
pub mod onnx;
pub mod profile;
pub mod python;
pub mod report;
pub mod scaffold;
pub mod serve;
pub mod tools;
pub mod units;
