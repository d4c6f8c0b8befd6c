//! `rstream forward [[host:]port]`: expose a local service through the engine.

use argh::FromArgs;

use super::{not_yet_implemented, CliResult};

/// expose a local TCP/HTTP service: published at https://<name>.t.<engine-host> by default, private with
/// --no-publish (reachable only as rstrm://<name> by authenticated clients)
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "forward",
    example = "rstream forward 3000 --name web",
    example = "rstream forward 127.0.0.1:8080 --name api --no-publish --label role=api -o json"
)]
pub struct ForwardCommand {
    /// local target, [host:]port (default localhost:8080)
    #[argh(positional)]
    pub target: Option<String>,
    /// tunnel name
    #[argh(option)]
    pub name: Option<String>,
    /// label key=value (repeatable)
    #[argh(option)]
    pub label: Vec<String>,
    /// publish on the engine's public host (default)
    #[argh(switch)]
    pub publish: bool,
    /// keep the tunnel private
    #[argh(switch)]
    pub no_publish: bool,
    /// an HTTP tunnel (default when published)
    #[argh(switch)]
    pub http: bool,
    /// a TLS passthrough tunnel
    #[argh(switch)]
    pub tls: bool,
    /// raw TCP tunnel
    #[argh(switch)]
    pub tcp: bool,
    /// output: text or json (one JSON object per line)
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    /// milliseconds between reconnect attempts (upper bound of the backoff; default 5000)
    #[argh(option)]
    pub retry_interval: Option<u64>,
    /// exit instead of reconnecting when the engine connection is lost
    #[argh(switch)]
    pub no_retry: bool,
}

impl ForwardCommand {
    /// Runs the forwarder until interrupted.
    pub fn run(self) -> CliResult {
        not_yet_implemented("forward")
    }
}
