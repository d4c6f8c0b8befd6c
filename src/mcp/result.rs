//! Tool results as upstream shapes them, and the last line of defence against leaking a token.
//!
//! A JSON result carries the value twice: as pretty-printed text (2-space indent) for agents that read text, and
//! as `structuredContent` (non-objects wrapped as `{"result": value}`). Failures are results with
//! `isError: true` and a plain-text message, never JSON-RPC errors, so the agent sees why. A file read as text
//! is a document: the text itself as content (as upstream) and the facts about it as `structuredContent`.
//!
//! Before a result leaves the server every string in it goes through the [`Scrubber`] of the operator's secrets
//! (see [`super::operator_env::OperatorEnv::secrets`]): a remote `cat ~/.rstream/config.yaml`, `base64` of it, or
//! a file read cannot hand one to the agent, plainly or encoded.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{json, Value};

use super::args::ToolError;
pub use super::scrub::{Scrubber, REDACTED};

/// What a tool returns before it is shaped into an MCP result.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutput {
    /// A JSON value; `is_error` marks results that are data but still a failure (a non-zero exit code).
    Json { value: Value, is_error: bool },
    /// Plain text (file contents read as text).
    Text(String),
    /// Text for the agent to read (a file's contents) plus structured facts about it (`truncated`, sizes).
    Document { text: String, value: Value },
    /// A JSON result plus a `resource_link` content item to `uri` (e.g. the URL a tunnel serves at).
    Linked { value: Value, is_error: bool, uri: String, name: String },
}

impl ToolOutput {
    /// A successful JSON result.
    pub fn json(value: impl serde::Serialize) -> ToolOutput {
        ToolOutput::Json { value: serde_json::to_value(value).unwrap_or(Value::Null), is_error: false }
    }
}

/// Shapes a tool outcome into the MCP result, scrubbing `secrets` from every string.
pub fn to_call_result(outcome: Result<ToolOutput, ToolError>, secrets: &Scrubber) -> CallToolResult {
    match outcome {
        Ok(ToolOutput::Json { mut value, is_error }) => {
            redact_value(&mut value, secrets);
            let structured = if value.is_object() { value } else { json!({ "result": value }) };
            let text = serde_json::to_string_pretty(&structured).unwrap_or_default();
            let mut result = CallToolResult::structured(structured);
            result.content = vec![ContentBlock::text(text)];
            result.is_error = Some(is_error);
            result
        }
        Ok(ToolOutput::Linked { value, is_error, uri, name }) => {
            let mut result = to_call_result(Ok(ToolOutput::Json { value, is_error }), secrets);
            let link = rmcp::model::Resource::new(redact(&uri, secrets), redact(&name, secrets));
            result.content.push(ContentBlock::resource_link(link));
            result
        }
        Ok(ToolOutput::Text(text)) => CallToolResult::success(vec![ContentBlock::text(redact(&text, secrets))]),
        Ok(ToolOutput::Document { text, mut value }) => {
            redact_value(&mut value, secrets);
            let mut result = CallToolResult::success(vec![ContentBlock::text(redact(&text, secrets))]);
            result.structured_content = Some(value);
            result
        }
        Err(e) => CallToolResult::error(vec![ContentBlock::text(redact(&e.0, secrets))]),
    }
}

/// `text` with every form of every secret replaced by [`REDACTED`].
pub fn redact(text: &str, secrets: &Scrubber) -> String {
    secrets.scrub(text).into_owned()
}

fn redact_value(value: &mut Value, secrets: &Scrubber) {
    match value {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = secrets.scrub(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| redact_value(v, secrets)),
        _ => {}
    }
}

/// The text of a result's first content item (tests and logs).
pub fn first_text(result: &CallToolResult) -> Option<&str> {
    result.content.first().and_then(ContentBlock::as_text).map(|t| t.text.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_wrapped_and_text_is_pretty_json() {
        let r = to_call_result(Ok(ToolOutput::json(json!([{"a": 1}]))), &Scrubber::default());
        assert_eq!(r.structured_content, Some(json!({"result": [{"a": 1}]})));
        assert_eq!(first_text(&r), Some("{\n  \"result\": [\n    {\n      \"a\": 1\n    }\n  ]\n}"));
        assert_eq!(r.is_error, Some(false));
    }

    #[test]
    fn errors_are_text_results_flagged_is_error() {
        let r = to_call_result(Err(ToolError::new("missing required argument \"url\"")), &Scrubber::default());
        assert_eq!(r.is_error, Some(true));
        assert_eq!(first_text(&r), Some("missing required argument \"url\""));
        assert_eq!(r.structured_content, None);
    }

    #[test]
    fn json_data_can_be_an_error_too() {
        let out = ToolOutput::Json { value: json!({"exit_code": 3}), is_error: true };
        assert_eq!(to_call_result(Ok(out), &Scrubber::default()).is_error, Some(true));
    }

    #[test]
    fn secrets_are_scrubbed_from_text_json_and_errors() {
        let secrets = Scrubber::new(["eyJsecret", "", "t"]);
        let out = ToolOutput::json(json!({"stdout": "token: eyJsecret\n", "nested": ["a eyJsecret b"]}));
        let r = to_call_result(Ok(out), &secrets);
        let text = first_text(&r).unwrap();
        assert!(!text.contains("eyJsecret") && text.contains(REDACTED), "{text}");
        assert_eq!(r.structured_content.unwrap()["nested"][0], "a [redacted] b");
        let r = to_call_result(Ok(ToolOutput::Text("eyJsecret".into())), &secrets);
        assert_eq!(first_text(&r), Some(REDACTED));
        let doc = ToolOutput::Document { text: "k=eyJsecret".into(), value: json!({"content": "k=eyJsecret"}) };
        let r = to_call_result(Ok(doc), &secrets);
        assert_eq!(first_text(&r), Some("k=[redacted]"));
        assert_eq!(r.structured_content.unwrap()["content"], "k=[redacted]");
        let r = to_call_result(Err(ToolError::new("bad eyJsecret")), &secrets);
        assert_eq!(first_text(&r), Some("bad [redacted]"));
    }
}
