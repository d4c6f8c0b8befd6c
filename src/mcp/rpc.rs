//! MCP over plain JSON-RPC messages, without rmcp's session machinery: what `rstream mcp publish` answers on
//! each HTTP POST. One message in, at most one message out (none for a notification).
//!
//! Methods: `initialize` (the version negotiated down as [`super::server`] does, the same identity and
//! instructions), `ping`, `tools/list`, `tools/call`. `tools/*` are accepted without `initialize` first, as
//! upstream's published endpoint accepts them, so both upstream's client (no handshake) and standard clients
//! work. Tool calls are the catalog's own (policy, scrubbing, result shapes); the caller runs them off its
//! executor ([`Rpc::Call`]).

use rmcp::model::{CallToolResult, JsonObject, ProtocolVersion};
use serde_json::{json, Value};

use super::catalog::Catalog;
use super::server::{instructions, PROTOCOL_VERSION};

/// JSON-RPC: invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: unknown method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: bad parameters.
pub const INVALID_PARAMS: i64 = -32602;

/// What one incoming message asks for.
#[derive(Debug, PartialEq)]
pub enum Rpc {
    /// A notification (or a response): nothing to answer.
    Nothing,
    /// Answer at once with this message.
    Answer(Value),
    /// Run tool `name` with `arguments`, then answer request `id` with [`call_answer`].
    Call {
        /// The request id.
        id: Value,
        /// Tool name.
        name: String,
        /// Tool arguments.
        arguments: Option<JsonObject>,
    },
}

/// A JSON-RPC error answer to `id`.
pub fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

fn answer(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// The protocol version to answer `initialize` with: the client's when this server knows it, else ours.
pub fn negotiate(requested: Option<&str>) -> String {
    let known = ProtocolVersion::known_up_to(&PROTOCOL_VERSION);
    match requested {
        Some(v) if known.iter().any(|k| k.to_string() == v) => v.to_owned(),
        _ => PROTOCOL_VERSION.to_string(),
    }
}

/// Reads one message.
pub fn route(catalog: &Catalog, message: &Value) -> Rpc {
    let Some(object) = message.as_object() else {
        return Rpc::Answer(error(
            Value::Null,
            INVALID_REQUEST,
            "expected one JSON-RPC object (batches are not supported)",
        ));
    };
    let id = object.get("id").cloned();
    let method = object.get("method").and_then(Value::as_str);
    let (Some(id), Some(method)) = (id, method) else {
        return match (object.get("id"), method) {
            (Some(id), None) if object.get("result").is_none() && object.get("error").is_none() => {
                Rpc::Answer(error(id.clone(), INVALID_REQUEST, "the request has no method"))
            }
            _ => Rpc::Nothing, // a notification, or a response to nothing we asked
        };
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Rpc::Answer(error(id, INVALID_REQUEST, "jsonrpc must be \"2.0\""));
    }
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    match method {
        "initialize" => {
            let version = negotiate(params.get("protocolVersion").and_then(Value::as_str));
            Rpc::Answer(answer(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "rstream", "title": "rstream", "version": env!("CARGO_PKG_VERSION")},
                    "instructions": instructions(catalog),
                }),
            ))
        }
        "ping" => Rpc::Answer(answer(id, json!({}))),
        "tools/list" => Rpc::Answer(answer(id, json!({"tools": catalog.tools()}))),
        "tools/call" => {
            let Some(name) = params.get("name").and_then(Value::as_str) else {
                return Rpc::Answer(error(id, INVALID_PARAMS, "tools/call needs params.name"));
            };
            let arguments = match params.get("arguments") {
                None | Some(Value::Null) => None,
                Some(Value::Object(map)) => Some(map.clone()),
                Some(_) => return Rpc::Answer(error(id, INVALID_PARAMS, "params.arguments must be an object")),
            };
            Rpc::Call { id, name: name.to_owned(), arguments }
        }
        other => Rpc::Answer(error(id, METHOD_NOT_FOUND, format!("method not found: {other}"))),
    }
}

/// The answer to a [`Rpc::Call`] once the tool returned.
pub fn call_answer(id: Value, result: &CallToolResult) -> Value {
    answer(id, serde_json::to_value(result).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::operator_env::OperatorEnv;
    use crate::operator::tool_policy::ToolPolicyFlags;

    fn catalog() -> Catalog {
        let env = OperatorEnv::new("/nonexistent/rstream-rpc/config.yaml".into(), &[]);
        Catalog::new(env, ToolPolicyFlags::default()).unwrap()
    }

    fn answered(rpc: Rpc) -> Value {
        match rpc {
            Rpc::Answer(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn initialize_negotiates_and_tools_work_without_it() {
        let c = catalog();
        let init =
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}});
        let v = answered(route(&c, &init));
        assert_eq!((v["result"]["protocolVersion"].as_str(), v["id"].clone()), (Some("2025-06-18"), json!(1)));
        assert_eq!(negotiate(Some("1999-01-01")), PROTOCOL_VERSION.to_string());
        let list = answered(route(&c, &json!({"jsonrpc": "2.0", "id": "a", "method": "tools/list"})));
        assert!(list["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "rstream_runtime_status"));
        let call =
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "x", "arguments": {"a": 1}}});
        let Rpc::Call { id, name, arguments } = route(&c, &call) else { panic!() };
        assert_eq!((id, name.as_str(), arguments.unwrap()["a"].clone()), (json!(7), "x", json!(1)));
    }

    #[test]
    fn notifications_are_not_answered_and_bad_requests_are_errors() {
        let c = catalog();
        assert_eq!(route(&c, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})), Rpc::Nothing);
        let code = |v: Value| answered(route(&c, &v))["error"]["code"].as_i64();
        assert_eq!(code(json!([1])), Some(INVALID_REQUEST));
        assert_eq!(code(json!({"jsonrpc": "1.0", "id": 1, "method": "ping"})), Some(INVALID_REQUEST));
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": 1, "method": "nope"})), Some(METHOD_NOT_FOUND));
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call"})), Some(INVALID_PARAMS));
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": 1})), Some(INVALID_REQUEST));
    }
}
