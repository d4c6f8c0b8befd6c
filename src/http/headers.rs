//! An ordered list of header fields with case-insensitive lookup.
//!
//! Received heads are bounded by `limits::MAX_HTTP_HEAD_LEN` / `MAX_HTTP_HEADERS`, so the list stays small; a
//! plain vector beats a map at this size. Names and values are checked when a head is written: a value holding a
//! CR, LF or NUL (header injection) is refused with `InvalidInput`.

use std::io;

/// Header fields in arrival (or insertion) order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether any value of the comma-separated list header `name` holds `token` (case-insensitive), e.g.
    /// `has_token("connection", "close")` or `has_token("connection", "upgrade")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Appends a field (an existing field of the same name is kept).
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Replaces every field named `name` with one holding `value`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.remove(&name);
        self.entries.push((name, value.into()));
    }

    /// Removes every field named `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes `Name: value\r\n` for every field, refusing names that are not tokens and values with CR/LF/NUL.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) -> io::Result<()> {
        for (name, value) in &self.entries {
            encode_field(out, name, value)?;
        }
        Ok(())
    }
}

/// Whether `b` may appear in a header name (RFC 9110 token).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Appends one field line after validating it.
pub(crate) fn encode_field(out: &mut Vec<u8>, name: &str, value: &str) -> io::Result<()> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid header name {name:?}")));
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid value for header {name}: {value:?}")));
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.trim().as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_keeps_order() {
        let mut h = Headers::new();
        h.add("Content-Type", "text/plain");
        h.add("X-A", "1");
        h.add("x-a", "2");
        assert_eq!(h.get("content-type"), Some("text/plain"));
        assert_eq!(h.get_all("X-a").collect::<Vec<_>>(), ["1", "2"]);
        h.set("X-A", "3");
        assert_eq!(h.get_all("x-a").collect::<Vec<_>>(), ["3"]);
        h.remove("CONTENT-TYPE");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn tokens_are_found_in_comma_lists() {
        let mut h = Headers::new();
        h.add("Connection", "keep-alive, Upgrade");
        assert!(h.has_token("connection", "upgrade"));
        assert!(!h.has_token("connection", "close"));
    }

    #[test]
    fn encoding_refuses_injection() {
        let mut out = Vec::new();
        assert!(encode_field(&mut out, "X-Ok", "fine").is_ok());
        assert_eq!(out, b"X-Ok: fine\r\n");
        assert!(encode_field(&mut out, "X-Bad", "a\r\nSet-Cookie: x").is_err());
        assert!(encode_field(&mut out, "Bad Name", "v").is_err());
        assert!(encode_field(&mut out, "", "v").is_err());
    }
}
