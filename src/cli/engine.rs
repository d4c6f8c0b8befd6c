//! `rstream engine serve|token`: run the self-hosted relay, mint least-privilege tokens.

use argh::FromArgs;

use super::{not_yet_implemented, CliResult};

/// run or administer the self-hosted engine (relay)
#[derive(FromArgs)]
#[argh(subcommand, name = "engine")]
pub struct EngineCommand {
    #[argh(subcommand)]
    pub command: EngineSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum EngineSub {
    Serve(ServeCommand),
    Token(TokenCommand),
}

/// serve the engine; with no flags: a local engine on 127.0.0.1:8443 with a generated CA, certificate, secret
/// and an operator context written to the config
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "serve",
    example = "rstream engine serve",
    example = "rstream engine serve --listen 0.0.0.0:443 --host relay.example.com --cert c.pem --key k.pem"
)]
pub struct ServeCommand {
    /// the TLS listen address (default 127.0.0.1:8443)
    #[argh(option)]
    pub listen: Option<String>,
    /// plain-HTTP listener for published tunnels
    #[argh(option)]
    pub http_listen: Option<String>,
    /// public host name of the engine (repeatable; tunnels are <name>.t.<host>); default localhost
    #[argh(option)]
    pub host: Vec<String>,
    /// state directory (default $XDG_STATE_HOME/rstream/engine)
    #[argh(option)]
    pub state_dir: Option<String>,
    /// a PEM certificate chain (instead of the generated one)
    #[argh(option)]
    pub cert: Option<String>,
    /// the PEM private key for --cert
    #[argh(option)]
    pub key: Option<String>,
    /// file holding the HS256 secret (instead of the generated one)
    #[argh(option)]
    pub jwt_secret_file: Option<String>,
    /// do not write an operator context into the config file
    #[argh(switch)]
    pub no_context: bool,
}

/// mint a token signed by the engine's secret
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "token",
    example = "rstream engine token --permissions tunnels.tunnels.create-delete --ttl 30d"
)]
pub struct TokenCommand {
    /// comma-separated permission names (default: all)
    #[argh(option)]
    pub permissions: Option<String>,
    /// lifetime, e.g. 3600s, 12h, 30d (default: no expiry)
    #[argh(option)]
    pub ttl: Option<String>,
    /// state directory holding the secret
    #[argh(option)]
    pub state_dir: Option<String>,
    /// file holding the HS256 secret
    #[argh(option)]
    pub jwt_secret_file: Option<String>,
}

impl EngineCommand {
    /// Runs the selected engine command.
    pub fn run(self) -> CliResult {
        match self.command {
            EngineSub::Serve(_) => not_yet_implemented("engine serve"),
            EngineSub::Token(_) => not_yet_implemented("engine token"),
        }
    }
}
