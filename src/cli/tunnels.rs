//! `rstream tunnels list`: the engine's tunnel inventory, filtered by the engine.

use argh::FromArgs;

use super::terminal_text::printable;
use super::{output_or, CliError, CliResult, OutputFormat};
use crate::cli::output::Stdout;
use crate::config;
use crate::operator::api::EngineApi;
use crate::operator::filter::{parse, BareWords};
use crate::operator::inventory::TunnelInventory;

/// inspect the engine's tunnels
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "tunnels",
    example = "rstream tunnels list",
    example = "rstream tunnels list --filter 'labels.role=codex' -o json"
)]
pub struct TunnelsCommand {
    #[argh(subcommand)]
    pub command: TunnelsSub,
}

/// Tunnels subcommands.
#[derive(FromArgs)]
#[argh(subcommand)]
pub enum TunnelsSub {
    List(ListCommand),
}

/// list tunnels (filtering happens in the engine)
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "list",
    example = "rstream tunnels list",
    example = "rstream tunnels list --filter 'labels.role=codex' -o json",
    example = "rstream tunnels list --filter 'publish=false,label.env=*'",
    note = "Filter keys: id, name, type, status, client_id, user_id, protocol, hostname, publish, http_version, labels.<k> (or label.<k>); `*` or an empty value matches any value of a label."
)]
pub struct ListCommand {
    /// comma-separated key=value filters, all must match
    #[argh(option)]
    pub filter: Option<String>,
    /// output: table or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

impl TunnelsCommand {
    /// Runs the selected command.
    pub fn run(self) -> CliResult {
        let TunnelsSub::List(c) = self.command;
        let output = output_or(&c.output, OutputFormat::Table)?;
        let filter = parse(c.filter.as_deref().unwrap_or(""), BareWords::Refuse)?;
        let api = EngineApi::from_context(&config::resolve()?)?;
        let tunnels = smol::block_on(api.list_tunnels(&filter.tunnels))?;
        match output {
            OutputFormat::Json => {
                writeln!(Stdout, "{}", serde_json::to_string_pretty(&tunnels).map_err(CliError::from)?)?
            }
            OutputFormat::None => {}
            _ => print_table(&tunnels)?,
        }
        Ok(0)
    }
}

/// Widest LABELS cell in the table (`-o json` has them all).
const TABLE_LABELS_WIDTH: usize = 60;

/// `text` cut to `width` characters, with `…` when cut.
fn ellipsize(text: &str, width: usize) -> String {
    match text.char_indices().nth(width.saturating_sub(1)) {
        Some((i, _)) if text.chars().count() > width => format!("{}…", &text[..i]),
        _ => text.to_owned(),
    }
}

/// Prints the table; every cell is [`printable`] (device-chosen text cannot drive the terminal).
fn print_table(tunnels: &[TunnelInventory]) -> Result<(), CliError> {
    let cell = |text: &str| printable(text).into_owned();
    let width =
        |cells: &mut dyn Iterator<Item = &String>, min: usize| cells.map(|c| c.chars().count()).fold(min, usize::max);
    let ids: Vec<String> = tunnels.iter().map(|t| cell(&t.id)).collect();
    let names: Vec<String> = tunnels.iter().map(|t| cell(&t.name)).collect();
    let (id_w, name_w) = (width(&mut ids.iter(), 2), width(&mut names.iter(), 4));
    writeln!(
        Stdout,
        "{:<id_w$}  {:<name_w$}  {:<7}  {:<8}  {:<7}  {:<30}  LABELS",
        "ID", "NAME", "STATUS", "PROTOCOL", "PUBLISH", "HOST"
    )?;
    for ((t, id), name) in tunnels.iter().zip(&ids).zip(&names) {
        let labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{}={}", cell(k), cell(v))).collect();
        let labels = ellipsize(&labels.join(","), TABLE_LABELS_WIDTH);
        let publish = if t.publish.unwrap_or(true) { "yes" } else { "no" };
        let protocol = if t.protocol.is_empty() { "-".to_owned() } else { cell(&t.protocol) };
        let host = t.display_host();
        let host = if host.is_empty() { "-".to_owned() } else { cell(&host) };
        let status = cell(&t.status);
        writeln!(
            Stdout,
            "{id:<id_w$}  {name:<name_w$}  {status:<7}  {protocol:<8}  {publish:<7}  {host:<30}  {labels}"
        )?;
    }
    Ok(())
}
