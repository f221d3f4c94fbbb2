//! `cargo wasmpack-infer` / `cargo-wasmpack-infer`: a thin CLI over the library.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(code) = cargo_wasmpack_infer::kernel::rustc_wrapper::run_if_wrapping() {
        return ExitCode::from(code);
    }
    // SAFETY: nothing else runs yet.
    unsafe { cargo_wasmpack_infer::measure::native::keep_kernel_errors_cheap() };
    // As a cargo subcommand we are run as `cargo-wasmpack-infer wasmpack-infer <args>`.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "wasmpack-infer") {
        args.remove(1);
    }
    let cli = cli::Cli::parse_from(args);
    match cli.run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            cargo_wasmpack_infer::exit::code_for(&error)
        }
    }
}
