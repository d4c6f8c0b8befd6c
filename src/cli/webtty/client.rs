//! `rstream webtty client`: open an interactive terminal on a WebTTY server.
//!
//! Like ssh: without a command the remote login shell runs on a PTY — unless stdin is not a terminal, in which
//! case it runs without one (said on stderr) and reads its commands from stdin, so end of input ends the session.
//! rstream's own failures exit 255, a command the server cannot start 127 / 126, otherwise the remote status.

use std::io::IsTerminal;
use std::path::PathBuf;

use argh::FromArgs;

use super::exec::{parse_env, parse_user};
use super::tls_flags;
use crate::cli::output::BROKEN_PIPE_EXIT;
use crate::cli::{CliError, CliResult, RSTREAM_FAILED_EXIT};
use crate::webtty::client::command_exit_code;
use crate::webtty::client::terminal::{run_terminal, TerminalEnd, TerminalRequest};
use crate::webtty::WebttyError;

/// open an interactive terminal on a WebTTY server
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "client",
    example = "rstream webtty client --url rstrm://pi",
    example = "rstream webtty client --url ws://127.0.0.1:8080 --auth-token-file token -- htop",
    example = "rstream webtty client --url rstrm://pi -T -- journalctl -f",
    example = "rstream webtty client --url wss://pi.lan:8443 --tls-ca-file ca.pem --auth-token-file token",
    example = "rstream webtty client --url rstrm://lab --user ci",
    note = "Without a command: the remote user's login shell on a PTY (none when stdin is not a terminal; -t \
            forces one). The local terminal is put in raw mode and restored on exit; window resizes are forwarded. \
            Exits with the remote exit code; 126/127 when the command cannot be executed / is not found; 255 when \
            rstream itself failed (config, connect, authentication, unknown server, refused or lost session)."
)]
pub struct ClientCommand {
    /// server: rstrm://NAME or NAME (through the engine), ws://HOST:PORT or wss://HOST:PORT (default
    /// ws://127.0.0.1:8080)
    #[argh(option, default = "String::from(\"ws://127.0.0.1:8080\")")]
    pub url: String,
    /// forward stdin (default: on)
    #[argh(switch, short = 'i')]
    pub interactive: bool,
    /// do not forward stdin
    #[argh(switch, short = 'I')]
    pub no_interactive: bool,
    /// allocate a remote PTY (default: when no command is given and stdin is a terminal)
    #[argh(switch, short = 't')]
    pub tty: bool,
    /// do not allocate a remote PTY
    #[argh(switch, short = 'T')]
    pub no_tty: bool,
    /// environment for the remote command, KEY=VALUE or KEY (takes the local value) (repeatable)
    #[argh(option, short = 'e')]
    pub env: Vec<String>,
    /// remote working directory
    #[argh(option, short = 'w')]
    pub workdir: Option<String>,
    /// OS user (name or uid) to run as; servers refuse it unless started with --allow-client-user
    #[argh(option, short = 'u')]
    pub user: Option<String>,
    /// file holding the bearer token of a local server (or RSTREAM_WEBTTY_AUTH_TOKEN)
    #[argh(option)]
    pub auth_token_file: Option<PathBuf>,
    /// path of the exec endpoint on the server (default /)
    #[argh(option)]
    pub exec_path: Option<String>,
    /// wss:// only: PEM file of the CA that signed the server's --tls-cert-file (default: the context's CA)
    #[argh(option)]
    pub tls_ca_file: Option<PathBuf>,
    /// wss:// only: DNS name to verify in the server certificate (default: the URL host; needed for IP URLs)
    #[argh(option)]
    pub tls_server_name: Option<String>,
    /// wss:// only: do not verify the server certificate (insecure)
    #[argh(switch)]
    pub tls_insecure_skip_verify: bool,
    /// command and arguments (after --); default: login shell
    #[argh(positional, greedy)]
    pub command: Vec<String>,
}

impl ClientCommand {
    /// Runs the command.
    pub fn run(self) -> CliResult {
        let req = self.request().map_err(|e| CliError::with_code(RSTREAM_FAILED_EXIT, e.message))?;
        match smol::block_on(run_terminal(&self.url, req)) {
            Ok(TerminalEnd::Exited(0)) => Ok(0),
            Ok(TerminalEnd::Exited(code)) => Ok(code.clamp(1, 255) as u8),
            Ok(TerminalEnd::Signal(sig)) => Ok((128 + sig).clamp(1, 255) as u8),
            Err(WebttyError::OutputClosed(_)) => Err(CliError::quiet(BROKEN_PIPE_EXIT)),
            Err(e) => {
                let code = command_exit_code(&e).map_or(RSTREAM_FAILED_EXIT, |c| c.clamp(1, 255) as u8);
                Err(CliError::with_code(code, e.to_string()))
            }
        }
    }

    /// The session the flags describe. A PTY by default only when there is no command and stdin is a terminal.
    fn request(&self) -> Result<TerminalRequest, CliError> {
        if self.interactive && self.no_interactive {
            return Err(CliError::new("-i/--interactive and -I/--no-interactive are mutually exclusive"));
        }
        if self.tty && self.no_tty {
            return Err(CliError::new("-t/--tty and -T/--no-tty are mutually exclusive"));
        }
        let default_tty = !self.no_tty && self.command.is_empty();
        let tty = self.tty || (default_tty && std::io::stdin().is_terminal());
        if default_tty && !tty {
            eprintln!("Pseudo-terminal will not be allocated because stdin is not a terminal.");
        }
        let mut req = TerminalRequest {
            command: self.command.clone(),
            env: parse_env(&self.env)?,
            workdir: self.workdir.clone(),
            user: parse_user(&self.user)?,
            interactive: !self.no_interactive,
            tty,
            ..TerminalRequest::default()
        };
        req.connect = tls_flags::session_connect(
            &self.url,
            self.auth_token_file.as_deref(),
            &self.exec_path,
            &self.tls_ca_file,
            &self.tls_server_name,
            self.tls_insecure_skip_verify,
        )?;
        Ok(req)
    }
}
