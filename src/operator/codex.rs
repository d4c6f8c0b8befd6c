//! `rstream codex setup`: splice `[mcp_servers.rstream]` into Codex's `config.toml`, format-preserving.
//!
//! The entry runs this binary as `rstream mcp serve` (plus the tool policy flags given to setup, e.g.
//! `--read-only`) with upstream's timeouts and carries whichever of `RSTREAM_API_URL`, `RSTREAM_CONFIG`,
//! `RSTREAM_CONTEXT` are set, so the MCP server sees the operator's context.
//! Decisions (upstream's statuses): no entry → `installed`; an identical, usable entry → `already_configured`
//! (file untouched); an entry someone customised (other keys, args, timeouts, env, or another working command)
//! → `conflict` unless `--force`; a broken entry (command missing or not executable, unreadable
//! `RSTREAM_CONFIG`) or `--force` → `repaired`. Everything outside our table stays byte-identical; an invalid
//! file is an error and is never rewritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};

use super::tool_policy::ToolPolicyFlags;

/// Env keys the entry may carry (in this order).
pub const ENTRY_ENV_KEYS: [&str; 3] = ["RSTREAM_API_URL", "RSTREAM_CONFIG", "RSTREAM_CONTEXT"];
/// `startup_timeout_sec` written.
pub const STARTUP_TIMEOUT_SEC: i64 = 30;
/// `tool_timeout_sec` written.
pub const TOOL_TIMEOUT_SEC: i64 = 300;

/// What the entry should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredEntry {
    /// Absolute path of the rstream executable.
    pub command: PathBuf,
    /// Environment to pass (subset of [`ENTRY_ENV_KEYS`], only non-empty values).
    pub env: BTreeMap<String, String>,
    /// `args`: `mcp`, `serve`, then the tool policy flags.
    pub args: Vec<String>,
}

impl DesiredEntry {
    /// The entry for `command` under the tool policy `policy`, taking env values from `lookup`.
    pub fn new(command: PathBuf, policy: &ToolPolicyFlags, lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let env = ENTRY_ENV_KEYS
            .iter()
            .filter_map(|k| lookup(k).filter(|v| !v.is_empty()).map(|v| ((*k).to_owned(), v)))
            .collect();
        let args = ["mcp", "serve"].into_iter().map(str::to_owned).chain(policy.args()).collect();
        DesiredEntry { command, env, args }
    }

    /// The TOML table of the entry.
    fn table(&self) -> Table {
        let mut t = Table::new();
        t.insert("command", value(self.command.display().to_string()));
        t.insert("args", value(Array::from_iter(self.args.iter().map(String::as_str))));
        t.insert("startup_timeout_sec", value(STARTUP_TIMEOUT_SEC));
        t.insert("tool_timeout_sec", value(TOOL_TIMEOUT_SEC));
        if !self.env.is_empty() {
            let mut env = InlineTable::new();
            for (k, v) in &self.env {
                env.insert(k, v.as_str().into());
            }
            t.insert("env", value(env));
        }
        t
    }

    /// The block as `--print` shows it.
    pub fn print_block(&self) -> String {
        let mut doc = DocumentMut::new();
        let mut servers = Table::new();
        servers.set_implicit(true);
        servers.insert("rstream", Item::Table(self.table()));
        doc.insert("mcp_servers", Item::Table(servers));
        doc.to_string()
    }
}

/// Outcome status, as upstream names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupStatus {
    /// Entry added.
    Installed,
    /// Entry already right; nothing written.
    AlreadyConfigured,
    /// Broken entry replaced, or replaced with `--force`.
    Repaired,
    /// Customised entry left alone; needs `--force`.
    Conflict,
    /// Written, but `--verify` failed.
    VerificationFailed,
}

/// One diagnostic line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Machine code (`configuration_installed`, `custom_configuration`, …).
    pub code: &'static str,
    /// `info`, `warning` or `error`.
    pub level: &'static str,
    /// For humans.
    pub message: String,
}

impl Diagnostic {
    fn new(code: &'static str, level: &'static str, message: impl Into<String>) -> Self {
        Diagnostic { code, level, message: message.into() }
    }
}

/// The decision for one config file.
#[derive(Debug)]
pub struct Plan {
    /// Resulting status.
    pub status: SetupStatus,
    /// New file text when something must be written.
    pub new_text: Option<String>,
    /// What was found.
    pub diagnostics: Vec<Diagnostic>,
}

/// Decides what to do with `existing` (the current file text, empty if absent). `usable` says whether a command
/// path exists and is executable; `readable` whether a file can be read.
pub fn plan(
    existing: &str,
    desired: &DesiredEntry,
    force: bool,
    usable: &dyn Fn(&Path) -> bool,
    readable: &dyn Fn(&Path) -> bool,
) -> Result<Plan, String> {
    let mut doc: DocumentMut = existing
        .parse()
        .map_err(|e| format!("codex config.toml is invalid TOML; fix its syntax before running setup: {e}"))?;
    let current = doc.get("mcp_servers").and_then(|s| s.get("rstream"));
    let mut diagnostics = Vec::new();
    let status = match current {
        None => {
            diagnostics.push(Diagnostic::new("configuration_installed", "info", "added [mcp_servers.rstream]"));
            SetupStatus::Installed
        }
        Some(item) => match assess(item, desired, usable, readable) {
            Assessment::Same => {
                let msg = "[mcp_servers.rstream] is already configured";
                diagnostics.push(Diagnostic::new("configuration_valid", "info", msg));
                return Ok(Plan { status: SetupStatus::AlreadyConfigured, new_text: None, diagnostics });
            }
            Assessment::Broken(code, why) => {
                diagnostics.push(Diagnostic::new(code, "warning", why));
                diagnostics.push(Diagnostic::new("configuration_repaired", "info", "replaced [mcp_servers.rstream]"));
                SetupStatus::Repaired
            }
            Assessment::Customised(why) if !force => {
                let msg = format!(
                    "existing rstream MCP configuration appears intentionally customized ({why}); re-run with \
                     --force to replace the complete [mcp_servers.rstream] subtree"
                );
                diagnostics.push(Diagnostic::new("force_required", "error", msg));
                return Ok(Plan { status: SetupStatus::Conflict, new_text: None, diagnostics });
            }
            Assessment::Customised(why) => {
                diagnostics.push(Diagnostic::new("custom_configuration", "warning", why));
                let msg = "replaced [mcp_servers.rstream] (--force)";
                diagnostics.push(Diagnostic::new("configuration_repaired", "info", msg));
                SetupStatus::Repaired
            }
        },
    };
    splice(&mut doc, desired)?;
    Ok(Plan { status, new_text: Some(doc.to_string()), diagnostics })
}

enum Assessment {
    Same,
    Broken(&'static str, String),
    Customised(String),
}

fn assess(
    item: &Item,
    desired: &DesiredEntry,
    usable: &dyn Fn(&Path) -> bool,
    readable: &dyn Fn(&Path) -> bool,
) -> Assessment {
    let Some(t) = item.as_table_like() else {
        return Assessment::Customised("mcp_servers.rstream is not a table".into());
    };
    let unknown: Vec<&str> = t
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !["command", "args", "startup_timeout_sec", "tool_timeout_sec", "env"].contains(k))
        .collect();
    if !unknown.is_empty() {
        return Assessment::Customised(format!("unknown keys: {}", unknown.join(", ")));
    }
    let command = t.get("command").and_then(Item::as_str).map(PathBuf::from);
    let env: Option<BTreeMap<String, String>> = match t.get("env") {
        None => Some(BTreeMap::new()),
        Some(e) => e
            .as_table_like()
            .and_then(|e| e.iter().map(|(k, v)| v.as_str().map(|v| (k.to_owned(), v.to_owned()))).collect()),
    };
    let Some(env) = env else { return Assessment::Customised("env is not a table of strings".into()) };
    if let Some(k) = env.keys().find(|k| !ENTRY_ENV_KEYS.contains(&k.as_str())) {
        return Assessment::Customised(format!("env sets {k}"));
    }
    let args: Option<Vec<&str>> =
        t.get("args").and_then(Item::as_array).map(|a| a.iter().filter_map(|v| v.as_str()).collect());
    let desired_args: Vec<&str> = desired.args.iter().map(String::as_str).collect();
    if args.as_deref() != Some(&desired_args[..]) {
        return Assessment::Customised(format!("args differ from {desired_args:?}"));
    }
    let int = |k| t.get(k).and_then(Item::as_integer);
    if int("startup_timeout_sec") != Some(STARTUP_TIMEOUT_SEC) || int("tool_timeout_sec") != Some(TOOL_TIMEOUT_SEC) {
        return Assessment::Customised("timeouts differ".into());
    }
    let Some(command) = command else { return Assessment::Broken("command_invalid", "command is missing".into()) };
    if !usable(&command) {
        let why = format!("command {} is missing or not executable", command.display());
        return Assessment::Broken("command_not_executable", why);
    }
    if let Some(cfg) = env.get("RSTREAM_CONFIG") {
        if !readable(Path::new(cfg)) {
            return Assessment::Broken("rstream_config_unreadable", format!("RSTREAM_CONFIG {cfg} is not readable"));
        }
    }
    if !same_file(&command, &desired.command) {
        return Assessment::Customised(format!("command is {}", command.display()));
    }
    if env != desired.env {
        return Assessment::Customised("env differs".into());
    }
    Assessment::Same
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

/// Replaces (or adds) `mcp_servers.rstream`, leaving everything else as it was.
fn splice(doc: &mut DocumentMut, desired: &DesiredEntry) -> Result<(), String> {
    let servers = doc.entry("mcp_servers").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    match servers {
        Item::Table(t) => {
            t.insert("rstream", Item::Table(desired.table()));
            Ok(())
        }
        Item::Value(v) if v.is_inline_table() => {
            let inline = v.as_inline_table_mut().expect("checked inline table");
            inline.insert("rstream", toml_edit::Value::InlineTable(desired.table().into_inline_table()));
            Ok(())
        }
        _ => Err("mcp_servers in codex config.toml is not a table".into()),
    }
}

/// Default Codex config path: `$CODEX_HOME/config.toml`, else `~/.codex/config.toml`.
pub fn default_config_path(lookup: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match lookup("CODEX_HOME").filter(|h| !h.is_empty()) {
        Some(home) => Path::new(&home).join("config.toml"),
        None => Path::new(&lookup("HOME").unwrap_or_else(|| "/".into())).join(".codex").join("config.toml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "RSTREAM_CONFIG").then(|| "/home/u/.rstream/config.yaml".to_owned())
    }

    fn desired() -> DesiredEntry {
        DesiredEntry::new(PathBuf::from("/usr/local/bin/rstream"), &ToolPolicyFlags::default(), &env)
    }

    fn yes(_: &Path) -> bool {
        true
    }

    fn no(_: &Path) -> bool {
        false
    }

    /// The file with our block (and the blank line that separates it) taken out.
    fn without_block(text: &str) -> String {
        let block = format!("\n{}", desired().print_block());
        assert!(text.contains(&block), "block missing:\n{text}");
        text.replacen(&block, "", 1)
    }

    const EXISTING: &str = "# my codex settings\nmodel = \"o4\"  # pinned\n\n[mcp_servers.other]\ncommand = \"other\"\n\n[profiles.fast]\nmodel = \"mini\"\n";

    #[test]
    fn fresh_file_gets_the_upstream_block() {
        let p = plan("", &desired(), false, &yes, &yes).unwrap();
        assert_eq!(p.status, SetupStatus::Installed);
        let text = p.new_text.unwrap();
        assert_eq!(
            text,
            "[mcp_servers.rstream]\ncommand = \"/usr/local/bin/rstream\"\nargs = [\"mcp\", \"serve\"]\n\
             startup_timeout_sec = 30\ntool_timeout_sec = 300\nenv = { RSTREAM_CONFIG = \"/home/u/.rstream/config.yaml\" }\n"
        );
        assert_eq!(text, desired().print_block());
    }

    #[test]
    fn existing_content_stays_byte_identical() {
        let text = plan(EXISTING, &desired(), false, &yes, &yes).unwrap().new_text.unwrap();
        assert_eq!(without_block(&text), EXISTING, "other content changed:\n{text}");
        // Grouped with the other MCP servers.
        assert!(text.find("[mcp_servers.rstream]") < text.find("[profiles.fast]"));
    }

    #[test]
    fn rerun_is_already_configured_and_writes_nothing() {
        let once = plan(EXISTING, &desired(), false, &yes, &yes).unwrap().new_text.unwrap();
        let again = plan(&once, &desired(), false, &yes, &yes).unwrap();
        assert_eq!((again.status, again.new_text), (SetupStatus::AlreadyConfigured, None));
    }

    #[test]
    fn customised_entry_is_a_conflict_until_forced() {
        let once = plan(EXISTING, &desired(), false, &yes, &yes).unwrap().new_text.unwrap();
        let custom = once.replace("tool_timeout_sec = 300", "tool_timeout_sec = 900\nenabled = true");
        let p = plan(&custom, &desired(), false, &yes, &yes).unwrap();
        assert_eq!((p.status, p.new_text.is_none()), (SetupStatus::Conflict, true));
        assert!(
            p.diagnostics[0].message.contains("unknown keys: enabled") && p.diagnostics[0].message.contains("--force")
        );
        let forced = plan(&custom, &desired(), true, &yes, &yes).unwrap();
        assert_eq!(forced.status, SetupStatus::Repaired);
        let text = forced.new_text.unwrap();
        assert!(!text.contains("enabled") && text.contains("tool_timeout_sec = 300"));
        assert_eq!(without_block(&text), EXISTING);
    }

    #[test]
    fn broken_command_is_repaired_without_force() {
        let once = plan("", &desired(), false, &yes, &yes).unwrap().new_text.unwrap();
        let broken = once.replace("/usr/local/bin/rstream", "/gone/rstream");
        let p = plan(&broken, &desired(), false, &no, &yes).unwrap();
        assert_eq!(p.status, SetupStatus::Repaired);
        assert_eq!(p.diagnostics[0].code, "command_not_executable");
        assert!(p.new_text.unwrap().contains("/usr/local/bin/rstream"));
        let p = plan(&once, &desired(), false, &yes, &no).unwrap();
        assert_eq!((p.status, p.diagnostics[0].code), (SetupStatus::Repaired, "rstream_config_unreadable"));
    }

    #[test]
    fn another_working_command_or_env_is_customised() {
        let once = plan("", &desired(), false, &yes, &yes).unwrap().new_text.unwrap();
        let other = once.replace("/usr/local/bin/rstream", "/opt/rstream");
        assert_eq!(plan(&other, &desired(), false, &yes, &yes).unwrap().status, SetupStatus::Conflict);
        let env = once.replace("RSTREAM_CONFIG = ", "FOO = \"1\", RSTREAM_CONFIG = ");
        assert_eq!(plan(&env, &desired(), false, &yes, &yes).unwrap().status, SetupStatus::Conflict);
    }

    #[test]
    fn policy_flags_are_written_into_args_and_a_different_policy_is_a_conflict() {
        let policy =
            ToolPolicyFlags::new(true, None, Some("rstream_webtty_fs_delete"), Some("labels.role=codex")).unwrap();
        let locked = DesiredEntry::new(PathBuf::from("/usr/local/bin/rstream"), &policy, &env);
        let text = plan("", &locked, false, &yes, &yes).unwrap().new_text.unwrap();
        assert!(
            text.contains(
                "args = [\"mcp\", \"serve\", \"--read-only\", \"--deny-tools\", \"rstream_webtty_fs_delete\", \
                 \"--allow-servers\", \"labels.role=codex\"]"
            ),
            "{text}"
        );
        assert_eq!(plan(&text, &locked, false, &yes, &yes).unwrap().status, SetupStatus::AlreadyConfigured);
        // Loosening the policy of an existing entry needs --force, like any other customisation.
        let p = plan(&text, &desired(), false, &yes, &yes).unwrap();
        assert_eq!(p.status, SetupStatus::Conflict);
        assert!(p.diagnostics[0].message.contains("args differ"), "{}", p.diagnostics[0].message);
    }

    #[test]
    fn invalid_toml_is_refused() {
        let err = plan("model = \n[broken", &desired(), false, &yes, &yes).unwrap_err();
        assert!(err.starts_with("codex config.toml is invalid TOML"), "{err}");
    }

    #[test]
    fn config_path_prefers_codex_home() {
        let env = |k: &str| match k {
            "CODEX_HOME" => Some("/c".to_owned()),
            "HOME" => Some("/h".to_owned()),
            _ => None,
        };
        assert_eq!(default_config_path(&env), PathBuf::from("/c/config.toml"));
        assert_eq!(
            default_config_path(&|k| (k == "HOME").then(|| "/h".to_owned())),
            PathBuf::from("/h/.codex/config.toml")
        );
    }
}
