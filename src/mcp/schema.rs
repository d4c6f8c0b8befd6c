//! Tool definitions: name, title, description, JSON Schema of the arguments and of the result, annotations.
//!
//! Every input schema is a closed object (`additionalProperties: false`) so an agent learns the exact argument
//! names. Every tool also has an `outputSchema` (an object; results may carry more keys than it names, as
//! upstream's) that its `structuredContent` validates against, the hints of [`super::annotations`], and
//! upstream's `_meta` `openai/toolInvocation/invoking|invoked` ("Running: <title>" / "Finished: <title>").

use std::sync::Arc;

use rmcp::model::{JsonObject, MetaObject, Tool, ToolAnnotations};
use serde_json::{json, Map, Value};

use super::annotations::{hints, Hints};

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
    /// JSON Schema of the result's `structuredContent` (see [`output_object`], [`output_list`]).
    pub output: Value,
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

    /// The tool's row of [`super::annotations::TOOL_HINTS`] (a tool without one is treated as able to do
    /// anything: not read-only, destructive, open-world).
    pub fn hints(&self) -> Hints {
        hints(self.name).unwrap_or(Hints { read_only: false, destructive: true, idempotent: false, open_world: true })
    }

    /// The MCP tool object.
    pub fn to_tool(&self) -> Tool {
        let h = self.hints();
        let mut tool = Tool::default();
        tool.name = self.name.into();
        tool.title = Some(self.title.to_owned());
        tool.description = Some(self.description.into());
        tool.input_schema = Arc::new(self.input_schema());
        tool.output_schema = self.output.as_object().cloned().map(Arc::new);
        tool.annotations = Some(
            ToolAnnotations::with_title(self.title)
                .read_only(h.read_only)
                .destructive(h.destructive)
                .idempotent(h.idempotent)
                .open_world(h.open_world),
        );
        let mut meta = Map::new();
        meta.insert("openai/toolInvocation/invoking".into(), json!(format!("Running: {}", self.title)));
        meta.insert("openai/toolInvocation/invoked".into(), json!(format!("Finished: {}", self.title)));
        tool.meta = Some(MetaObject(meta));
        tool
    }
}

/// An output schema: an object with `properties` (name → schema), the `required` ones, and room for more keys.
pub fn output_object(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = properties.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": true})
}

/// An output schema for a collection under the semantic key `key` (upstream's `servers`, `entries`, …), each
/// item an object described by `item` properties, plus `extra` top-level properties.
pub fn output_list(key: &str, description: &str, item: &[(&str, Value)], extra: &[(&str, Value)]) -> Value {
    let item = output_object(item, &[]);
    let mut properties = vec![(key, json!({"type": "array", "description": description, "items": item}))];
    properties.extend(extra.iter().cloned());
    output_object(&properties, &[key])
}

/// A result field: a value of JSON type `ty` (`"string"`, `["string","null"]`, …).
pub fn field(ty: Value, description: &str) -> Value {
    json!({"type": ty, "description": description})
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

    fn spec() -> ToolSpec {
        ToolSpec {
            name: "rstream_webtty_exec",
            title: "Run",
            description: "d",
            properties: vec![("url", string("u")), ("n", number(1, "n"))],
            required: &["url"],
            output: output_object(&[("ok", field(json!("boolean"), "done"))], &["ok"]),
        }
    }

    #[test]
    fn input_schema_is_closed_and_lists_required_arguments() {
        let schema = Value::Object(spec().input_schema());
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["required"], json!(["url"]));
        assert_eq!(schema["properties"]["n"]["minimum"], json!(1));
        assert!(spec().accepts("url") && !spec().accepts("nope"));
    }

    #[test]
    fn tools_carry_the_table_hints_an_output_schema_and_invocation_meta() {
        let tool = spec().to_tool();
        let a = tool.annotations.unwrap();
        assert_eq!((a.read_only_hint, a.destructive_hint, a.open_world_hint), (Some(false), Some(true), Some(true)));
        let output = Value::Object((*tool.output_schema.unwrap()).clone());
        assert_eq!((output["type"].clone(), output["required"].clone()), (json!("object"), json!(["ok"])));
        let meta = tool.meta.unwrap();
        assert_eq!(meta.0["openai/toolInvocation/invoking"], "Running: Run");
        assert_eq!(meta.0["openai/toolInvocation/invoked"], "Finished: Run");
        let list = output_list("servers", "s", &[("target", string("t"))], &[]);
        assert_eq!(list["required"], json!(["servers"]));
        assert_eq!(list["properties"]["servers"]["items"]["properties"]["target"]["type"], "string");
    }
}
