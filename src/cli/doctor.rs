//! `rstream doctor`: check config, token, engine reachability and TLS, with hints.

use argh::FromArgs;

use super::{not_yet_implemented, CliResult};

/// diagnose the selected context: config, token, DNS, TLS, engine inventory
#[derive(FromArgs)]
#[argh(subcommand, name = "doctor", example = "rstream doctor -o json")]
pub struct DoctorCommand {
    /// output: table or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

impl DoctorCommand {
    /// Runs the checks.
    pub fn run(self) -> CliResult {
        not_yet_implemented("doctor")
    }
}
