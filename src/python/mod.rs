//! The Python path: a project run through a Pyodide distribution (CPython compiled to WASM),
//! shaken to what it imports, measured against stock Pyodide and a native CPython. The mirror
//! image of [`crate::kernel`]: [`project`] (with [`app_source`]) reads what was given, the stages
//! ([`dist`], [`deps`], [`run`], [`shake`], [`split`]) return typed values, [`pipeline`] runs
//! them, [`measure`] times stock, bundle and native CPython and [`assemble`] writes the manifest
//! from what they returned; [`verify`] and [`inspect`] read a built bundle back.

pub mod app_source;
pub mod assemble;
pub mod deps;
pub mod dist;
pub mod inspect;
pub mod link_plan;
pub mod loader;
pub mod measure;
pub mod pipeline;
pub mod placeholder_thunks;
pub mod project;
pub mod run;
pub mod shake;
pub mod snapshot;
pub mod split;
pub mod static_reads;
pub mod verify;
