use cargo_wasmpack_infer::manifest::Manifest;
use clap::Args;
use std::process::ExitCode;

/// Print the JSON Schema of manifest.json.
#[derive(Args)]
pub struct Opts {}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        print!("{}", Manifest::json_schema());
        Ok(ExitCode::SUCCESS)
    }
}
