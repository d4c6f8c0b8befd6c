//! `rstream_runtime_status`, `rstream_context_list`, `rstream_context_get`: where the agent starts.
//!
//! They read the operator's config and environment only (no network). Tokens are never part of a result: a
//! context reports `token: true|false` (present or not), like `rstream context show`.

use serde::Serialize;
use serde_json::json;

use super::args::{Args, ToolError};
use super::operator_env::OperatorEnv;
use super::result::ToolOutput;
use super::schema::{boolean, field, output_list, output_object, string, ToolSpec};
use crate::config::{ConfigFile, ContextEntry};

/// Runtime status tool name.
pub const RUNTIME_STATUS: &str = "rstream_runtime_status";
/// Context list tool name.
pub const CONTEXT_LIST: &str = "rstream_context_list";
/// Context get tool name.
pub const CONTEXT_GET: &str = "rstream_context_get";

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: RUNTIME_STATUS,
            title: "Check rstream status",
            description: "Call this first. Reports whether rstream is ready to reach remote machines (a context \
                          with an engine address and a token is selected), which context and engine are in use, \
                          and which tool to call next. Reads local configuration only.",
            properties: vec![],
            required: &[],
            output: output_object(
                &[
                    ("ready", boolean("A context with an engine and a token is selected.")),
                    ("needs_login", boolean("Always false: self-hosted engines have no login flow.")),
                    ("needs_context", boolean("No usable context is selected.")),
                    ("selected_context", field(json!(["string", "null"]), "The selected context.")),
                    ("engine", field(json!(["string", "null"]), "The engine address in use.")),
                    ("token_present", boolean("The selected context has a token (never shown).")),
                    ("config_path", string("The config file read.")),
                    ("version", string("rstream version.")),
                    ("suggested_next_tool", field(json!(["string", "null"]), "The tool to call next.")),
                    ("agent_guidance", string("What to do next, in words.")),
                ],
                &["ready", "needs_context", "agent_guidance"],
            ),
        },
        ToolSpec {
            name: CONTEXT_LIST,
            title: "List rstream contexts",
            description: "Lists the contexts in the operator's rstream config (engine address, CA file, whether a \
                          token is present, which one is the default and which one is selected). Tokens are never \
                          shown.",
            properties: vec![],
            required: &[],
            output: output_list("contexts", "The contexts of the config file.", &context_fields(), &[]),
        },
        ToolSpec {
            name: CONTEXT_GET,
            title: "Inspect rstream context",
            description: "Shows one context as the tools will use it, after RSTREAM_ENGINE / \
                          RSTREAM_AUTHENTICATION_TOKEN overrides. Without `name`: the selected context. Tokens are \
                          never shown, only whether one is present.",
            properties: vec![("name", string("Context name; default: the selected context."))],
            required: &[],
            output: output_object(&context_fields(), &["engine", "token"]),
        },
    ]
}

/// The fields of one context in a result.
fn context_fields() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("name", field(json!(["string", "null"]), "Context name (null when RSTREAM_ENGINE alone defines it).")),
        ("default", boolean("The config's default context.")),
        ("selected", boolean("The context the tools use.")),
        ("engine", string("Engine address host:port.")),
        ("token", boolean("A token is present (never shown).")),
    ]
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, env: &OperatorEnv) -> Option<Result<ToolOutput, ToolError>> {
    Some(match name {
        RUNTIME_STATUS => Ok(runtime_status(env)),
        CONTEXT_LIST => context_list(env),
        CONTEXT_GET => args.opt_str("name").and_then(|n| context_get(env, n.as_deref())),
        _ => return None,
    })
}

/// `rstream_runtime_status` result.
#[derive(Debug, Serialize)]
struct RuntimeStatus {
    ready: bool,
    needs_login: bool,
    needs_context: bool,
    selected_context: Option<String>,
    engine: Option<String>,
    token_present: bool,
    config_path: String,
    version: &'static str,
    suggested_next_tool: Option<&'static str>,
    agent_guidance: String,
}

fn runtime_status(env: &OperatorEnv) -> ToolOutput {
    let mut s = RuntimeStatus {
        ready: false,
        needs_login: false,
        needs_context: true,
        selected_context: None,
        engine: None,
        token_present: false,
        config_path: env.config_path.display().to_string(),
        version: env!("CARGO_PKG_VERSION"),
        suggested_next_tool: None,
        agent_guidance: String::new(),
    };
    let cfg = match env.load_config() {
        Ok(cfg) => cfg,
        Err(e) => {
            s.agent_guidance = format!(
                "The rstream config cannot be read: {e}. Ask the operator to fix or recreate it \
                 (`rstream context create NAME --engine HOST:PORT --token-file FILE --default`)."
            );
            return ToolOutput::json(s);
        }
    };
    match env.resolve_in(&cfg, None) {
        Ok(r) => {
            s.needs_context = false;
            s.selected_context = r.name.clone();
            s.engine = Some(r.engine.clone());
            s.token_present = r.token.is_some();
            if s.token_present {
                s.ready = true;
                s.suggested_next_tool = Some("rstream_webtty_list");
                s.agent_guidance = READY_GUIDANCE.to_owned();
            } else {
                s.agent_guidance = format!(
                    "Context {} (engine {}) has no token, so the engine will refuse requests. Ask the operator to \
                     recreate it with `rstream context create NAME --engine {} --token-file FILE` or to set \
                     RSTREAM_AUTHENTICATION_TOKEN for this MCP server.",
                    r.name.as_deref().unwrap_or("(from RSTREAM_ENGINE)"),
                    r.engine,
                    r.engine
                );
            }
        }
        Err(e) => {
            if !cfg.contexts.is_empty() {
                s.suggested_next_tool = Some(CONTEXT_LIST);
            }
            s.agent_guidance = format!(
                "No usable rstream context: {e}. Ask the operator to fix this (`rstream engine serve` starts a local \
                 engine and writes a ready context), then call rstream_runtime_status again."
            );
        }
    }
    ToolOutput::json(s)
}

const READY_GUIDANCE: &str = "Ready. Next: rstream_webtty_list to find remote servers (filter e.g. \
    labels.rstream.webtty.label.role=codex). Read each server's `capabilities` before acting: exec-only servers \
    take rstream_webtty_exec only; rstream_webtty_fs_* need `fs`. Use the server's `rstream_url` as `url`. \
    Filesystem paths are relative to the server's fs root.";

/// One context as the tools show it (no secrets).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextView {
    name: Option<String>,
    default: bool,
    selected: bool,
    engine: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<String>,
    token: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_path: Option<String>,
}

fn entry_view(cfg: &ConfigFile, entry: &ContextEntry, selected: Option<&str>) -> ContextView {
    ContextView {
        name: Some(entry.name.clone()),
        default: cfg.default_context_name() == Some(entry.name.as_str()),
        selected: selected == Some(entry.name.as_str()),
        engine: entry.engine.clone().unwrap_or_default(),
        api_url: entry.api_url.clone(),
        ca_file: entry.tls().and_then(|t| t.ca_file.clone()),
        token: entry.inline_token().ok().flatten().is_some(),
        config_path: None,
    }
}

fn context_list(env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
    let cfg = env.load_config().map_err(|e| ToolError(e.to_string()))?;
    let selected =
        env.var("RSTREAM_CONTEXT").map(str::to_owned).or_else(|| cfg.default_context_name().map(str::to_owned));
    let views: Vec<ContextView> = cfg.contexts.iter().map(|e| entry_view(&cfg, e, selected.as_deref())).collect();
    Ok(ToolOutput::json(json!({ "contexts": views })))
}

fn context_get(env: &OperatorEnv, name: Option<&str>) -> Result<ToolOutput, ToolError> {
    let cfg = env.load_config().map_err(|e| ToolError(e.to_string()))?;
    let r = env.resolve_in(&cfg, name).map_err(|e| ToolError(e.to_string()))?;
    let selected = env.var("RSTREAM_CONTEXT").or(cfg.default_context_name());
    let view = ContextView {
        name: r.name.clone(),
        default: r.name.is_some() && r.name.as_deref() == cfg.default_context_name(),
        selected: r.name.is_some() && r.name.as_deref() == selected,
        engine: r.engine.clone(),
        api_url: r.api_url.clone(),
        ca_file: r.ca_file.as_ref().map(|p| p.display().to_string()),
        token: r.token.is_some(),
        config_path: Some(r.config_path.display().to_string()),
    };
    let mut value = serde_json::to_value(view).unwrap_or_else(|_| json!({}));
    value["tokenOverridden"] = json!(env.var("RSTREAM_AUTHENTICATION_TOKEN").is_some());
    value["engineOverridden"] = json!(env.var("RSTREAM_ENGINE").is_some());
    Ok(ToolOutput::Json { value, is_error: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ContextEntry;
    use serde_json::Value;
    use std::path::{Path, PathBuf};

    fn config_with_two(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rstream-mcp-ctx-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yaml");
        let mut cfg = ConfigFile::empty();
        cfg.upsert_context(ContextEntry::engine_only("lab", "lab:443", Some("SECRET-1"), Some(Path::new("ca.pem"))));
        cfg.upsert_context(ContextEntry::engine_only("bare", "bare:443", None, None));
        cfg.set_default("lab");
        cfg.save(&path).unwrap();
        path
    }

    fn value(out: ToolOutput) -> Value {
        match out {
            ToolOutput::Json { value, .. } => value,
            other => panic!("not json: {other:?}"),
        }
    }

    #[test]
    fn runtime_status_is_ready_with_a_token_and_points_at_webtty_list() {
        let env = OperatorEnv::new(config_with_two("ready"), &[]);
        let s = value(runtime_status(&env));
        assert_eq!((s["ready"].clone(), s["needs_context"].clone()), (json!(true), json!(false)));
        assert_eq!((s["selected_context"].as_str(), s["engine"].as_str()), (Some("lab"), Some("lab:443")));
        assert_eq!(s["suggested_next_tool"], "rstream_webtty_list");
        assert!(s["agent_guidance"].as_str().unwrap().contains("capabilities"));
        assert!(!s.to_string().contains("SECRET-1"));
    }

    #[test]
    fn runtime_status_explains_a_missing_token_or_context() {
        let env = OperatorEnv::new(config_with_two("notoken"), &[("RSTREAM_CONTEXT", "bare")]);
        let s = value(runtime_status(&env));
        assert_eq!((s["ready"].clone(), s["token_present"].clone()), (json!(false), json!(false)));
        assert!(s["agent_guidance"].as_str().unwrap().contains("has no token"), "{s}");
        let env = OperatorEnv::new(PathBuf::from("/nonexistent/rstream/config.yaml"), &[]);
        let s = value(runtime_status(&env));
        assert_eq!((s["ready"].clone(), s["needs_context"].clone()), (json!(false), json!(true)));
        assert!(s["agent_guidance"].as_str().unwrap().contains("rstream engine serve"), "{s}");
        assert_eq!(s["suggested_next_tool"], Value::Null);
    }

    #[test]
    fn context_list_marks_default_and_selected_and_hides_tokens() {
        let env = OperatorEnv::new(config_with_two("list"), &[("RSTREAM_CONTEXT", "bare")]);
        let list = value(context_list(&env).unwrap())["contexts"].clone();
        assert_eq!(list[0]["name"], "lab");
        assert_eq!((list[0]["default"].clone(), list[0]["selected"].clone()), (json!(true), json!(false)));
        assert_eq!((list[0]["token"].clone(), list[1]["token"].clone()), (json!(true), json!(false)));
        assert_eq!(list[1]["selected"], json!(true));
        assert!(!list.to_string().contains("SECRET-1"));
    }

    #[test]
    fn context_get_resolves_by_name_and_reports_overrides() {
        let path = config_with_two("get");
        let env = OperatorEnv::new(path.clone(), &[("RSTREAM_ENGINE", "relay:9")]);
        let v = value(context_get(&env, Some("lab")).unwrap());
        assert_eq!((v["name"].as_str(), v["engine"].as_str()), (Some("lab"), Some("relay:9")));
        assert_eq!((v["token"].clone(), v["engineOverridden"].clone()), (json!(true), json!(true)));
        assert_eq!(v["caFile"], path.parent().unwrap().join("ca.pem").display().to_string());
        let err = context_get(&env, Some("nope")).unwrap_err();
        assert!(err.0.contains("\"nope\" not found") && err.0.contains("known: lab, bare"), "{err}");
    }
}
