//! The tool catalog: every tool this build offers, the policy that may disable some, and the dispatch of a
//! call to its family.
//!
//! Calls are synchronous functions run on a blocking thread by the server (network tools drive the smol-based
//! libraries with `smol::block_on` there), so everything below this file is plain code that unit tests call
//! directly. Each call gets a [`CallContext`]: the operator's environment, its cancellation, and the servers
//! the policy lets it touch.

use rmcp::model::{CallToolResult, JsonObject, Tool};

use super::args::{Args, ToolError};
use super::cancel::Cancel;
use super::operator_env::OperatorEnv;
use super::policy::{ServerAccess, ToolPolicy};
use super::remote_expose;
use super::remote_mcp;
use super::result::{to_call_result, ToolOutput};
use super::schema::ToolSpec;
use super::tools_context;
use super::tools_fs;
use super::tools_local_tunnel::{self, LocalTunnels};
use super::tools_tunnels;
use super::tools_webtty;
use crate::operator::tool_policy::ToolPolicyFlags;

/// What one tool call runs with.
pub struct CallContext<'a> {
    /// The operator's config and `RSTREAM_*` variables.
    pub env: &'a OperatorEnv,
    /// Fires when the client cancels the call.
    pub cancel: &'a Cancel,
    /// The WebTTY servers the policy allows.
    pub servers: &'a ServerAccess,
}

impl CallContext<'_> {
    /// Runs `work` to completion on this thread unless the call is cancelled first.
    pub fn block_on<T>(&self, work: impl std::future::Future<Output = Result<T, ToolError>>) -> Result<T, ToolError> {
        smol::block_on(self.cancel.guard(work))
    }
}

/// All tools, in listing order.
pub struct Catalog {
    specs: Vec<ToolSpec>,
    policy: ToolPolicy,
    env: OperatorEnv,
    local_tunnels: Option<LocalTunnels>,
}

impl Catalog {
    /// The catalog for this build, running against `env` under the policy `flags` (an error names a flag value
    /// that matches no tool).
    pub fn new(env: OperatorEnv, flags: ToolPolicyFlags) -> Result<Catalog, String> {
        let specs = Self::all_specs();
        let policy = ToolPolicy::new(flags, &specs)?;
        // Local tunnels run `rstream forward`, which only builds with the device feature.
        let local_tunnels = cfg!(feature = "device").then(|| {
            let exe = std::env::current_exe().unwrap_or_else(|_| "rstream".into());
            LocalTunnels::new(exe, env.config_path.clone())
        });
        Ok(Catalog { specs, policy, env, local_tunnels })
    }

    /// Every tool of this build, enabled or not.
    pub fn all_specs() -> Vec<ToolSpec> {
        let mut specs = tools_context::specs();
        specs.extend(tools_tunnels::specs());
        specs.extend(tools_webtty::specs());
        specs.extend(tools_fs::specs());
        specs.extend(remote_mcp::specs());
        specs.extend(remote_expose::specs());
        if cfg!(feature = "device") {
            specs.extend(tools_local_tunnel::specs());
        }
        specs
    }

    /// The policy in words for the `initialize` instructions.
    pub fn policy_summary(&self) -> Option<String> {
        self.policy.summary()
    }

    /// The MCP tool objects of the enabled tools.
    pub fn tools(&self) -> Vec<Tool> {
        self.specs.iter().filter(|s| self.policy.refusal(s).is_none()).map(ToolSpec::to_tool).collect()
    }

    /// One enabled tool object by name.
    pub fn tool(&self, name: &str) -> Option<Tool> {
        self.spec(name).filter(|s| self.policy.refusal(s).is_none()).map(ToolSpec::to_tool)
    }

    fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Runs one call to completion and shapes the result (tokens scrubbed).
    pub fn call(&self, name: &str, arguments: Option<JsonObject>, cancel: &Cancel) -> CallToolResult {
        let outcome = self.dispatch(name, arguments, cancel);
        to_call_result(outcome, &self.env.secrets())
    }

    fn dispatch(&self, name: &str, arguments: Option<JsonObject>, cancel: &Cancel) -> Result<ToolOutput, ToolError> {
        let Some(spec) = self.spec(name) else {
            let known: Vec<&str> =
                self.specs.iter().filter(|s| self.policy.refusal(s).is_none()).map(|s| s.name).collect();
            return Err(ToolError(format!("unknown tool {name:?} (available: {})", known.join(", "))));
        };
        if let Some(refusal) = self.policy.refusal(spec) {
            return Err(ToolError(refusal));
        }
        let args = Args::new(arguments, spec)?;
        let ctx = CallContext { env: &self.env, cancel, servers: self.policy.servers() };
        if let Some(out) = tools_context::call(name, &args, &self.env) {
            return out;
        }
        if let Some(out) = tools_tunnels::call(name, &args, &ctx) {
            return out;
        }
        if let Some(out) = tools_webtty::call(name, &args, &ctx) {
            return out;
        }
        if let Some(out) = tools_fs::call(name, &args, &ctx) {
            return out;
        }
        if let Some(out) = remote_mcp::call(name, &args, &ctx) {
            return out;
        }
        if let Some(out) = remote_expose::call(name, &args, &ctx) {
            return out;
        }
        if let Some(out) = self.local_tunnels.as_ref().and_then(|lt| lt.call(name, &args, cancel)) {
            return out;
        }
        Err(ToolError(format!("tool {name:?} is listed but has no handler in this build")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::annotations::TOOL_HINTS;
    use crate::mcp::result::first_text;
    use serde_json::{json, Value};
    use std::path::PathBuf;

    fn env() -> OperatorEnv {
        OperatorEnv::new(PathBuf::from("/nonexistent/rstream-mcp/config.yaml"), &[])
    }

    fn catalog() -> Catalog {
        Catalog::new(env(), ToolPolicyFlags::default()).unwrap()
    }

    #[test]
    fn every_tool_has_a_closed_input_schema_an_output_schema_and_a_row_of_hints() {
        let tools = catalog().tools();
        for tool in &tools {
            assert!(tool.name.starts_with("rstream_"), "{}", tool.name);
            assert!(tool.title.is_some() && tool.description.is_some(), "{}", tool.name);
            assert_eq!(tool.input_schema.get("additionalProperties"), Some(&json!(false)), "{}", tool.name);
            let output = tool.output_schema.as_ref().unwrap_or_else(|| panic!("{} has no outputSchema", tool.name));
            assert_eq!(output.get("type"), Some(&json!("object")), "{}", tool.name);
            assert!(TOOL_HINTS.iter().any(|(n, _)| *n == tool.name), "{} has no row in TOOL_HINTS", tool.name);
        }
        if cfg!(feature = "device") {
            for (name, _) in TOOL_HINTS {
                assert!(tools.iter().any(|t| t.name == *name), "TOOL_HINTS lists {name}, which no family offers");
            }
        }
    }

    #[test]
    fn unknown_tools_and_arguments_are_error_results_naming_the_alternatives() {
        let r = catalog().call("rstream_nope", None, &Cancel::never());
        assert_eq!(r.is_error, Some(true));
        assert!(first_text(&r).unwrap().contains("rstream_runtime_status"));
        let r = catalog().call("rstream_context_get", json!({"context": "x"}).as_object().cloned(), &Cancel::never());
        assert_eq!(first_text(&r), Some("unknown argument \"context\" for rstream_context_get (accepted: name)"));
    }

    #[test]
    fn a_read_only_catalog_lists_and_runs_only_tools_that_change_nothing() {
        let flags = ToolPolicyFlags::new(true, None, None, None).unwrap();
        let cat = Catalog::new(env(), flags).unwrap();
        let names: Vec<String> = cat.tools().iter().map(|t| t.name.to_string()).collect();
        assert!(
            names.contains(&"rstream_webtty_list".to_owned()) && !names.contains(&"rstream_webtty_exec".to_owned())
        );
        for tool in cat.tools() {
            assert_eq!(tool.annotations.unwrap().read_only_hint, Some(true), "{}", tool.name);
        }
        let args = json!({"url": "ws://127.0.0.1:1", "path": "/x", "content": "x"});
        let r = cat.call("rstream_webtty_fs_write", args.as_object().cloned(), &Cancel::never());
        assert_eq!(r.is_error, Some(true));
        assert!(first_text(&r).unwrap().contains("disabled on this MCP server by its tool policy: --read-only"));
        assert!(cat.tool("rstream_webtty_exec").is_none());
        let status = cat.call("rstream_runtime_status", None, &Cancel::never());
        assert_eq!(status.structured_content.as_ref().map(|v| v["ready"].clone()), Some(Value::Bool(false)));
    }
}
