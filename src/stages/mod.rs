//! The build stages, in pipeline order. Each is a silent function returning a typed value.

pub mod cargo_build;
pub mod demo;
pub mod loader;
pub mod names;
pub mod optimize;
pub mod pack;
pub mod shake;
pub mod sources;
pub mod validate;
