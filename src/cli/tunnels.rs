//! `rstream tunnels list`: the engine's tunnel inventory, filtered by the engine.

use argh::FromArgs;

use super::{not_yet_implemented, CliResult};

/// inspect the engine's tunnels
#[derive(FromArgs)]
#[argh(subcommand, name = "tunnels")]
pub struct TunnelsCommand {
    #[argh(subcommand)]
    pub command: TunnelsSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum TunnelsSub {
    List(ListCommand),
}

/// list tunnels
#[derive(FromArgs)]
#[argh(subcommand, name = "list", example = "rstream tunnels list --filter 'labels.role=codex' -o json")]
pub struct ListCommand {
    /// comma-separated key=value filters (name, id, status, protocol, publish, labels.<k>; `*` = any value)
    #[argh(option)]
    pub filter: Option<String>,
    /// output: table or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

impl TunnelsCommand {
    /// Runs the selected command.
    pub fn run(self) -> CliResult {
        not_yet_implemented("tunnels list")
    }
}
