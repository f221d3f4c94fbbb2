//! cargo-wasmpack-infer: turn an inference kernel into a measured release with a WASM variant and a
//! native sibling, described by one manifest.
//!
//! Data flows one way, each arrow a plain function over typed values:
//! [`project`] (what was given) → [`profile`] (how to build it) → [`stages`] (build, shake,
//! optimize, validate, pack) → [`measure`] → [`manifest`] → [`report`]. [`pipeline`] wires the
//! stages together and tells a [`report::Reporter`] what happened; nothing below it prints.

pub mod abi;
pub mod archive;
pub mod budget;
pub mod bundle;
pub mod diff;
pub mod exit;
pub mod fsx;
pub mod inspect;
pub mod manifest;
pub mod measure;
pub mod pipeline;
pub mod profile;
pub mod project;
pub mod pyodide;
pub mod report;
pub mod scaffold;
pub mod serve;
pub mod stages;
pub mod tools;
