//! Exit codes, documented in the README, and the error type that selects one.

use std::process::ExitCode;

/// Everything went well.
pub const OK: u8 = 0;
/// The check the subcommand ran did not pass; each subcommand runs one kind, so the code is never
/// ambiguous: a budget was exceeded (`check`, `build --check`), a size grew over `--fail-over`
/// (`diff`), or a bundle differs from its manifest (`verify`).
pub const CHECK_FAILED: u8 = 1;
/// The command line or an input (crate, metadata, samples, bundle) is wrong: the user must fix it.
pub const USAGE: u8 = 2;
/// A build step or tool failed, or the artifacts disagree (parity, differential run).
pub const BUILD_FAILURE: u8 = 3;

/// An error in what the user gave us. Anywhere in an error's cause chain it selects [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Wraps a message as an [`InputError`].
pub fn input_error(message: impl Into<String>) -> anyhow::Error {
    InputError(message.into()).into()
}

/// The exit code for an error: [`USAGE`] when the cause is bad input, else [`BUILD_FAILURE`].
pub fn code_for(error: &anyhow::Error) -> ExitCode {
    let is_input = error.chain().any(|cause| cause.is::<InputError>());
    ExitCode::from(if is_input { USAGE } else { BUILD_FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn input_error_anywhere_in_the_chain_is_a_usage_error() {
        let err = Err::<(), _>(input_error("bad key"))
            .context("reading Cargo.toml")
            .unwrap_err();
        assert_eq!(code_for(&err), ExitCode::from(USAGE));
        let err = anyhow::anyhow!("wasm-opt crashed");
        assert_eq!(code_for(&err), ExitCode::from(BUILD_FAILURE));
    }
}
