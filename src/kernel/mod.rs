//! The kernel path: a Rust crate built twice (wasm32 and the host), shaken, optimized, validated,
//! measured and packed. The mirror image of [`crate::python`]: [`project`] reads what was given,
//! the stages ([`sources`], [`cargo_build`], [`shake`], [`optimize`], [`validate`], [`loader`])
//! each return a typed value without printing, [`pipeline`] runs them in order, telling a
//! reporter what happened, [`measure`] times the variants and [`assemble`] writes the manifest
//! from what they returned; [`verify`] reads a built bundle back (what a module is made of, and
//! its name map, are in [`crate::bundle`]: `diff` and `inspect` read them too).

pub mod assemble;
pub mod cargo_build;
pub mod loader;
pub mod measure;
pub mod optimize;
pub mod pipeline;
pub mod project;
pub mod rustc_wrapper;
pub mod shake;
pub mod sources;
pub mod validate;
pub mod verify;
