//! `rstream version` and `rstream --version` / `-V`: the version, the git commit when the build knew it
//! (`RSTREAM_GIT_COMMIT`, set by `make`), the target triple and the Cargo features this binary was built with.

use argh::FromArgs;
use serde::Serialize;

use super::{output_or, CliError, CliResult, OutputFormat};
use crate::cli::output::Stdout;

/// print the version, git commit, target and the features this binary was built with
#[derive(FromArgs)]
#[argh(subcommand, name = "version", example = "rstream version", example = "rstream version -o json")]
pub struct VersionCommand {
    /// output: text or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

/// What `rstream version -o json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Cargo package version.
    pub version: &'static str,
    /// Git commit the binary was built from, when the build environment named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<&'static str>,
    /// Target triple (`x86_64-unknown-linux-musl`).
    pub target: &'static str,
    /// Cargo features compiled in (`device`, `operator`, `mcp`, `engine`).
    pub features: Vec<&'static str>,
}

impl VersionInfo {
    /// This binary's facts.
    pub fn current() -> Self {
        let features = [
            ("device", cfg!(feature = "device")),
            ("operator", cfg!(feature = "operator")),
            ("mcp", cfg!(feature = "mcp")),
            ("engine", cfg!(feature = "engine")),
        ];
        VersionInfo {
            version: env!("CARGO_PKG_VERSION"),
            commit: option_env!("RSTREAM_GIT_COMMIT").map(str::trim).filter(|c| !c.is_empty()),
            target: env!("RSTREAM_TARGET"),
            features: features.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect(),
        }
    }

    /// `rstream 0.1.0 (commit 1a2b3c4d, x86_64-unknown-linux-musl) features: device,operator`.
    pub fn text(&self) -> String {
        let commit = self.commit.map(|c| format!("commit {c}, ")).unwrap_or_default();
        format!("rstream {} ({commit}{}) features: {}", self.version, self.target, self.features.join(","))
    }
}

impl VersionCommand {
    /// Prints the version in the chosen format.
    pub fn run(self) -> CliResult {
        let info = VersionInfo::current();
        match output_or(&self.output, OutputFormat::Text)? {
            OutputFormat::Json => writeln!(Stdout, "{}", json(&info)?)?,
            OutputFormat::None => {}
            _ => writeln!(Stdout, "{}", info.text())?,
        }
        Ok(0)
    }
}

#[cfg(feature = "client")]
fn json(info: &VersionInfo) -> Result<String, CliError> {
    super::to_json(info)
}

#[cfg(not(feature = "client"))]
fn json(_: &VersionInfo) -> Result<String, CliError> {
    Err(CliError::new("this build has no JSON output (feature `client`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_version_commit_target_and_features() {
        let info =
            VersionInfo { version: "1.2.3", commit: Some("abc123"), target: "t", features: vec!["device", "engine"] };
        assert_eq!(info.text(), "rstream 1.2.3 (commit abc123, t) features: device,engine");
        let info = VersionInfo { commit: None, ..info };
        assert_eq!(info.text(), "rstream 1.2.3 (t) features: device,engine");
        assert!(VersionInfo::current().target.contains(std::env::consts::ARCH));
    }
}
