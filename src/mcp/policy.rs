//! The tool policy, enforced by the server and not by the prompt: which tools this server offers
//! (`--read-only`, `--tools`, `--deny-tools`) and which WebTTY servers its tools may touch (`--allow-servers`).
//!
//! A disabled tool is left out of `tools/list` and a call to it is an `isError` result naming the flag that
//! disabled it. `--allow-servers FILTER` (the `webtty list --filter` syntax) is applied to the server a `url`
//! resolves to, in the engine inventory, before anything is sent to it; the tool then dials that server by
//! tunnel id, so a name cannot be re-pointed between the check and the dial. Direct `ws://` URLs have no
//! inventory entry to check and are refused while the filter is set.

use super::args::ToolError;
use super::operator_env::OperatorEnv;
use super::schema::ToolSpec;
use crate::operator::filter::{self, BareWords, Filter};
use crate::operator::inventory::{list_webtty_servers, resolve_server, ServerInfo};
use crate::operator::tool_policy::{pattern_matches, ToolPolicyFlags};

/// The policy of one server.
#[derive(Clone, Debug, Default)]
pub struct ToolPolicy {
    flags: ToolPolicyFlags,
    servers: ServerAccess,
}

impl ToolPolicy {
    /// The policy `flags` describe, checked against the tools of this build: a name or pattern that matches no
    /// tool is an error (a typo must not silently leave a tool enabled).
    pub fn new(flags: ToolPolicyFlags, specs: &[ToolSpec]) -> Result<ToolPolicy, String> {
        for (flag, list) in [("--tools", &flags.tools), ("--deny-tools", &flags.deny_tools)] {
            if let Some(p) = list.iter().find(|p| !specs.iter().any(|s| pattern_matches(p, s.name))) {
                let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                return Err(format!("{flag}: {p:?} matches no tool (tools: {})", known.join(", ")));
            }
        }
        let servers = ServerAccess::new(flags.allow_servers.as_deref())?;
        Ok(ToolPolicy { flags, servers })
    }

    /// Why `spec` is disabled, or `None` when it is enabled.
    pub fn refusal(&self, spec: &ToolSpec) -> Option<String> {
        let f = &self.flags;
        let by = if f.read_only && !spec.hints().read_only {
            "--read-only (only tools that change nothing are enabled)".to_owned()
        } else if !f.tools.is_empty() && !f.tools.iter().any(|p| pattern_matches(p, spec.name)) {
            format!("--tools (enabled: {})", f.tools.join(", "))
        } else if f.deny_tools.iter().any(|p| pattern_matches(p, spec.name)) {
            "--deny-tools".to_owned()
        } else {
            return None;
        };
        Some(format!("{} is disabled on this MCP server by its tool policy: {by}", spec.name))
    }

    /// Which servers the tools may touch.
    pub fn servers(&self) -> &ServerAccess {
        &self.servers
    }

    /// The policy in words for the `initialize` instructions (`None` without one).
    pub fn summary(&self) -> Option<String> {
        if self.flags.is_empty() {
            return None;
        }
        let mut text = format!(
            "This server enforces a tool policy ({}): tools it disables are not listed and calls to them are \
             refused with an error naming the policy.",
            self.flags.args().join(" ")
        );
        if let Some(f) = &self.flags.allow_servers {
            text += &format!(
                " Only WebTTY servers matching {f:?} are listed or reachable; others are refused before anything \
                 is sent to them."
            );
        }
        Some(text)
    }
}

/// `--allow-servers`: the label filter a server must match.
#[derive(Clone, Debug, Default)]
pub struct ServerAccess {
    allow: Option<(String, Filter)>,
}

impl ServerAccess {
    /// Access limited to servers matching `filter` (`None`: every server).
    pub fn new(filter: Option<&str>) -> Result<ServerAccess, String> {
        let allow = match filter {
            None => None,
            Some(f) => {
                let parsed =
                    filter::parse(f, BareWords::MatchNames).map_err(|e| format!("--allow-servers {f:?}: {e}"))?;
                Some((f.to_owned(), parsed))
            }
        };
        Ok(ServerAccess { allow })
    }

    fn refused(filter: &str, why: String) -> ToolError {
        ToolError(format!("refused by the --allow-servers policy ({filter}): {why}"))
    }

    /// The URL to dial for `url` (already `rstrm://…` or `ws://…`): unchanged without a filter; with one, the
    /// matching online server's `rstrm://TUNNEL_ID` (its path kept), or a refusal naming the policy.
    pub async fn resolve(&self, env: &OperatorEnv, url: &str) -> Result<String, ToolError> {
        let Some((text, filter)) = &self.allow else { return Ok(url.to_owned()) };
        let Some(rest) = url.strip_prefix("rstrm://") else {
            let why = format!("{url} is a direct URL with no inventory entry to check; use an rstrm:// server");
            return Err(Self::refused(text, why));
        };
        let (name, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let name = name.strip_suffix(":443").unwrap_or(name); // the same server, as `Target::parse` reads it
        let api = env.engine_api()?;
        let allowed = list_webtty_servers(&api, filter).await.map_err(|e| ToolError(e.to_string()))?;
        let server = resolve_server(&allowed, name)
            .map_err(|_| Self::refused(text, format!("no WebTTY server matching the policy is named {name:?}")))?;
        if server.status != "online" {
            return Err(ToolError(format!("WebTTY server {:?} is not online", server.target)));
        }
        Ok(format!("rstrm://{}{path}", server.tunnel_id))
    }

    /// `servers` narrowed to those the policy allows (all of them without a filter).
    pub async fn visible(&self, env: &OperatorEnv, servers: Vec<ServerInfo>) -> Result<Vec<ServerInfo>, ToolError> {
        let Some(ids) = self.allowed_ids(env).await? else { return Ok(servers) };
        Ok(servers.into_iter().filter(|s| ids.contains(&s.tunnel_id)).collect())
    }

    /// Tunnel ids of the allowed WebTTY servers (`None`: no filter, all allowed).
    pub async fn allowed_ids(&self, env: &OperatorEnv) -> Result<Option<Vec<String>>, ToolError> {
        let Some((_, filter)) = &self.allow else { return Ok(None) };
        let api = env.engine_api()?;
        let allowed = list_webtty_servers(&api, filter).await.map_err(|e| ToolError(e.to_string()))?;
        Ok(Some(allowed.into_iter().map(|s| s.tunnel_id).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::schema::{output_object, ToolSpec};

    fn spec(name: &'static str) -> ToolSpec {
        ToolSpec {
            name,
            title: "t",
            description: "d",
            properties: vec![],
            required: &[],
            output: output_object(&[], &[]),
        }
    }

    fn policy(read_only: bool, tools: Option<&str>, deny: Option<&str>) -> Result<ToolPolicy, String> {
        let specs = [spec("rstream_webtty_exec"), spec("rstream_webtty_list"), spec("rstream_runtime_status")];
        ToolPolicy::new(ToolPolicyFlags::new(read_only, tools, deny, None)?, &specs)
    }

    #[test]
    fn refusals_name_the_flag_that_disabled_the_tool() {
        let p = policy(true, None, None).unwrap();
        assert!(p.refusal(&spec("rstream_webtty_exec")).unwrap().contains("--read-only"));
        assert_eq!(p.refusal(&spec("rstream_webtty_list")), None);
        let p = policy(false, Some("rstream_webtty_*"), Some("rstream_webtty_exec")).unwrap();
        assert!(p.refusal(&spec("rstream_runtime_status")).unwrap().contains("--tools (enabled: rstream_webtty_*)"));
        assert!(p.refusal(&spec("rstream_webtty_exec")).unwrap().contains("--deny-tools"));
        assert_eq!(p.refusal(&spec("rstream_webtty_list")), None);
        assert!(p.summary().unwrap().contains("--tools rstream_webtty_* --deny-tools rstream_webtty_exec"));
        assert!(policy(false, None, None).unwrap().summary().is_none());
    }

    #[test]
    fn names_that_match_no_tool_are_refused_at_start() {
        let err = policy(false, Some("rstream_webtty_exce"), None).unwrap_err();
        assert!(err.starts_with("--tools: \"rstream_webtty_exce\" matches no tool"), "{err}");
        assert!(policy(false, None, Some("nothing_*")).unwrap_err().starts_with("--deny-tools"));
    }

    #[test]
    fn direct_urls_are_refused_while_a_server_filter_is_set() {
        let access = ServerAccess::new(Some("labels.rstream.webtty.label.role=codex")).unwrap();
        let env = OperatorEnv::new("/nonexistent/config.yaml".into(), &[]);
        let err = smol::block_on(access.resolve(&env, "ws://127.0.0.1:1")).unwrap_err().0;
        assert!(
            err.starts_with("refused by the --allow-servers policy (labels.rstream.webtty.label.role=codex)"),
            "{err}"
        );
        let open = ServerAccess::new(None).unwrap();
        assert_eq!(smol::block_on(open.resolve(&env, "ws://127.0.0.1:1")).unwrap(), "ws://127.0.0.1:1");
    }
}
