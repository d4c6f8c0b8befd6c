//! Remote MCP: `rstream_remote_mcp_discover` finds the MCP endpoints online behind the engine (tunnels labelled
//! `application-protocol=rstream.mcp`, e.g. `rstream mcp publish` or `forward --label
//! application-protocol=rstream.mcp`), `rstream_remote_mcp_tools` lists one endpoint's tools and
//! `rstream_remote_mcp_call` calls one, through [`super::remote_mcp_client`].
//!
//! Shapes as upstream: discover returns `{endpoints:[{id, name, path, rstrm_url, status, token_auth, url?,
//! labels?}]}`; tools and call return the remote JSON-RPC response object `{jsonrpc, id, result|error}`, an
//! error result when it carries `error` (or, for a call, a result flagged `isError`).

use serde_json::{json, Map, Value};

use super::args::{Args, ToolError};
use super::catalog::CallContext;
use super::remote_mcp_client::{McpUrl, RemoteMcp, DEFAULT_MCP_PATH};
use super::result::ToolOutput;
use super::schema::{field, output_list, output_object, string, ToolSpec};
use crate::operator::filter::{self, BareWords};
use crate::operator::inventory::{TunnelInventory, APPLICATION_PROTOCOL_LABEL};
use crate::secret::Secret;

/// Discover tool name.
pub const DISCOVER: &str = "rstream_remote_mcp_discover";
/// Tools tool name.
pub const TOOLS: &str = "rstream_remote_mcp_tools";
/// Call tool name.
pub const CALL: &str = "rstream_remote_mcp_call";

/// `application-protocol` of an MCP endpoint tunnel.
pub const MCP_APPLICATION_PROTOCOL: &str = "rstream.mcp";
/// Label holding an MCP endpoint's path.
pub const MCP_PATH_LABEL: &str = "rstream.mcp.path";
/// Label holding an MCP endpoint's transport.
pub const MCP_TRANSPORT_LABEL: &str = "rstream.mcp.transport";
/// The transport every endpoint we publish speaks.
pub const MCP_TRANSPORT: &str = "streamable-http";

fn url_arg() -> Value {
    string("The endpoint: its rstrm_url from rstream_remote_mcp_discover (rstrm://NAME[/path]), or http(s)://HOST.")
}

fn path_arg() -> Value {
    string("HTTP path of the MCP endpoint when `url` has none (default: /mcp).")
}

fn token_arg() -> Value {
    string("Bearer token for endpoints that ask for one (token_auth); default: none.")
}

fn response_schema() -> Value {
    output_object(
        &[
            ("jsonrpc", string("\"2.0\".")),
            ("id", field(json!(["integer", "string"]), "Request id.")),
            ("result", field(json!("object"), "The remote result (absent on error).")),
            ("error", field(json!("object"), "The remote JSON-RPC error {code, message}.")),
        ],
        &["jsonrpc"],
    )
}

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: DISCOVER,
            title: "Discover remote MCP endpoints",
            description: "Lists the MCP endpoints online behind the selected engine (tunnels labelled \
                          application-protocol=rstream.mcp): pass an endpoint's rstrm_url as `url` to \
                          rstream_remote_mcp_tools and rstream_remote_mcp_call.",
            properties: vec![(
                "filter",
                string(
                    "Comma-separated key=value terms, all required (e.g. labels.role=ops, name=box-mcp); a bare \
                     word matches names.",
                ),
            )],
            required: &[],
            output: output_list(
                "endpoints",
                "MCP endpoints online behind the engine.",
                &[
                    ("id", string("Tunnel id.")),
                    ("name", string("Tunnel name.")),
                    ("path", string("HTTP path of the endpoint (label rstream.mcp.path, default /mcp).")),
                    ("rstrm_url", string("rstrm://NAME: pass it as `url`.")),
                    ("status", string("online.")),
                    ("token_auth", field(json!("boolean"), "Callers need a token (published endpoints).")),
                    ("url", string("Where the endpoint answers (https://… when published).")),
                    ("labels", field(json!("object"), "Tunnel labels.")),
                ],
                &[],
            ),
        },
        ToolSpec {
            name: TOOLS,
            title: "List remote MCP tools",
            description: "Lists the tools of a remote MCP endpoint (tools/list over Streamable HTTP, through a \
                          private rstrm:// stream or http(s)). Returns the remote JSON-RPC response.",
            properties: vec![("url", url_arg()), ("path", path_arg()), ("token", token_arg())],
            required: &["url"],
            output: response_schema(),
        },
        ToolSpec {
            name: CALL,
            title: "Call remote MCP tool",
            description: "Calls one tool of a remote MCP endpoint (tools/call) and returns the remote JSON-RPC \
                          response; an error result when the remote call failed or its result is isError.",
            properties: vec![
                ("url", url_arg()),
                ("tool", string("Name of the remote tool, as rstream_remote_mcp_tools lists it.")),
                ("path", path_arg()),
                ("token", token_arg()),
                ("arguments", json!({"type": "object", "description": "The tool's arguments."})),
                ("arguments_json", string("The tool's arguments as a JSON object in a string (default \"{}\").")),
            ],
            required: &["url", "tool"],
            output: response_schema(),
        },
    ]
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, ctx: &CallContext<'_>) -> Option<Result<ToolOutput, ToolError>> {
    Some(match name {
        DISCOVER => discover(args, ctx),
        TOOLS => remote(args, ctx, "tools/list", None),
        CALL => call_arguments(args).and_then(|params| remote(args, ctx, "tools/call", Some(params))),
        _ => return None,
    })
}

fn discover(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let text = args.opt_str("filter")?.unwrap_or_default();
    let mut filter = filter::parse(&text, BareWords::MatchNames)
        .map_err(|e| ToolError(format!("{e}; use key=value terms like labels.role=ops or a bare name")))?;
    filter.tunnels.status = Some("online".into());
    filter.tunnels.labels.insert(APPLICATION_PROTOCOL_LABEL.into(), Some(MCP_APPLICATION_PROTOCOL.into()));
    let api = ctx.env.engine_api()?;
    let tunnels =
        ctx.block_on(async { api.list_tunnels(&filter.tunnels).await.map_err(|e| ToolError(e.to_string())) })?;
    let endpoints: Vec<Value> =
        tunnels.iter().filter(|t| filter.matches_names([t.name.as_str(), t.id.as_str()])).map(endpoint).collect();
    Ok(ToolOutput::json(json!({ "endpoints": endpoints })))
}

/// One discovered endpoint, upstream's shape.
fn endpoint(t: &TunnelInventory) -> Value {
    let path = t.labels.get(MCP_PATH_LABEL).filter(|p| p.starts_with('/')).map_or(DEFAULT_MCP_PATH, String::as_str);
    let name = if t.name.is_empty() { &t.id } else { &t.name };
    let rstrm_url = format!("rstrm://{name}");
    let url = match t.publish.unwrap_or(false) && !t.display_host().is_empty() {
        true => format!("https://{}{path}", t.display_host()),
        false => format!("{rstrm_url}{path}"),
    };
    let mut value = json!({
        "id": t.id,
        "name": t.name,
        "path": path,
        "rstrm_url": rstrm_url,
        "status": t.status,
        "token_auth": t.token_auth.unwrap_or(false),
        "url": url,
    });
    if !t.labels.is_empty() {
        value["labels"] = json!(t.labels);
    }
    value
}

/// `{name, arguments}` of a tools/call from `tool` and `arguments` or `arguments_json`.
fn call_arguments(args: &Args) -> Result<Value, ToolError> {
    let tool = args.required_str("tool")?;
    let object = args.opt_object("arguments")?;
    let text = args.opt_str("arguments_json")?;
    let arguments = match (object, text) {
        (Some(_), Some(_)) => {
            return Err(ToolError::new(
                "pass either \"arguments\" (an object) or \"arguments_json\" (a string), not both",
            ))
        }
        (Some(object), None) => object,
        (None, Some(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(ToolError::new("argument \"arguments_json\" must hold a JSON object")),
            Err(e) => return Err(ToolError(format!("argument \"arguments_json\" is not JSON: {e}"))),
        },
        (None, None) => Map::new(),
    };
    Ok(json!({"name": tool, "arguments": arguments}))
}

fn remote(args: &Args, ctx: &CallContext<'_>, method: &str, params: Option<Value>) -> Result<ToolOutput, ToolError> {
    let url = McpUrl::parse(&args.required_str("url")?, args.opt_str("path")?.as_deref())?;
    let token = args.opt_str("token")?.map(Secret::from);
    let mut client = RemoteMcp::new(ctx.env, url, token);
    let response = ctx.block_on(client.request(method, params))?;
    let failed_call = method == "tools/call" && response["result"]["isError"] == json!(true);
    let is_error = response.get("error").is_some() || failed_call;
    Ok(ToolOutput::Json { value: response, is_error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_arguments_come_from_an_object_or_a_json_string() {
        let a = Args::from_value(json!({"tool": "add", "arguments": {"a": 1}}));
        assert_eq!(call_arguments(&a).unwrap(), json!({"name": "add", "arguments": {"a": 1}}));
        let a = Args::from_value(json!({"tool": "add", "arguments_json": "{\"b\": 2}"}));
        assert_eq!(call_arguments(&a).unwrap()["arguments"], json!({"b": 2}));
        assert_eq!(call_arguments(&Args::from_value(json!({"tool": "t"}))).unwrap()["arguments"], json!({}));
        let both = Args::from_value(json!({"tool": "t", "arguments": {}, "arguments_json": "{}"}));
        assert!(call_arguments(&both).unwrap_err().0.contains("not both"));
        let array = Args::from_value(json!({"tool": "t", "arguments_json": "[1]"}));
        assert!(call_arguments(&array).unwrap_err().0.contains("JSON object"));
    }

    #[test]
    fn endpoints_take_their_path_label_and_url() {
        let mut t = TunnelInventory {
            id: "t1".into(),
            name: "box-mcp".into(),
            status: "online".into(),
            publish: Some(false),
            ..Default::default()
        };
        let e = endpoint(&t);
        assert_eq!((e["path"].as_str(), e["url"].as_str()), (Some("/mcp"), Some("rstrm://box-mcp/mcp")));
        assert!(e.get("labels").is_none());
        t.labels.insert(MCP_PATH_LABEL.into(), "/api".into());
        t.publish = Some(true);
        t.hostname = "box-mcp.t.localhost".into();
        t.port = Some(8443);
        t.token_auth = Some(true);
        let e = endpoint(&t);
        assert_eq!(e["url"], "https://box-mcp.t.localhost:8443/api");
        assert_eq!((e["token_auth"].clone(), e["rstrm_url"].as_str()), (json!(true), Some("rstrm://box-mcp")));
    }
}
