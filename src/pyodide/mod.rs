//! The Python path: a project run through a Pyodide distribution (CPython compiled to WASM),
//! shaken to what it imports, measured against stock Pyodide and a native CPython.

pub mod deps;
pub mod dist;
pub mod inspect;
pub mod pipeline;
pub mod run;
pub mod shake;
pub mod split;
pub mod verify;
