//! `rstream context create|list|use|show|delete`: manage contexts in the config file.

use argh::FromArgs;

use super::{not_yet_implemented, CliResult};

/// manage contexts (engine address, token, CA) in ~/.rstream/config.yaml or $RSTREAM_CONFIG
#[derive(FromArgs)]
#[argh(subcommand, name = "context")]
pub struct ContextCommand {
    #[argh(subcommand)]
    pub command: ContextSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum ContextSub {
    Create(CreateCommand),
    List(ListCommand),
    Use(UseCommand),
    Show(ShowCommand),
    Delete(DeleteCommand),
}

/// create (or replace) a context
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "create",
    example = "rstream context create lab --engine relay.example.com:443 --token-file /etc/rstream/token --engine-tls-ca-file ca.pem --default"
)]
pub struct CreateCommand {
    /// context name
    #[argh(positional)]
    pub name: String,
    /// engine address host:port
    #[argh(option)]
    pub engine: String,
    /// file holding the token (stored inline in the config)
    #[argh(option)]
    pub token_file: Option<String>,
    /// the CA certificate (PEM) that signs the engine's certificate
    #[argh(option)]
    pub engine_tls_ca_file: Option<String>,
    /// the TLS server name if it differs from the engine host
    #[argh(option)]
    pub engine_tls_server_name: Option<String>,
    /// make it the default context
    #[argh(switch)]
    pub default: bool,
}

/// list contexts
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
pub struct ListCommand {
    /// output: table or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

/// make a context the default
#[derive(FromArgs)]
#[argh(subcommand, name = "use")]
pub struct UseCommand {
    /// context name
    #[argh(positional)]
    pub name: String,
}

/// show the resolved context (token redacted)
#[derive(FromArgs)]
#[argh(subcommand, name = "show")]
pub struct ShowCommand {
    /// context name (default: the selected one)
    #[argh(positional)]
    pub name: Option<String>,
    /// output: text or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

/// delete a context
#[derive(FromArgs)]
#[argh(subcommand, name = "delete")]
pub struct DeleteCommand {
    /// context name
    #[argh(positional)]
    pub name: String,
}

impl ContextCommand {
    /// Runs the selected context command.
    pub fn run(self) -> CliResult {
        not_yet_implemented("context")
    }
}
