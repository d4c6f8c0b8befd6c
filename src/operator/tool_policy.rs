//! The tool policy flags of `rstream mcp serve`, as `mcp serve`, `codex setup` and `claude setup` take them and
//! as they are written into an agent's MCP entry: `--read-only`, `--tools a,b`, `--deny-tools a,b`,
//! `--allow-servers FILTER`.
//!
//! This is the flags' syntax only (comma lists, `name*` patterns, the `webtty list --filter` syntax of
//! `--allow-servers`); the MCP server checks the names against its catalog and enforces the policy
//! (`crate::mcp::policy`).

use crate::operator::filter::{self, BareWords};

/// The flags, normalised (lists trimmed, empty entries dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolPolicyFlags {
    /// Only tools that change nothing.
    pub read_only: bool,
    /// Only these tools (names or `prefix*` patterns); empty = no allowlist.
    pub tools: Vec<String>,
    /// Never these tools (names or `prefix*` patterns).
    pub deny_tools: Vec<String>,
    /// Only WebTTY servers matching this `webtty list --filter` expression.
    pub allow_servers: Option<String>,
}

impl ToolPolicyFlags {
    /// Parses the flag values; a malformed pattern or filter is an error naming it.
    pub fn new(
        read_only: bool,
        tools: Option<&str>,
        deny_tools: Option<&str>,
        allow_servers: Option<&str>,
    ) -> Result<ToolPolicyFlags, String> {
        let flags = ToolPolicyFlags {
            read_only,
            tools: patterns("--tools", tools)?,
            deny_tools: patterns("--deny-tools", deny_tools)?,
            allow_servers: allow_servers.map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned),
        };
        if tools.is_some() && flags.tools.is_empty() {
            return Err(
                "--tools needs at least one tool name (e.g. --tools rstream_webtty_list,rstream_webtty_exec)".into()
            );
        }
        if let Some(f) = &flags.allow_servers {
            filter::parse(f, BareWords::MatchNames).map_err(|e| format!("--allow-servers {f:?}: {e}"))?;
        } else if allow_servers.is_some() {
            return Err("--allow-servers needs a filter, e.g. labels.rstream.webtty.label.role=codex".into());
        }
        Ok(flags)
    }

    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        *self == ToolPolicyFlags::default()
    }

    /// The flags as `mcp serve` arguments, in a fixed order (what a setup writes into the entry).
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.read_only {
            args.push("--read-only".to_owned());
        }
        for (flag, list) in [("--tools", &self.tools), ("--deny-tools", &self.deny_tools)] {
            if !list.is_empty() {
                args.extend([flag.to_owned(), list.join(",")]);
            }
        }
        if let Some(f) = &self.allow_servers {
            args.extend(["--allow-servers".to_owned(), f.clone()]);
        }
        args
    }

    /// Whether these flags can leave `tool` enabled (`read_only_tool`: the tool changes nothing).
    pub fn may_enable(&self, tool: &str, read_only_tool: bool) -> bool {
        (!self.read_only || read_only_tool)
            && (self.tools.is_empty() || self.tools.iter().any(|p| pattern_matches(p, tool)))
            && !self.deny_tools.iter().any(|p| pattern_matches(p, tool))
    }
}

/// Whether `pattern` (a name, or `prefix*`) matches `tool`.
pub fn pattern_matches(pattern: &str, tool: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => tool.starts_with(prefix),
        None => pattern == tool,
    }
}

fn patterns(flag: &str, list: Option<&str>) -> Result<Vec<String>, String> {
    let items: Vec<String> =
        list.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    for item in &items {
        let name = item.strip_suffix('*').unwrap_or(item);
        if name.contains('*') || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{flag}: {item:?} is not a tool name or a name* pattern"));
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_to_serve_arguments_in_a_fixed_order() {
        let f =
            ToolPolicyFlags::new(true, Some(" rstream_webtty_*, ,rstream_runtime_status"), None, Some("labels.role=x"));
        let f = f.unwrap();
        assert_eq!(
            f.args(),
            ["--read-only", "--tools", "rstream_webtty_*,rstream_runtime_status", "--allow-servers", "labels.role=x"]
        );
        assert!(ToolPolicyFlags::new(false, None, None, None).unwrap().is_empty());
    }

    #[test]
    fn malformed_values_are_refused_with_the_flag() {
        assert!(ToolPolicyFlags::new(false, Some("a b"), None, None).unwrap_err().starts_with("--tools: \"a b\""));
        assert!(ToolPolicyFlags::new(false, None, Some("*x"), None).unwrap_err().starts_with("--deny-tools"));
        assert!(ToolPolicyFlags::new(false, Some(","), None, None).unwrap_err().contains("at least one"));
        assert!(ToolPolicyFlags::new(false, None, None, Some("colour=red"))
            .unwrap_err()
            .contains("unknown filter key"));
        assert!(ToolPolicyFlags::new(false, None, None, Some(" ")).is_err());
    }

    #[test]
    fn read_only_allow_and_deny_lists_combine() {
        let f = ToolPolicyFlags::new(true, Some("rstream_webtty_*"), Some("rstream_webtty_fs_read"), None).unwrap();
        assert!(f.may_enable("rstream_webtty_list", true));
        assert!(!f.may_enable("rstream_webtty_exec", false), "read-only");
        assert!(!f.may_enable("rstream_webtty_fs_read", true), "denied");
        assert!(!f.may_enable("rstream_runtime_status", true), "not in --tools");
        assert!(pattern_matches("rstream_*", "rstream_x") && !pattern_matches("rstream_x", "rstream_xy"));
    }
}
