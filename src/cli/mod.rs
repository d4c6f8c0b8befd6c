//! The command tree: one file per command group. Each command parses its flags (argh) and calls into the
//! library modules; no protocol or I/O logic lives here.
//!
//! A command returns [`CliResult`]: `Ok(code)` is the process exit code, `Err` prints `error: …` on stderr and
//! exits with the error's code (1 unless stated). Output goes through [`output::Stdout`] (`writeln!(Stdout, …)?`), never `println!`.

use std::fmt;

pub mod args;
#[cfg(feature = "client")]
pub mod context;
#[cfg(feature = "operator")]
pub mod dial;
#[cfg(feature = "operator")]
pub mod doctor;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "operator")]
pub mod events;
#[cfg(feature = "device")]
pub mod forward;
#[cfg(feature = "mcp")]
pub mod mcp;
#[cfg(all(feature = "mcp", feature = "device"))]
pub mod mcp_publish;
pub mod output;
#[cfg(feature = "operator")]
pub mod progress;
#[cfg(feature = "operator")]
pub mod setup;
#[cfg(feature = "operator")]
pub mod shared_flags;
#[cfg(feature = "operator")]
pub mod terminal_text;
#[cfg(feature = "operator")]
pub mod tunnels;
pub mod version;
#[cfg(any(feature = "device", feature = "operator"))]
pub mod webtty;

/// Exit code of a command that runs something remotely (`webtty exec`, `webtty client`) when rstream itself failed
/// (config, connect, authentication, unknown server, refused or lost session), as ssh does; any other code is the
/// remote command's.
pub const RSTREAM_FAILED_EXIT: u8 = 255;

/// Outcome of a command: the exit code on success.
pub type CliResult = Result<u8, CliError>;

/// A command failure: message for stderr and the process exit code.
#[derive(Debug)]
pub struct CliError {
    /// Exit code (non-zero).
    pub code: u8,
    /// One-line explanation.
    pub message: String,
}

impl CliError {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> Self {
        CliError { code: 1, message: message.into() }
    }

    /// A failure with a specific exit code.
    pub fn with_code(code: u8, message: impl Into<String>) -> Self {
        CliError { code: code.max(1), message: message.into() }
    }

    /// A failure that exits with `code` and prints nothing (stdout's reader went away).
    pub fn quiet(code: u8) -> Self {
        CliError { code: code.max(1), message: String::new() }
    }

    /// Whether this failure prints nothing.
    pub fn is_quiet(&self) -> bool {
        self.message.is_empty()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::new(e.to_string())
    }
}

/// Output format selected with `-o/--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Human table.
    Table,
    /// Human text.
    Text,
    /// Machine-readable JSON.
    Json,
    /// Nothing (exit code only).
    None,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "text" => Ok(OutputFormat::Text),
            "json" => Ok(OutputFormat::Json),
            "none" => Ok(OutputFormat::None),
            other => Err(format!("unknown output format {other:?}: expected table, text, json or none")),
        }
    }
}

/// argh parser for `-o` values.
pub fn parse_output(s: &str) -> Result<OutputFormat, String> {
    s.parse()
}

/// Serialises a small value as compact JSON without serde_json (so the device build can print JSON too):
/// serde-json-core into a heap buffer that doubles until the value fits (capped at 16 MiB).
#[cfg(feature = "client")]
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    let mut cap = 4096;
    loop {
        let mut buf = vec![0u8; cap];
        match serde_json_core::to_slice(value, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return String::from_utf8(buf).map_err(|e| CliError::new(format!("json output: {e}")));
            }
            Err(serde_json_core::ser::Error::BufferFull) if cap < 16 << 20 => cap *= 2,
            Err(e) => return Err(CliError::new(format!("json output: {e}"))),
        }
    }
}

/// Refuses the first of `flags` (`(spelling, given)`) that was given, saying `{flag} {why}`: for flags that mean
/// nothing in the mode the rest of the command line chose. A flag that would be ignored is a usage error, so the
/// user learns at once that it does not do what they meant.
pub fn refuse_given(flags: &[(&str, bool)], why: &str) -> Result<(), CliError> {
    match flags.iter().find(|(_, given)| *given) {
        Some((flag, _)) => Err(CliError::new(format!("{flag} {why}"))),
        None => Ok(()),
    }
}

/// Parses an optional `-o` value, falling back to `default`.
pub fn output_or(value: &Option<String>, default: OutputFormat) -> Result<OutputFormat, CliError> {
    value.as_deref().map_or(Ok(default), |v| v.parse().map_err(CliError::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_given_flag_is_refused_with_the_reason() {
        assert!(refuse_given(&[("--a", false), ("--b", false)], "is moot").is_ok());
        let refused = refuse_given(&[("--a", false), ("--b", true), ("--c", true)], "is moot here").unwrap_err();
        assert_eq!((refused.code, refused.message.as_str()), (1, "--b is moot here"));
    }
}
