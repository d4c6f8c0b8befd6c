//! `rstream webtty server|client|exec|list|fs`: remote commands, terminals and files.

use argh::FromArgs;

use super::{not_yet_implemented, CliResult};

/// remote commands, terminals and files on devices running `rstream webtty server`
#[derive(FromArgs)]
#[argh(subcommand, name = "webtty")]
pub struct WebttyCommand {
    #[argh(subcommand)]
    pub command: WebttySub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum WebttySub {
    Server(ServerCommand),
    Client(ClientCommand),
    Exec(ExecCommand),
    List(ListCommand),
    Fs(FsCommand),
}

/// run a WebTTY server (exec, PTY, optional WebDAV at /fs)
#[derive(FromArgs)]
#[argh(subcommand, name = "server")]
pub struct ServerCommand {}

/// interactive terminal on a WebTTY server
#[derive(FromArgs)]
#[argh(subcommand, name = "client")]
pub struct ClientCommand {}

/// run one command on a WebTTY server and capture its output
#[derive(FromArgs)]
#[argh(subcommand, name = "exec")]
pub struct ExecCommand {}

/// list WebTTY servers known to the engine
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
pub struct ListCommand {}

/// files on a WebTTY server's WebDAV sidecar
#[derive(FromArgs)]
#[argh(subcommand, name = "fs")]
pub struct FsCommand {}

impl WebttyCommand {
    /// Runs the selected command.
    pub fn run(self) -> CliResult {
        let name = match self.command {
            WebttySub::Server(_) => "webtty server",
            WebttySub::Client(_) => "webtty client",
            WebttySub::Exec(_) => "webtty exec",
            WebttySub::List(_) => "webtty list",
            WebttySub::Fs(_) => "webtty fs",
        };
        not_yet_implemented(name)
    }
}
