//! `rstream` — one binary, four roles (engine, device agent, operator CLI, MCP server).
//!
//! This file holds only the top of the argh command tree and dispatch; every command lives in `cli/`.

use std::process::ExitCode;

use argh::FromArgs;
use rstream::cli;

/// rstream: agent-native network layer for edge devices. Devices dial out to an engine; operators and AI
/// agents reach their commands, files and services through it.
#[derive(FromArgs)]
#[argh(
    example = "rstream engine serve                      # local engine, writes a ready-to-use context",
    example = "rstream webtty server --rstream --name pi --label role=codex",
    example = "rstream webtty list --filter 'labels.rstream.webtty.label.role=codex' -o json",
    example = "rstream webtty exec --url rstrm://pi -- uname -a",
    note = "Environment: RSTREAM_CONFIG (config file path), RSTREAM_CONTEXT, RSTREAM_ENGINE, RSTREAM_AUTHENTICATION_TOKEN."
)]
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
    #[argh(subcommand)]
    command: Command,
}

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

/// print the version and the features this binary was built with
#[derive(FromArgs)]
#[argh(subcommand, name = "version")]
struct VersionCommand {}

fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "device") {
        f.push("device");
    }
    if cfg!(feature = "operator") {
        f.push("operator");
    }
    if cfg!(feature = "mcp") {
        f.push("mcp");
    }
    if cfg!(feature = "engine") {
        f.push("engine");
    }
    f
}

fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
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
    let result = match cli.command {
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
        Command::Dial(c) => c.run(),
        #[cfg(feature = "operator")]
        Command::Doctor(c) => c.run(),
        #[cfg(feature = "operator")]
        Command::Codex(c) => c.run(),
        #[cfg(feature = "operator")]
        Command::Claude(c) => c.run(),
        #[cfg(feature = "mcp")]
        Command::Mcp(c) => c.run(),
        Command::Version(_) => {
            println!(
                "rstream {} ({}) features: {}",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH,
                features().join(",")
            );
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.code)
        }
    }
}
