//! `rstream doctor`: check config, token, engine reachability and TLS, with a hint for every problem.

use argh::FromArgs;

use super::{output_or, CliError, CliResult, OutputFormat};
use crate::cli::output::Stdout;
use crate::operator::doctor;

/// diagnose the selected context: config, token, DNS, TLS, engine inventory, clock; exits 1 when a check fails
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "doctor",
    example = "rstream doctor",
    example = "rstream doctor -o json",
    example = "RSTREAM_CONTEXT=lab rstream doctor",
    note = "Checks: config, context, token, control_plane_auth, project, engine_address, dns, tls, engine_clients, engine_tunnels, clock."
)]
pub struct DoctorCommand {
    /// output: table or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

impl DoctorCommand {
    /// Runs the checks.
    pub fn run(self) -> CliResult {
        let output = output_or(&self.output, OutputFormat::Table)?;
        let report = smol::block_on(doctor::run());
        match output {
            OutputFormat::Json => {
                writeln!(Stdout, "{}", serde_json::to_string_pretty(&report).map_err(CliError::from)?)?
            }
            OutputFormat::None => {}
            _ => write!(Stdout, "{}", doctor::render_table(&report))?,
        }
        Ok(if report.failed() { 1 } else { 0 })
    }
}
