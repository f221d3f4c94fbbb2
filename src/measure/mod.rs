//! Stage 6: measure each variant with the same metrics.

pub mod browser;
pub mod cuda_probe;
pub mod environment;
pub mod fit;
pub mod host;
pub mod native;
pub mod parity;
pub mod runner;
pub mod sizes;
pub mod stats;
pub mod threads;
pub mod timing;
pub mod variants;
pub mod wasm;
pub mod watchdog;
