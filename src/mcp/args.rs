//! Tool arguments: typed accessors over the JSON object an agent sends, with messages an agent can act on.
//!
//! Conventions as upstream: an optional string that is empty or whitespace means "use the default"; string
//! arrays are trimmed and empty entries dropped. Unlike upstream, an argument the tool does not declare is
//! refused (naming the accepted ones), since the schemas are closed.

use std::fmt;

use rmcp::model::JsonObject;
use serde_json::Value;

use super::schema::ToolSpec;

/// Why a tool call failed; becomes an `isError: true` result with this text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl ToolError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError(message.into())
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The arguments of one call, checked against the tool's declared names.
#[derive(Debug, Default)]
pub struct Args {
    map: JsonObject,
}

impl Args {
    /// Wraps `map`, refusing arguments `spec` does not declare.
    pub fn new(map: Option<JsonObject>, spec: &ToolSpec) -> Result<Args, ToolError> {
        let map = map.unwrap_or_default();
        if let Some(unknown) = map.keys().find(|k| !spec.accepts(k)) {
            return Err(ToolError(format!(
                "unknown argument {unknown:?} for {} (accepted: {})",
                spec.name,
                spec.argument_names()
            )));
        }
        Ok(Args { map })
    }

    /// Arguments from a JSON object literal (tests).
    pub fn from_value(value: Value) -> Args {
        match value {
            Value::Object(map) => Args { map },
            _ => Args::default(),
        }
    }

    fn present(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A required, non-empty string.
    pub fn required_str(&self, key: &str) -> Result<String, ToolError> {
        self.opt_str(key)?.ok_or_else(|| ToolError(format!("missing required argument {key:?}")))
    }

    /// An optional string; empty or whitespace-only counts as absent. Returned trimmed.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, ToolError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(ToolError(format!("argument {key:?} must be a string"))),
        }
    }

    /// An optional string kept exactly as sent (file contents, stdin).
    pub fn raw_str(&self, key: &str) -> Result<Option<String>, ToolError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ToolError(format!("argument {key:?} must be a string"))),
        }
    }

    /// A list of strings, trimmed, empty entries dropped (absent = empty list).
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, ToolError> {
        let err = || ToolError(format!("argument {key:?} must be an array of strings"));
        match self.present(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(|s| s.trim().to_owned()).ok_or_else(err))
                .filter(|r| r.as_ref().map_or(true, |s| !s.is_empty()))
                .collect(),
            Some(_) => Err(err()),
        }
    }

    /// A list of strings kept exactly as sent (argv: spaces and empty arguments matter).
    pub fn raw_str_list(&self, key: &str) -> Result<Vec<String>, ToolError> {
        let err = || ToolError(format!("argument {key:?} must be an array of strings"));
        match self.present(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(err)).collect(),
            Some(_) => Err(err()),
        }
    }

    /// An optional JSON object.
    pub fn opt_object(&self, key: &str) -> Result<Option<JsonObject>, ToolError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map.clone())),
            Some(_) => Err(ToolError(format!("argument {key:?} must be an object"))),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ToolError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ToolError(format!("argument {key:?} must be true or false"))),
        }
    }

    /// An optional non-negative number (integers or decimals; decimals are kept as seconds fractions by callers).
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, ToolError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                _ => Err(ToolError(format!("argument {key:?} must be a non-negative number, got {n}"))),
            },
            Some(_) => Err(ToolError(format!("argument {key:?} must be a number"))),
        }
    }

    /// An optional non-negative integer given as a number or a numeric string (upstream sends ports as strings).
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, ToolError> {
        let err = |v: &dyn fmt::Display| ToolError(format!("argument {key:?} must be a whole number, got {v}"));
        match self.present(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| err(n)),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| err(&format!("{s:?}"))),
            Some(v) => Err(err(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::schema::string;
    use serde_json::json;

    fn spec() -> ToolSpec {
        ToolSpec {
            name: "t",
            title: "T",
            description: "d",
            properties: vec![("url", string("")), ("path", string(""))],
            required: &["url"],
            output: crate::mcp::schema::output_object(&[], &[]),
        }
    }

    #[test]
    fn undeclared_arguments_are_refused_with_the_accepted_names() {
        let map = json!({"url": "rstrm://a", "tokn": "x"}).as_object().cloned();
        let err = Args::new(map, &spec()).unwrap_err();
        assert_eq!(err.0, "unknown argument \"tokn\" for t (accepted: url, path)");
    }

    #[test]
    fn strings_are_trimmed_and_blank_means_absent() {
        let a = Args::from_value(json!({"url": "  rstrm://a ", "path": "   ", "n": 3}));
        assert_eq!(a.required_str("url").unwrap(), "rstrm://a");
        assert_eq!(a.opt_str("path").unwrap(), None);
        assert_eq!(a.required_str("path").unwrap_err().0, "missing required argument \"path\"");
        assert_eq!(a.opt_str("n").unwrap_err().0, "argument \"n\" must be a string");
    }

    #[test]
    fn lists_drop_blank_entries_and_reject_non_strings() {
        let a = Args::from_value(json!({"env": [" A=1 ", "", "B=2"], "bad": [1]}));
        assert_eq!(a.str_list("env").unwrap(), ["A=1", "B=2"]);
        assert_eq!(a.str_list("missing").unwrap(), Vec::<String>::new());
        assert!(a.str_list("bad").is_err());
        let argv = Args::from_value(json!({"command": ["grep", "", " a b "]}));
        assert_eq!(argv.raw_str_list("command").unwrap(), ["grep", "", " a b "]);
    }

    #[test]
    fn numbers_accept_numeric_strings_for_ports() {
        let a = Args::from_value(json!({"port": "3000", "p2": 8080, "bad": "80x", "neg": -1, "t": 1.5}));
        assert_eq!(a.opt_u64("port").unwrap(), Some(3000));
        assert_eq!(a.opt_u64("p2").unwrap(), Some(8080));
        assert!(a.opt_u64("bad").unwrap_err().0.contains("\"80x\""));
        assert!(a.opt_u64("neg").is_err());
        assert_eq!(a.opt_f64("t").unwrap(), Some(1.5));
        assert!(a.opt_f64("neg").is_err());
    }
}
