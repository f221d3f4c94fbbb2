use cargo_wasmpack_infer::manifest::AnyManifest;
use clap::Args;
use std::process::ExitCode;

/// Print the JSON Schema of manifest.json: either kind of bundle, told apart by `kind`.
#[derive(Args)]
pub struct Opts {}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        print!("{}", AnyManifest::json_schema());
        Ok(ExitCode::SUCCESS)
    }
}
