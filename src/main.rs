//! `rstream` — one binary, four roles (engine, device agent, operator CLI, MCP server).
//!
//! This file holds only the top of the argh command tree, the global flags (accepted anywhere on the line, see
//! [`rstream::cli::args`]), and dispatch; every command lives in `cli/`. Help and errors are written without
//! panicking on a closed or full stdout (see [`rstream::cli::output`]).

use std::io::Write;
use std::process::ExitCode;

use argh::FromArgs;
use rstream::cli::args::{hoist_global_flags, GlobalFlag};
use rstream::cli::output;
use rstream::cli::output::Stdout;
use rstream::cli::version::{VersionCommand, VersionInfo};
use rstream::cli::{self, CliError, CliResult};

/// rstream: agent-native network layer for edge devices. Devices dial out to an engine; operators and AI
/// agents reach their commands, files and services through it.
// Examples only of the commands this build has.
#[derive(FromArgs)]
#[cfg_attr(
    feature = "engine",
    argh(example = "rstream engine serve                      # local engine, writes a ready-to-use context")
)]
#[cfg_attr(
    feature = "device",
    argh(
        example = "rstream webtty server --rstream --name pi --label role=codex",
        example = "rstream forward 3000 --name web"
    )
)]
#[cfg_attr(
    feature = "operator",
    argh(
        example = "rstream webtty list --filter 'labels.rstream.webtty.label.role=codex' -o json",
        example = "rstream webtty exec --url rstrm://pi -- uname -a"
    )
)]
#[argh(note = "--config, --context and -v work before or after the command (not after `--`). Environment: \
            RSTREAM_CONFIG (config file path), RSTREAM_CONTEXT, RSTREAM_ENGINE, RSTREAM_AUTHENTICATION_TOKEN.")]
struct Cli {
    /// config file to use instead of ~/.rstream/config.yaml (same as RSTREAM_CONFIG)
    #[argh(option)]
    config: Option<String>,
    /// context to use instead of the default one (same as RSTREAM_CONTEXT)
    #[argh(option)]
    context: Option<String>,
    /// verbose logging on stderr
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,
    #[argh(subcommand)]
    command: Option<Command>,
}

/// The flags of [`Cli`] that may also follow the command.
const GLOBAL_FLAGS: &[GlobalFlag] = &[
    GlobalFlag { spelling: "--config", takes_value: true },
    GlobalFlag { spelling: "--context", takes_value: true },
    GlobalFlag { spelling: "-v", takes_value: false },
    GlobalFlag { spelling: "--verbose", takes_value: false },
];

/// The name help and errors use for this program.
const PROGRAM: &str = "rstream";

// Parsed once per process; argh cannot box a subcommand, and the size does not matter here.
#[allow(clippy::large_enum_variant)]
#[derive(FromArgs)]
#[argh(subcommand)]
enum Command {
    #[cfg(feature = "engine")]
    Engine(cli::engine::EngineCommand),
    #[cfg(feature = "device")]
    Forward(cli::forward::ForwardCommand),
    #[cfg(any(feature = "device", feature = "operator"))]
    Webtty(cli::webtty::WebttyCommand),
    #[cfg(feature = "client")]
    Context(cli::context::ContextCommand),
    #[cfg(feature = "operator")]
    Tunnels(cli::tunnels::TunnelsCommand),
    #[cfg(feature = "operator")]
    Events(cli::events::EventsCommand),
    #[cfg(feature = "operator")]
    Dial(cli::dial::DialCommand),
    #[cfg(feature = "operator")]
    Doctor(cli::doctor::DoctorCommand),
    #[cfg(feature = "operator")]
    Codex(cli::setup::CodexCommand),
    #[cfg(feature = "operator")]
    Claude(cli::setup::ClaudeCommand),
    #[cfg(feature = "mcp")]
    Mcp(cli::mcp::McpCommand),
    Version(VersionCommand),
}

impl Command {
    fn run(self) -> CliResult {
        match self {
            #[cfg(feature = "engine")]
            Command::Engine(c) => c.run(),
            #[cfg(feature = "device")]
            Command::Forward(c) => c.run(),
            #[cfg(any(feature = "device", feature = "operator"))]
            Command::Webtty(c) => c.run(),
            #[cfg(feature = "client")]
            Command::Context(c) => c.run(),
            #[cfg(feature = "operator")]
            Command::Tunnels(c) => c.run(),
            #[cfg(feature = "operator")]
            Command::Events(c) => c.run(),
            #[cfg(feature = "operator")]
            Command::Dial(c) => c.run(),
            #[cfg(feature = "operator")]
            Command::Doctor(c) => c.run(),
            #[cfg(feature = "operator")]
            Command::Codex(c) => c.run(),
            #[cfg(feature = "operator")]
            Command::Claude(c) => c.run(),
            #[cfg(feature = "mcp")]
            Command::Mcp(c) => c.run(),
            Command::Version(c) => c.run(),
        }
    }
}

fn main() -> ExitCode {
    let result = parse().and_then(run).and_then(|code| output::flush().map(|()| code));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if !e.is_quiet() {
                // stderr may be gone too; there is no one left to tell then.
                let _ = writeln!(std::io::stderr(), "error: {e}");
            }
            ExitCode::from(e.code)
        }
    }
}

/// What the command line asks for: a command to run, or help / usage already answered.
enum Parsed {
    Run(Box<Cli>),
    Answered(u8),
}

fn parse() -> Result<Parsed, CliError> {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().map_err(|a| CliError::new(format!("argument {a:?} is not valid UTF-8"))))
        .collect::<Result<Vec<_>, _>>()?;
    let args = hoist_global_flags::<Cli>(&[PROGRAM], args, GLOBAL_FLAGS);
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match Cli::from_args(&[PROGRAM], &strs) {
        Ok(cli) => Ok(Parsed::Run(Box::new(cli))),
        Err(exit) if exit.status.is_ok() => {
            writeln!(Stdout, "{}", exit.output)?;
            Ok(Parsed::Answered(0))
        }
        Err(exit) => {
            let _ = writeln!(std::io::stderr(), "{}\nRun {PROGRAM} --help for more information.", exit.output);
            Ok(Parsed::Answered(usage_error_code(&strs)))
        }
    }
}

fn run(parsed: Parsed) -> CliResult {
    let cli = match parsed {
        Parsed::Run(cli) => cli,
        Parsed::Answered(code) => return Ok(code),
    };
    if cli.verbose {
        rstream::log::set_level(rstream::log::DEBUG);
    }
    // Global flags become the environment the rest of the program (and any child it spawns) resolves from.
    if let Some(path) = &cli.config {
        std::env::set_var("RSTREAM_CONFIG", path);
    }
    if let Some(name) = &cli.context {
        std::env::set_var("RSTREAM_CONTEXT", name);
    }
    match cli.command {
        Some(_) if cli.version => Err(CliError::new(
            "--version takes no command: run `rstream --version` alone, or `rstream version -o json`",
        )),
        Some(command) => command.run(),
        None if cli.version => {
            writeln!(Stdout, "{}", VersionInfo::current().text())?;
            Ok(0)
        }
        None => {
            let help = Cli::from_args(&[PROGRAM], &["--help"]).err().map(|e| e.output).unwrap_or_default();
            let _ = writeln!(std::io::stderr(), "{help}");
            Ok(1)
        }
    }
}

/// Exit code for a command line argh refused: [`cli::RSTREAM_FAILED_EXIT`] for `webtty exec` and `webtty client`
/// (their own failures exit 255 like ssh, so a usage error cannot pass for the remote command's status), else 1.
fn usage_error_code(args: &[&str]) -> u8 {
    let mut i = 0;
    while let Some(arg) = args.get(i).filter(|a| a.starts_with('-')) {
        let takes_value = GLOBAL_FLAGS.iter().any(|g| g.spelling == *arg && g.takes_value);
        i += if takes_value { 2 } else { 1 };
    }
    match args.get(i..).unwrap_or_default() {
        ["webtty", "exec" | "client", ..] => cli::RSTREAM_FAILED_EXIT,
        _ => 1,
    }
}
