//! `rstream webtty server|client|exec|list|fs`: remote commands, terminals and files.
//!
//! One file per subcommand: `server` (device), `client` and `exec` (operator sessions), `list` (inventory),
//! `fs` (WebDAV sidecar client: flags and dispatch) with `fs_transfer` (its reads, downloads and uploads), and
//! `tls_flags` (the clients' `--tls-*` flags, refused for URLs they would not apply to).

use std::path::Path;

use argh::FromArgs;

use super::{CliError, CliResult};
use crate::secret::Secret;

#[cfg(feature = "operator")]
pub mod client;
#[cfg(feature = "operator")]
pub mod exec;
#[cfg(feature = "operator")]
pub mod fs;
#[cfg(feature = "operator")]
pub mod fs_transfer;
#[cfg(feature = "operator")]
pub mod list;
#[cfg(feature = "device")]
pub mod server;
#[cfg(feature = "operator")]
pub mod tls_flags;

/// remote commands, terminals and files on devices running `rstream webtty server`
// Examples only of the commands this build has.
#[derive(FromArgs)]
#[argh(subcommand, name = "webtty")]
#[cfg_attr(
    feature = "device",
    argh(example = "rstream webtty server --rstream --name pi --fs-root ~/shared     # on the device")
)]
#[cfg_attr(
    feature = "operator",
    argh(
        example = "rstream webtty list",
        example = "rstream webtty exec --url rstrm://pi -- uname -a",
        example = "rstream webtty client --url rstrm://pi",
        example = "rstream webtty fs ls --url rstrm://pi /"
    )
)]
pub struct WebttyCommand {
    #[argh(subcommand)]
    pub command: WebttySub,
}

/// WebTTY subcommands.
#[derive(FromArgs)]
#[argh(subcommand)]
pub enum WebttySub {
    #[cfg(feature = "device")]
    Server(server::ServerCommand),
    #[cfg(feature = "operator")]
    Client(client::ClientCommand),
    #[cfg(feature = "operator")]
    Exec(exec::ExecCommand),
    #[cfg(feature = "operator")]
    List(list::ListCommand),
    #[cfg(feature = "operator")]
    Fs(fs::FsGroup),
}

impl WebttyCommand {
    /// Runs the selected command.
    pub fn run(self) -> CliResult {
        match self.command {
            #[cfg(feature = "device")]
            WebttySub::Server(c) => c.run(),
            #[cfg(feature = "operator")]
            WebttySub::Client(c) => c.run(),
            #[cfg(feature = "operator")]
            WebttySub::Exec(c) => c.run(),
            #[cfg(feature = "operator")]
            WebttySub::List(c) => c.run(),
            #[cfg(feature = "operator")]
            WebttySub::Fs(c) => c.0.run(),
        }
    }
}

/// Environment variable holding the bearer token of a local WebTTY server (same as `--auth-token-file`).
pub const AUTH_TOKEN_ENV: &str = "RSTREAM_WEBTTY_AUTH_TOKEN";

/// The local WebTTY bearer token (server and clients alike): the trimmed contents of `--auth-token-file`, else
/// `RSTREAM_WEBTTY_AUTH_TOKEN`; `None` when neither is set. An empty token is an error.
pub fn auth_token(file: Option<&Path>) -> Result<Option<Secret>, CliError> {
    let (token, source) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::new(format!("--auth-token-file {:?}: {e}", path.display().to_string())))?;
            (text, format!("--auth-token-file {:?}", path.display().to_string()))
        }
        None => match std::env::var(AUTH_TOKEN_ENV) {
            Ok(text) => (text, AUTH_TOKEN_ENV.to_string()),
            Err(_) => return Ok(None),
        },
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(CliError::new(format!("the webtty auth token from {source} is empty")));
    }
    Ok(Some(Secret::new(token)))
}
