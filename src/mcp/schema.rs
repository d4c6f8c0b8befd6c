//! Tool definitions: name, title, description, JSON Schema of the arguments, and annotations.
//!
//! Every input schema is a closed object (`additionalProperties: false`) so an agent learns the exact argument
//! names. Annotations follow upstream's derivation from the tool name (see [`annotations`]); `openWorldHint` is
//! ours: true for tools that reach other machines or the public internet through the engine, false for tools
//! that only read or change this machine.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{json, Map, Value};

/// One tool as this server offers it.
pub struct ToolSpec {
    /// Tool name (upstream's).
    pub name: &'static str,
    /// Short human title.
    pub title: &'static str,
    /// What the tool does and when to use it.
    pub description: &'static str,
    /// Argument name → JSON Schema, in display order.
    pub properties: Vec<(&'static str, Value)>,
    /// Required argument names.
    pub required: &'static [&'static str],
    /// Whether the tool reaches beyond this machine (engine, remote servers, public URLs).
    pub open_world: bool,
}

impl ToolSpec {
    /// The closed input schema: `{"type":"object","properties":…,"required":…,"additionalProperties":false}`.
    pub fn input_schema(&self) -> JsonObject {
        let properties: Map<String, Value> =
            self.properties.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), Value::Object(properties));
        if !self.required.is_empty() {
            schema.insert("required".into(), json!(self.required));
        }
        schema.insert("additionalProperties".into(), json!(false));
        schema
    }

    /// Whether `name` is one of this tool's arguments.
    pub fn accepts(&self, name: &str) -> bool {
        self.properties.iter().any(|(k, _)| *k == name)
    }

    /// The argument names, comma-separated (for error messages).
    pub fn argument_names(&self) -> String {
        let names: Vec<&str> = self.properties.iter().map(|(k, _)| *k).collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// The MCP tool object.
    pub fn to_tool(&self) -> Tool {
        let mut tool = Tool::default();
        tool.name = self.name.into();
        tool.title = Some(self.title.to_owned());
        tool.description = Some(self.description.into());
        tool.input_schema = Arc::new(self.input_schema());
        tool.annotations = Some(annotations(self.name, self.title, self.open_world));
        tool
    }
}

/// Upstream's hints from the name: read-only for listing/reading tools, destructive for deletes, stops and the
/// tools that run commands or overwrite files, idempotent for read-only tools and stops.
pub fn annotations(name: &str, title: &str, open_world: bool) -> ToolAnnotations {
    const READ_ONLY: [&str; 10] = [
        "_list",
        "_get",
        "_logs",
        "_usage",
        "_status",
        "_discover",
        "_tools",
        "_read",
        "_creation_options",
        "_domain_connect",
    ];
    const DESTRUCTIVE_EXACT: [&str; 3] = ["rstream_webtty_exec", "rstream_webtty_fs_write", "rstream_remote_mcp_call"];
    let read_only = READ_ONLY.iter().any(|s| name.contains(s));
    let destructive = name.contains("_delete")
        || name.contains("_reset")
        || name.ends_with("_stop")
        || name.ends_with("_settings_patch")
        || DESTRUCTIVE_EXACT.contains(&name);
    let idempotent = read_only || name.ends_with("_stop") || name.contains("runtime_prepare");
    ToolAnnotations::with_title(title)
        .read_only(read_only)
        .destructive(destructive)
        .idempotent(idempotent)
        .open_world(open_world)
}

/// A string argument.
pub fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

/// A string argument limited to `values`.
pub fn one_of(values: &[&str], description: &str) -> Value {
    json!({"type": "string", "enum": values, "description": description})
}

/// A boolean argument.
pub fn boolean(description: &str) -> Value {
    json!({"type": "boolean", "description": description})
}

/// A number argument with a lower bound.
pub fn number(minimum: u64, description: &str) -> Value {
    json!({"type": "number", "minimum": minimum, "description": description})
}

/// An array-of-strings argument.
pub fn strings(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": description})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(name: &str) -> (bool, bool, bool) {
        let a = annotations(name, "t", false);
        (a.read_only_hint.unwrap(), a.destructive_hint.unwrap(), a.idempotent_hint.unwrap())
    }

    #[test]
    fn hints_follow_upstream_name_rules() {
        assert_eq!(hints("rstream_webtty_list"), (true, false, true));
        assert_eq!(hints("rstream_webtty_fs_read"), (true, false, true));
        assert_eq!(hints("rstream_runtime_status"), (true, false, true));
        assert_eq!(hints("rstream_webtty_exec"), (false, true, false));
        assert_eq!(hints("rstream_webtty_fs_write"), (false, true, false));
        assert_eq!(hints("rstream_webtty_fs_delete"), (false, true, false));
        assert_eq!(hints("rstream_local_tunnel_stop"), (false, true, true));
        assert_eq!(hints("rstream_webtty_fs_mkdir"), (false, false, false));
        assert_eq!(hints("rstream_local_tunnel_expose"), (false, false, false));
    }

    #[test]
    fn input_schema_is_closed_and_lists_required_arguments() {
        let spec = ToolSpec {
            name: "x",
            title: "X",
            description: "d",
            properties: vec![("url", string("u")), ("n", number(1, "n"))],
            required: &["url"],
            open_world: true,
        };
        let schema = Value::Object(spec.input_schema());
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["required"], json!(["url"]));
        assert_eq!(schema["properties"]["n"]["minimum"], json!(1));
        assert!(spec.accepts("url") && !spec.accepts("nope"));
        let tool = spec.to_tool();
        assert_eq!(tool.annotations.unwrap().open_world_hint, Some(true));
    }
}
