//! `rstream webtty fs`: files on a WebTTY server's WebDAV sidecar.

use argh::FromArgs;

use crate::cli::{not_yet_implemented, CliResult};

/// files on a WebTTY server's WebDAV sidecar
#[derive(FromArgs)]
#[argh(subcommand, name = "fs")]
pub struct FsCommand {}

impl FsCommand {
    /// Runs the command.
    pub fn run(self) -> CliResult {
        not_yet_implemented("webtty fs")
    }
}
