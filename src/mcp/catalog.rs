//! The tool catalog: every tool this build offers, and the dispatch of a call to its family.
//!
//! Calls are synchronous functions run on a blocking thread by the server (network tools drive the smol-based
//! libraries with `smol::block_on` there), so everything below this file is plain code that unit tests call
//! directly.

use rmcp::model::{CallToolResult, JsonObject, Tool};

use super::args::{Args, ToolError};
use super::operator_env::OperatorEnv;
use super::result::{to_call_result, ToolOutput};
use super::schema::ToolSpec;
use super::tools_context;
use super::tools_fs;
use super::tools_local_tunnel::{self, LocalTunnels};
use super::tools_webtty;

/// All tools, in listing order.
pub struct Catalog {
    specs: Vec<ToolSpec>,
    env: OperatorEnv,
    local_tunnels: Option<LocalTunnels>,
}

impl Catalog {
    /// The catalog for this build, running against `env`.
    pub fn new(env: OperatorEnv) -> Catalog {
        let mut specs = tools_context::specs();
        specs.extend(tools_webtty::specs());
        specs.extend(tools_fs::specs());
        // Local tunnels run `rstream forward`, which only builds with the device feature.
        let local_tunnels = cfg!(feature = "device").then(|| {
            let exe = std::env::current_exe().unwrap_or_else(|_| "rstream".into());
            LocalTunnels::new(exe, env.config_path.clone())
        });
        if local_tunnels.is_some() {
            specs.extend(tools_local_tunnel::specs());
        }
        Catalog { specs, env, local_tunnels }
    }

    /// The MCP tool objects.
    pub fn tools(&self) -> Vec<Tool> {
        self.specs.iter().map(ToolSpec::to_tool).collect()
    }

    /// One tool object by name.
    pub fn tool(&self, name: &str) -> Option<Tool> {
        self.spec(name).map(ToolSpec::to_tool)
    }

    fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Runs one call to completion and shapes the result (tokens scrubbed).
    pub fn call(&self, name: &str, arguments: Option<JsonObject>) -> CallToolResult {
        let outcome = self.dispatch(name, arguments);
        to_call_result(outcome, &self.env.secrets())
    }

    fn dispatch(&self, name: &str, arguments: Option<JsonObject>) -> Result<ToolOutput, ToolError> {
        let Some(spec) = self.spec(name) else {
            let known: Vec<&str> = self.specs.iter().map(|s| s.name).collect();
            return Err(ToolError(format!("unknown tool {name:?} (available: {})", known.join(", "))));
        };
        let args = Args::new(arguments, spec)?;
        if let Some(out) = tools_context::call(name, &args, &self.env) {
            return out;
        }
        if let Some(out) = tools_webtty::call(name, &args, &self.env) {
            return out;
        }
        if let Some(out) = tools_fs::call(name, &args, &self.env) {
            return out;
        }
        if let Some(out) = self.local_tunnels.as_ref().and_then(|lt| lt.call(name, &args)) {
            return out;
        }
        Err(ToolError(format!("tool {name:?} is listed but has no handler in this build")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::result::first_text;
    use serde_json::json;
    use std::path::PathBuf;

    fn catalog() -> Catalog {
        Catalog::new(OperatorEnv::new(PathBuf::from("/nonexistent/rstream-mcp/config.yaml"), &[]))
    }

    #[test]
    fn every_tool_has_a_closed_schema_a_title_and_annotations() {
        for tool in catalog().tools() {
            assert!(tool.name.starts_with("rstream_"), "{}", tool.name);
            assert!(tool.title.is_some() && tool.description.is_some(), "{}", tool.name);
            assert_eq!(tool.input_schema.get("additionalProperties"), Some(&json!(false)), "{}", tool.name);
            let a = tool.annotations.expect("annotations");
            assert!(a.read_only_hint.is_some() && a.destructive_hint.is_some() && a.open_world_hint.is_some());
        }
    }

    #[test]
    fn unknown_tools_and_arguments_are_error_results_naming_the_alternatives() {
        let r = catalog().call("rstream_nope", None);
        assert_eq!(r.is_error, Some(true));
        assert!(first_text(&r).unwrap().contains("rstream_runtime_status"));
        let r = catalog().call("rstream_context_get", json!({"context": "x"}).as_object().cloned());
        assert_eq!(first_text(&r), Some("unknown argument \"context\" for rstream_context_get (accepted: name)"));
    }
}
