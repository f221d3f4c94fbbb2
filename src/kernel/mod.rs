//! The kernel path: a Rust crate built twice (wasm32 and the host), shaken, optimized, validated,
//! measured and packed. The mirror image of [`crate::python`]: [`project`] reads what was given,
//! the stages ([`sources`], [`cargo_build`], [`shake`], [`optimize`], [`validate`], [`loader`])
//! each return a typed value without printing, and [`pipeline`] runs them in order, telling a
//! reporter what happened.

pub mod cargo_build;
pub mod inspect;
pub mod loader;
pub mod names;
pub mod optimize;
pub mod pipeline;
pub mod project;
pub mod shake;
pub mod sources;
pub mod validate;
