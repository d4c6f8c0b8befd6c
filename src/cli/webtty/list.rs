//! `rstream webtty list`: WebTTY servers discovered from the engine's tunnel labels.

use argh::FromArgs;

use crate::cli::output::Stdout;
use crate::cli::terminal_text::printable;
use crate::cli::{output_or, CliError, CliResult, OutputFormat};
use crate::config;
use crate::operator::api::EngineApi;
use crate::operator::filter::{parse, BareWords};
use crate::operator::inventory::{list_webtty_servers, ServerInfo};

/// list WebTTY servers known to the engine, discovered from tunnel labels
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "list",
    example = "rstream webtty list",
    example = "rstream webtty list --filter 'labels.rstream.webtty.label.role=codex' -o json",
    example = "rstream webtty list --filter mini",
    note = "A filter part without `=` matches server names (case-insensitive substring; parts are ORed). Read `capabilities` before acting: an exec-only server has no filesystem sidecar. MODE is the execution mode: spawn (sessions run as the server's user) or login (as the OS user the server was started with --login-user)."
)]
pub struct ListCommand {
    /// comma-separated key=value filters (see `rstream tunnels list --help`) or name words
    #[argh(option)]
    pub filter: Option<String>,
    /// output: table or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

impl ListCommand {
    /// Runs the listing.
    pub fn run(self) -> CliResult {
        let output = output_or(&self.output, OutputFormat::Table)?;
        let filter = parse(self.filter.as_deref().unwrap_or(""), BareWords::MatchNames)?;
        let api = EngineApi::from_context(&config::resolve()?)?;
        let servers = smol::block_on(list_webtty_servers(&api, &filter))?;
        match output {
            OutputFormat::Json => {
                writeln!(Stdout, "{}", serde_json::to_string_pretty(&servers).map_err(CliError::from)?)?
            }
            OutputFormat::None => {}
            _ => print_table(&servers)?,
        }
        Ok(0)
    }
}

/// Prints the table; every cell is [`printable`] (device-chosen labels cannot drive the terminal).
fn print_table(servers: &[ServerInfo]) -> Result<(), CliError> {
    let cell = |text: &str| printable(text).into_owned();
    let targets: Vec<String> = servers.iter().map(|s| cell(&s.target)).collect();
    let w = targets.iter().map(|t| t.chars().count()).fold(6, usize::max);
    writeln!(
        Stdout,
        "{:<w$}  {:<7}  {:<12}  {:<6}  {:<10}  {:<24}  LABELS",
        "TARGET", "STATUS", "CAPABILITIES", "MODE", "FS MODE", "HOST"
    )?;
    for (s, target) in servers.iter().zip(&targets) {
        let fs_mode = if s.has("fs") { cell(&s.fs_mode) } else { "-".to_owned() };
        let mode = if s.execution_mode.is_empty() { "-".to_owned() } else { cell(&s.execution_mode) };
        let host = [s.hostname.as_str(), s.os_id.as_str(), s.arch.as_str()]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{}={}", cell(k), cell(v))).collect();
        writeln!(
            Stdout,
            "{target:<w$}  {:<7}  {:<12}  {mode:<6}  {fs_mode:<10}  {:<24}  {}",
            cell(&s.status),
            cell(&s.capabilities.join(",")),
            cell(&host),
            labels.join(",")
        )?;
    }
    Ok(())
}
