//! A small, bounded, namespace-aware XML pull reader and the escaping helpers for writing WebDAV XML.
//!
//! WebDAV needs very little XML: element names resolved to (namespace, local name), text, and nothing else.
//! [`XmlReader`] works on a byte buffer the caller owns and may refill: each call returns one complete event or
//! `None` when the buffer ends inside a token, so the client can stream a large multistatus through a fixed
//! buffer (`limits::WEBDAV_XML_BUF_LEN`) while the server parses small in-memory bodies. DTDs are refused (no
//! entity expansion), nesting is bounded by `limits::MAX_XML_DEPTH` and namespace declarations by
//! `limits::MAX_XML_NAMESPACES`; attributes other than namespace declarations are ignored.

use std::fmt;

use crate::limits::{MAX_XML_DEPTH, MAX_XML_NAMESPACES};

/// The WebDAV namespace.
pub const DAV_NS: &str = "DAV:";

/// A namespace-resolved element name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlName {
    /// Namespace URI (empty when none is in scope).
    pub ns: String,
    /// Local name.
    pub local: String,
}

impl XmlName {
    /// Whether this is `local` in the `DAV:` namespace.
    pub fn is_dav(&self, local: &str) -> bool {
        self.ns == DAV_NS && self.local == local
    }
}

/// One piece of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlEvent {
    /// An element opens (a self-closing element yields `Start` then `End`). `content_start` is the byte offset
    /// just past the start tag.
    Start { name: XmlName, content_start: usize },
    /// An element closes. `content_end` is the byte offset of its end tag (or of the `/>`).
    End { name: XmlName, content_end: usize },
    /// Character data (entities decoded, CDATA included verbatim).
    Text(String),
}

/// Malformed or over-limit XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid XML: {}", self.0)
    }
}

impl std::error::Error for XmlError {}

fn err<T>(msg: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError(msg.into()))
}

/// A pull reader over a caller-owned buffer. Offsets are relative to the buffer; after dropping consumed bytes
/// from its front, tell the reader with [`XmlReader::rebase`].
#[derive(Debug, Default)]
pub struct XmlReader {
    pos: usize,
    /// Open elements: qualified name as written, resolved name, namespace-stack length before it.
    open: Vec<(String, XmlName, usize)>,
    /// In-scope declarations (prefix, uri); the default namespace has an empty prefix.
    namespaces: Vec<(String, String)>,
    /// A self-closing element whose `End` is still to be returned.
    pending_end: Option<usize>,
    seen_root: bool,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes the five predefined entities and character references.
pub fn decode_text(raw: &[u8]) -> Result<String, XmlError> {
    let text = std::str::from_utf8(raw).map_err(|_| XmlError("text is not UTF-8".into()))?;
    if !text.contains('&') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';').ok_or_else(|| XmlError("unterminated entity".into()))?;
        let entity = &rest[amp + 1..amp + semi];
        let ch = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32).ok_or_else(|| XmlError(format!("unknown entity &{entity};")))?
            }
        };
        out.push(ch);
        rest = &rest[amp + semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Finds the `>` closing a start tag, skipping quoted attribute values.
fn tag_end(bytes: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if q == b => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || b >= 0x80
}

impl XmlReader {
    /// A reader at the start of a document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of the buffer fully consumed so far (safe to drop before refilling).
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// Informs the reader that `n` bytes were removed from the front of the buffer.
    pub fn rebase(&mut self, n: usize) {
        self.pos -= n;
    }

    /// Current nesting depth (open elements).
    pub fn depth(&self) -> usize {
        self.open.len()
    }

    /// The next event in `buf`, or `Ok(None)`: at the end of the document when `eof`, else when `buf` ends
    /// inside a token (refill and call again).
    pub fn next_event(&mut self, buf: &[u8], eof: bool) -> Result<Option<XmlEvent>, XmlError> {
        if let Some(content_end) = self.pending_end.take() {
            let (_, name, ns_len) = self.open.pop().ok_or_else(|| XmlError("unbalanced element".into()))?;
            self.namespaces.truncate(ns_len);
            return Ok(Some(XmlEvent::End { name, content_end }));
        }
        loop {
            let rest = &buf[self.pos..];
            if rest.is_empty() {
                return self.at_end(eof);
            }
            if rest[0] != b'<' {
                let len = match rest.iter().position(|&b| b == b'<') {
                    Some(len) => len,
                    None if eof => rest.len(),
                    None => return Ok(None),
                };
                let raw = &rest[..len];
                self.pos += len;
                if self.open.is_empty() {
                    if raw.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return err("text outside the root element");
                }
                return Ok(Some(XmlEvent::Text(decode_text(raw)?)));
            }
            if rest.starts_with(b"<?") {
                let Some(end) = find(rest, b"?>") else { return self.incomplete(eof) };
                self.pos += end + 2;
            } else if rest.starts_with(b"<!--") {
                let Some(end) = find(&rest[4..], b"-->") else { return self.incomplete(eof) };
                self.pos += 4 + end + 3;
            } else if rest.starts_with(b"<![CDATA[") {
                let Some(end) = find(&rest[9..], b"]]>") else { return self.incomplete(eof) };
                let text = std::str::from_utf8(&rest[9..9 + end]).map_err(|_| XmlError("CDATA is not UTF-8".into()))?;
                let text = text.to_string();
                self.pos += 9 + end + 3;
                if self.open.is_empty() {
                    return err("CDATA outside the root element");
                }
                return Ok(Some(XmlEvent::Text(text)));
            } else if rest.starts_with(b"<!") {
                if rest.len() < 9 && !eof {
                    return Ok(None);
                }
                return err("DTDs and declarations are not accepted");
            } else if rest.starts_with(b"</") {
                let Some(end) = rest.iter().position(|&b| b == b'>') else { return self.incomplete(eof) };
                let qname = std::str::from_utf8(&rest[2..end]).map_err(|_| XmlError("bad end tag".into()))?.trim();
                let content_end = self.pos;
                let (open_q, name, ns_len) = self.open.pop().ok_or_else(|| XmlError(format!("stray </{qname}>")))?;
                if open_q != qname {
                    return err(format!("</{qname}> closes <{open_q}>"));
                }
                self.namespaces.truncate(ns_len);
                self.pos += end + 1;
                return Ok(Some(XmlEvent::End { name, content_end }));
            } else {
                let Some(end) = tag_end(rest) else { return self.incomplete(eof) };
                return self.start_tag(&rest[1..end], end).map(Some);
            }
        }
    }

    fn incomplete(&self, eof: bool) -> Result<Option<XmlEvent>, XmlError> {
        if eof {
            return err("document ends inside a token");
        }
        Ok(None)
    }

    fn at_end(&self, eof: bool) -> Result<Option<XmlEvent>, XmlError> {
        if eof && !self.open.is_empty() {
            return err(format!("document ends inside <{}>", self.open.last().map_or("", |o| o.0.as_str())));
        }
        if eof && !self.seen_root {
            return err("empty document");
        }
        Ok(None)
    }

    /// Parses `<name attr="v" ...>` (inner = between `<` and `>`), `end` = offset of `>` from `self.pos`.
    fn start_tag(&mut self, inner: &[u8], end: usize) -> Result<XmlEvent, XmlError> {
        if self.open.is_empty() && self.seen_root {
            return err("a second root element");
        }
        if self.open.len() >= MAX_XML_DEPTH {
            return err(format!("elements nested deeper than {MAX_XML_DEPTH}"));
        }
        let self_closing = inner.last() == Some(&b'/');
        let inner = if self_closing { &inner[..inner.len() - 1] } else { inner };
        let inner = std::str::from_utf8(inner).map_err(|_| XmlError("tag is not UTF-8".into()))?;
        let name_len = inner.bytes().position(|b| !is_name_byte(b)).unwrap_or(inner.len());
        let qname = &inner[..name_len];
        if qname.is_empty() {
            return err("element without a name");
        }
        let ns_len = self.namespaces.len();
        let mut attrs = inner[name_len..].trim_start();
        while !attrs.is_empty() {
            let (attr, value, rest) = split_attribute(attrs)?;
            if attr == "xmlns" || attr.starts_with("xmlns:") {
                if self.namespaces.len() >= MAX_XML_NAMESPACES {
                    return err(format!("more than {MAX_XML_NAMESPACES} namespace declarations"));
                }
                let prefix = attr.strip_prefix("xmlns").unwrap_or("").trim_start_matches(':');
                self.namespaces.push((prefix.to_string(), decode_text(value.as_bytes())?));
            }
            attrs = rest.trim_start();
        }
        let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
        let ns = match self.namespaces.iter().rev().find(|(p, _)| p == prefix) {
            Some((_, uri)) => uri.clone(),
            None if prefix.is_empty() => String::new(),
            None => return err(format!("undeclared namespace prefix {prefix:?}")),
        };
        let name = XmlName { ns, local: local.to_string() };
        let tag_start = self.pos;
        self.pos += end + 1;
        self.seen_root = true;
        self.open.push((qname.to_string(), name.clone(), ns_len));
        if self_closing {
            self.pending_end = Some(tag_start + end - 1);
        }
        Ok(XmlEvent::Start { name, content_start: self.pos })
    }
}

/// Splits `name="value" rest` into its parts.
fn split_attribute(attrs: &str) -> Result<(&str, &str, &str), XmlError> {
    let (name, rest) = attrs.split_once('=').ok_or_else(|| XmlError(format!("attribute without value: {attrs:?}")))?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
    let quote = quote.ok_or_else(|| XmlError("unquoted attribute value".into()))?;
    let close = rest[1..].find(quote).ok_or_else(|| XmlError("unterminated attribute value".into()))?;
    Ok((name.trim(), &rest[1..1 + close], &rest[close + 2..]))
}

/// Escapes text for element content or attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Parses a whole in-memory document into its events (server-side request bodies, already size-capped).
pub fn parse_all(doc: &[u8]) -> Result<Vec<XmlEvent>, XmlError> {
    let mut reader = XmlReader::new();
    let mut events = Vec::new();
    while let Some(event) = reader.next_event(doc, true)? {
        events.push(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(events: &[XmlEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                XmlEvent::Start { name, .. } => format!("+{}|{}", name.ns, name.local),
                XmlEvent::End { name, .. } => format!("-{}", name.local),
                XmlEvent::Text(t) => format!("'{}'", t.trim()),
            })
            .collect()
    }

    #[test]
    fn resolves_prefixed_and_default_namespaces() {
        let doc = br#"<?xml version="1.0" encoding="utf-8"?>
            <D:propfind xmlns:D="DAV:"><D:prop><x:color xmlns:x="urn:x"/><owner xmlns="urn:o">a &amp; b</owner></D:prop></D:propfind>"#;
        let events = parse_all(doc).unwrap();
        assert_eq!(
            names(&events),
            [
                "+DAV:|propfind",
                "+DAV:|prop",
                "+urn:x|color",
                "-color",
                "+urn:o|owner",
                "'a & b'",
                "-owner",
                "-prop",
                "-propfind"
            ]
        );
    }

    #[test]
    fn content_offsets_delimit_raw_inner_xml() {
        let doc = b"<a><b>x<c/>y</b></a>";
        let events = parse_all(doc).unwrap();
        let start = events.iter().find_map(|e| match e {
            XmlEvent::Start { name, content_start } if name.local == "b" => Some(*content_start),
            _ => None,
        });
        let end = events.iter().find_map(|e| match e {
            XmlEvent::End { name, content_end } if name.local == "b" => Some(*content_end),
            _ => None,
        });
        assert_eq!(&doc[start.unwrap()..end.unwrap()], b"x<c/>y");
    }

    #[test]
    fn refuses_hostile_or_broken_documents() {
        let deep = "<a>".repeat(MAX_XML_DEPTH + 1) + &"</a>".repeat(MAX_XML_DEPTH + 1);
        for bad in [
            &b"<!DOCTYPE x [<!ENTITY e \"boom\">]><x>&e;</x>"[..],
            b"<a><b></a></b>",
            b"<a>",
            b"<p:a/>",
            b"<a>&unknown;</a>",
            b"<a/><b/>",
            b"text<a/>",
            b"",
            deep.as_bytes(),
        ] {
            assert!(parse_all(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn incremental_feeding_yields_the_same_events() {
        let doc = br#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/fs/a%20b</d:href></d:response><!-- c --><d:response><d:href><![CDATA[/fs/<x>]]></d:href></d:response></d:multistatus>"#;
        let whole = parse_all(doc).unwrap();
        let mut reader = XmlReader::new();
        let mut buf = Vec::new();
        let mut fed = 0;
        let mut events = Vec::new();
        loop {
            match reader.next_event(&buf, fed == doc.len()).unwrap() {
                Some(e) => events.push(e),
                None if fed == doc.len() => break,
                None => {
                    let drop = reader.consumed();
                    buf.drain(..drop);
                    reader.rebase(drop);
                    buf.push(doc[fed]);
                    fed += 1;
                }
            }
        }
        let strip = |v: &[XmlEvent]| names(v);
        assert_eq!(strip(&events), strip(&whole));
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
        assert_eq!(decode_text(b"&#65;&#x42;&lt;").unwrap(), "AB<");
    }
}
