//! `rstream webtty server`: run a WebTTY server: exec and PTY sessions over WebSocket, optional WebDAV sidecar at /fs.

use argh::FromArgs;

use crate::cli::{not_yet_implemented, CliResult};

/// run a WebTTY server: exec and PTY sessions over WebSocket, optional WebDAV sidecar at /fs
#[derive(FromArgs)]
#[argh(subcommand, name = "server")]
pub struct ServerCommand {}

impl ServerCommand {
    /// Runs the command.
    pub fn run(self) -> CliResult {
        not_yet_implemented("webtty server")
    }
}
