//! `rstream webtty list`: list WebTTY servers known to the engine, discovered from tunnel labels.

use argh::FromArgs;

use crate::cli::{not_yet_implemented, CliResult};

/// list WebTTY servers known to the engine, discovered from tunnel labels
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
pub struct ListCommand {}

impl ListCommand {
    /// Runs the command.
    pub fn run(self) -> CliResult {
        not_yet_implemented("webtty list")
    }
}
