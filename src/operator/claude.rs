//! `rstream claude setup`: register `rstream mcp serve` with Claude Code through its own CLI.
//!
//! Claude Code keeps user/local MCP servers in its stateful `~/.claude.json`, so we never edit that file: we run
//! `claude mcp add <name> --scope <scope> [--env RSTREAM_CONFIG=…] -- <rstream> mcp serve [POLICY FLAGS]` (with
//! `--force`, `claude mcp remove` first). `--print` gives the `.mcp.json` block and the command line instead.

use std::path::{Path, PathBuf};

/// Where Claude Code stores the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// This project, private to the user.
    Local,
    /// Shared `.mcp.json` in the repository.
    Project,
    /// All projects of the user (default).
    User,
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Scope::Local),
            "project" => Ok(Scope::Project),
            "user" => Ok(Scope::User),
            other => Err(format!("invalid scope {other:?}: expected local, project, or user")),
        }
    }
}

impl Scope {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Project => "project",
            Scope::User => "user",
        }
    }
}

/// The registration to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaudeEntry {
    /// Server name (default `rstream`).
    pub name: String,
    /// Scope.
    pub scope: Scope,
    /// rstream executable.
    pub command: PathBuf,
    /// `RSTREAM_CONFIG` to propagate, if set.
    pub rstream_config: Option<String>,
    /// Tool policy flags appended to `mcp serve` (`--read-only`, …).
    pub policy_args: Vec<String>,
}

impl ClaudeEntry {
    /// Arguments of `claude mcp add …`.
    pub fn add_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["mcp".into(), "add".into(), self.name.clone(), "--scope".into()];
        args.push(self.scope.as_str().into());
        if let Some(cfg) = &self.rstream_config {
            args.push("--env".into());
            args.push(format!("RSTREAM_CONFIG={cfg}"));
        }
        args.extend(["--".into(), self.command.display().to_string()]);
        args.extend(self.serve_args());
        args
    }

    /// `mcp serve` and the policy flags.
    fn serve_args(&self) -> Vec<String> {
        ["mcp", "serve"].into_iter().map(str::to_owned).chain(self.policy_args.iter().cloned()).collect()
    }

    /// Arguments of `claude mcp remove …` (used by `--force`).
    pub fn remove_args(&self) -> Vec<String> {
        vec!["mcp".into(), "remove".into(), self.name.clone(), "--scope".into(), self.scope.as_str().into()]
    }

    /// What `--print` shows: the `.mcp.json` block and the equivalent command line.
    pub fn print_text(&self) -> String {
        let mut server = serde_json::json!({
            "type": "stdio",
            "command": self.command.display().to_string(),
            "args": self.serve_args(),
        });
        if let Some(cfg) = &self.rstream_config {
            server["env"] = serde_json::json!({ "RSTREAM_CONFIG": cfg });
        }
        let block = serde_json::json!({ "mcpServers": { self.name.clone(): server } });
        let pretty = serde_json::to_string_pretty(&block).unwrap_or_default();
        let line: Vec<String> =
            std::iter::once("claude".to_owned()).chain(self.add_args()).map(|a| shell_quote(&a)).collect();
        format!(
            "# Project scope: add this to .mcp.json at the repository root.\n{pretty}\n\n\
             # Any scope: register with the Claude Code CLI.\n{}\n",
            line.join(" ")
        )
    }
}

/// POSIX single-quote escaping (bare when the word is plainly safe).
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+".contains(c));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Finds an executable `name` on `PATH`.
pub fn find_on_path(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    path_var?.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(name)).find(|p| is_executable(p))
}

/// Whether `path` is a regular file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> ClaudeEntry {
        ClaudeEntry {
            name: "rstream".into(),
            scope: Scope::User,
            command: PathBuf::from("/opt/my tools/rstream"),
            rstream_config: Some("/home/u/.rstream/config.yaml".into()),
            policy_args: Vec::new(),
        }
    }

    #[test]
    fn add_command_line_matches_upstream() {
        assert_eq!(
            entry().add_args().join(" "),
            "mcp add rstream --scope user --env RSTREAM_CONFIG=/home/u/.rstream/config.yaml -- /opt/my tools/rstream mcp serve"
        );
        assert_eq!(entry().remove_args().join(" "), "mcp remove rstream --scope user");
    }

    #[test]
    fn print_gives_mcp_json_and_a_quoted_command_line() {
        let text = entry().print_text();
        assert!(text.starts_with("# Project scope: add this to .mcp.json at the repository root.\n{"), "{text}");
        let json_end = text.find("\n\n#").unwrap();
        let block: serde_json::Value = serde_json::from_str(&text[text.find('{').unwrap()..json_end]).unwrap();
        assert_eq!(block["mcpServers"]["rstream"]["args"], serde_json::json!(["mcp", "serve"]));
        assert_eq!(block["mcpServers"]["rstream"]["env"]["RSTREAM_CONFIG"], "/home/u/.rstream/config.yaml");
        assert!(text.contains("claude mcp add rstream --scope user --env RSTREAM_CONFIG=/home/u/.rstream/config.yaml -- '/opt/my tools/rstream' mcp serve"), "{text}");
    }

    #[test]
    fn policy_flags_follow_mcp_serve_in_both_forms() {
        let mut e = entry();
        e.policy_args = vec!["--read-only".into(), "--allow-servers".into(), "labels.role=codex,name=a b".into()];
        assert!(e
            .add_args()
            .join(" ")
            .ends_with("-- /opt/my tools/rstream mcp serve --read-only --allow-servers labels.role=codex,name=a b"));
        let text = e.print_text();
        assert!(text.contains("\"--read-only\","), "{text}");
        assert!(text.contains("mcp serve --read-only --allow-servers 'labels.role=codex,name=a b'"), "{text}");
    }

    #[test]
    fn scopes_parse_and_reject_unknown() {
        assert_eq!("project".parse::<Scope>().unwrap(), Scope::Project);
        assert_eq!(
            "global".parse::<Scope>().unwrap_err(),
            "invalid scope \"global\": expected local, project, or user"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
