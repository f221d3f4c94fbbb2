//! What the user gave us: the inputs, read and checked before anything is built.

pub mod kernel;
pub mod python;
pub mod python_layout;
