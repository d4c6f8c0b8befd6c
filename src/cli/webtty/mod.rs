//! `rstream webtty server|client|exec|list|fs`: remote commands, terminals and files.
//!
//! One file per subcommand: `server` (device), `client` and `exec` (operator sessions), `list` (inventory),
//! `fs` (WebDAV sidecar client).

use argh::FromArgs;

use super::CliResult;

#[cfg(feature = "operator")]
pub mod client;
#[cfg(feature = "operator")]
pub mod exec;
#[cfg(feature = "operator")]
pub mod fs;
#[cfg(feature = "operator")]
pub mod list;
#[cfg(feature = "device")]
pub mod server;

/// remote commands, terminals and files on devices running `rstream webtty server`
#[derive(FromArgs)]
#[argh(subcommand, name = "webtty")]
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
    Fs(fs::FsCommand),
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
            WebttySub::Fs(c) => c.run(),
        }
    }
}
