//! `rstream webtty exec`: run one command on a WebTTY server and capture stdout, stderr and the exit code.

use argh::FromArgs;

use crate::cli::{not_yet_implemented, CliResult};

/// run one command on a WebTTY server and capture stdout, stderr and the exit code
#[derive(FromArgs)]
#[argh(subcommand, name = "exec")]
pub struct ExecCommand {}

impl ExecCommand {
    /// Runs the command.
    pub fn run(self) -> CliResult {
        not_yet_implemented("webtty exec")
    }
}
