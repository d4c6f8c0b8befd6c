//! `rstream webtty client`: open an interactive terminal on a WebTTY server.

use argh::FromArgs;

use crate::cli::{not_yet_implemented, CliResult};

/// open an interactive terminal on a WebTTY server
#[derive(FromArgs)]
#[argh(subcommand, name = "client")]
pub struct ClientCommand {}

impl ClientCommand {
    /// Runs the command.
    pub fn run(self) -> CliResult {
        not_yet_implemented("webtty client")
    }
}
