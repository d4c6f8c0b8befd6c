//! Request and response heads: parsing (httparse), body framing rules, and serialisation.
//!
//! Framing follows RFC 9112 §6 and refuses the shapes used for request smuggling: `Transfer-Encoding` together
//! with `Content-Length`, `Content-Length` values that disagree or are not plain digits, a `Transfer-Encoding`
//! other than exactly `chunked`, `Transfer-Encoding` on HTTP/1.0, and duplicate `Host` fields.

use std::io;

use super::error::HttpError;
use super::headers::{encode_field, Headers};
use crate::limits::MAX_HTTP_HEADERS;

/// HTTP protocol version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: no chunked encoding, connections close after one exchange.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// A request line and its header fields (received by a server or sent by a client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Method, e.g. `GET`, `PROPFIND` (case-sensitive, as sent).
    pub method: String,
    /// Request target as sent (origin form `/path?query`), still percent-encoded.
    pub target: String,
    /// Protocol version.
    pub version: Version,
    /// Header fields.
    pub headers: Headers,
}

impl RequestHead {
    /// An HTTP/1.1 request head without fields.
    pub fn new(method: impl Into<String>, target: impl Into<String>) -> Self {
        Self { method: method.into(), target: target.into(), version: Version::Http11, headers: Headers::new() }
    }

    /// Adds a header field (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.add(name, value);
        self
    }

    /// The target's path (before `?`), still percent-encoded.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target.as_str(), |(p, _)| p)
    }

    /// The target's query (after `?`), if any, still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// A status line and its header fields (sent by a server or received by a client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase (informational only).
    pub reason: String,
    /// Protocol version (a server always writes HTTP/1.1).
    pub version: Version,
    /// Header fields. A server adds `Date`, the framing fields and `Connection: close` itself.
    pub headers: Headers,
}

impl ResponseHead {
    /// A response head with the standard reason phrase and no fields.
    pub fn new(status: u16) -> Self {
        Self { status, reason: reason_phrase(status).to_string(), version: Version::Http11, headers: Headers::new() }
    }

    /// Adds a header field (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.add(name, value);
        self
    }

    /// Whether this status never carries a body (1xx, 204, 304).
    pub fn is_bodiless_status(&self) -> bool {
        bodiless_status(self.status)
    }
}

/// Whether `status` never carries a body (1xx, 204, 304).
pub(crate) fn bodiless_status(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// The standard reason phrase of `status` (HTTP and WebDAV codes); empty for unknown codes.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        507 => "Insufficient Storage",
        _ => "",
    }
}

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the peer closes (responses only).
    UntilClose,
}

fn owned_headers(raw: &[httparse::Header<'_>]) -> Result<Headers, HttpError> {
    let mut headers = Headers::new();
    for h in raw {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HttpError::Malformed(format!("value of header {} is not UTF-8", h.name)))?;
        headers.add(h.name, value.trim());
    }
    Ok(headers)
}

fn version_of(minor: Option<u8>) -> Version {
    if minor == Some(0) {
        Version::Http10
    } else {
        Version::Http11
    }
}

fn parse_failure(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        other => HttpError::Malformed(other.to_string()),
    }
}

/// Parses a request head at the start of `buf`: `Ok(None)` if incomplete, else the head and its length.
pub(crate) fn parse_request(buf: &[u8]) -> Result<Option<(usize, RequestHead)>, HttpError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HTTP_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    let len = match req.parse(buf).map_err(parse_failure)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let head = RequestHead {
        method: req.method.unwrap_or_default().to_string(),
        target: req.path.unwrap_or_default().to_string(),
        version: version_of(req.version),
        headers: owned_headers(req.headers)?,
    };
    Ok(Some((len, head)))
}

/// Parses a response head at the start of `buf`: `Ok(None)` if incomplete, else the head and its length.
pub(crate) fn parse_response(buf: &[u8]) -> Result<Option<(usize, ResponseHead)>, HttpError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HTTP_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    let len = match resp.parse(buf).map_err(parse_failure)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let head = ResponseHead {
        status: resp.code.unwrap_or_default(),
        reason: resp.reason.unwrap_or_default().to_string(),
        version: version_of(resp.version),
        headers: owned_headers(resp.headers)?,
    };
    Ok(Some((len, head)))
}

/// The single `Content-Length` of `headers`, refusing disagreeing duplicates and anything but digits.
fn content_length(headers: &Headers) -> Result<Option<u64>, HttpError> {
    let mut found = None;
    for piece in headers.get_all("content-length").flat_map(|v| v.split(',')) {
        let piece = piece.trim();
        let value = (!piece.is_empty() && piece.len() <= 19 && piece.bytes().all(|b| b.is_ascii_digit()))
            .then(|| piece.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| HttpError::Framing(format!("invalid content-length {piece:?}")))?;
        if found.is_some_and(|f| f != value) {
            return Err(HttpError::Framing("conflicting content-length values".into()));
        }
        found = Some(value);
    }
    Ok(found)
}

/// Whether `Transfer-Encoding` is present, and if so, that it is exactly `chunked`.
fn transfer_encoding(headers: &Headers) -> Result<bool, HttpError> {
    if !headers.contains("transfer-encoding") {
        return Ok(false);
    }
    let codings: Vec<&str> = headers.get_all("transfer-encoding").flat_map(|v| v.split(',')).map(str::trim).collect();
    match codings.as_slice() {
        [only] if only.eq_ignore_ascii_case("chunked") => Ok(true),
        _ => Err(HttpError::UnsupportedTransferEncoding(codings.join(", "))),
    }
}

/// The framing of a request body (RFC 9112 §6.3), refusing ambiguous shapes.
pub(crate) fn request_framing(head: &RequestHead) -> Result<Framing, HttpError> {
    let has_te = head.headers.contains("transfer-encoding");
    let length = content_length(&head.headers)?;
    if has_te && length.is_some() {
        return Err(HttpError::Framing("both content-length and transfer-encoding".into()));
    }
    if has_te && head.version == Version::Http10 {
        return Err(HttpError::Framing("transfer-encoding in an HTTP/1.0 request".into()));
    }
    if transfer_encoding(&head.headers)? {
        return Ok(Framing::Chunked);
    }
    Ok(match length {
        Some(0) | None => Framing::Empty,
        Some(n) => Framing::Length(n),
    })
}

/// The framing of a response body to a request with method `method` (RFC 9112 §6.3).
pub(crate) fn response_framing(method: &str, head: &ResponseHead) -> Result<Framing, HttpError> {
    if method.eq_ignore_ascii_case("HEAD") || head.is_bodiless_status() {
        return Ok(Framing::Empty);
    }
    let has_te = head.headers.contains("transfer-encoding");
    let length = content_length(&head.headers)?;
    if has_te && length.is_some() {
        return Err(HttpError::Framing("both content-length and transfer-encoding".into()));
    }
    if transfer_encoding(&head.headers)? {
        return Ok(Framing::Chunked);
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// Checks the fields a server relies on: exactly one `Host` on HTTP/1.1 (at most one on 1.0).
pub(crate) fn check_request_fields(head: &RequestHead) -> Result<(), HttpError> {
    match (head.headers.get_all("host").count(), head.version) {
        (0, Version::Http11) => Err(HttpError::Malformed("missing host header".into())),
        (0 | 1, _) => Ok(()),
        _ => Err(HttpError::Malformed("duplicate host header".into())),
    }
}

/// Refuses caller-supplied framing fields: the connection writes them itself from the body it is given.
fn check_no_framing_fields(headers: &Headers) -> io::Result<()> {
    for name in ["content-length", "transfer-encoding"] {
        if headers.contains(name) {
            let msg = format!("{name} is set by the http layer from the body, not by the caller");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
    }
    Ok(())
}

fn encode_framing(out: &mut Vec<u8>, framing: Framing) -> io::Result<()> {
    match framing {
        Framing::Length(n) => encode_field(out, "Content-Length", &n.to_string()),
        Framing::Chunked => encode_field(out, "Transfer-Encoding", "chunked"),
        Framing::Empty | Framing::UntilClose => Ok(()),
    }
}

/// Serialises a request head with `Host` (unless the caller set one) and the framing fields of `framing`.
pub(crate) fn encode_request(head: &RequestHead, host: &str, framing: Framing) -> io::Result<Vec<u8>> {
    check_no_framing_fields(&head.headers)?;
    let valid_target = !head.target.is_empty() && !head.target.bytes().any(|b| b <= b' ' || b == 0x7f);
    if !valid_target || head.method.is_empty() || !head.method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        let msg = format!("invalid request line {:?} {:?}", head.method, head.target);
        return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", head.method, head.target).as_bytes());
    if !head.headers.contains("host") {
        encode_field(&mut out, "Host", host)?;
    }
    head.headers.encode_into(&mut out)?;
    encode_framing(&mut out, framing)?;
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// Serialises a response head; `date` adds a `Date` field, `close` adds `Connection: close`.
pub(crate) fn encode_response(head: &ResponseHead, framing: Framing, date: bool, close: bool) -> io::Result<Vec<u8>> {
    check_no_framing_fields(&head.headers)?;
    let reason = if head.reason.is_empty() { reason_phrase(head.status) } else { head.reason.as_str() };
    if !(100..=999).contains(&head.status) || reason.bytes().any(|b| b == b'\r' || b == b'\n') {
        let msg = format!("invalid status line {} {reason:?}", head.status);
        return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", head.status).as_bytes());
    if date && !head.headers.contains("date") {
        encode_field(&mut out, "Date", &super::date::http_date_now())?;
    }
    head.headers.encode_into(&mut out)?;
    encode_framing(&mut out, framing)?;
    if close && !head.headers.has_token("connection", "close") {
        encode_field(&mut out, "Connection", "close")?;
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> RequestHead {
        parse_request(text.as_bytes()).unwrap().unwrap().1
    }

    #[test]
    fn parses_a_complete_request_head_and_reports_its_length() {
        let text = "PUT /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length:  5 \r\n\r\nhello";
        let (len, head) = parse_request(text.as_bytes()).unwrap().unwrap();
        assert_eq!(len, text.len() - 5);
        assert_eq!((head.method.as_str(), head.path(), head.query()), ("PUT", "/a%20b", Some("x=1")));
        assert_eq!(head.headers.get("content-length"), Some("5"));
        assert_eq!(request_framing(&head).unwrap(), Framing::Length(5));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: h\r\n").unwrap(), None);
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        let cases = [
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        for case in cases {
            let err = request_framing(&request(case)).unwrap_err();
            assert_eq!(err.status(), 400, "{case:?}: {err}");
        }
        for te in ["gzip, chunked", "chunked, gzip", "identity", "chunked, chunked"] {
            let case = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(request_framing(&request(&case)).unwrap_err().status(), 501, "{te}");
        }
        let dup_host = request("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
        assert!(check_request_fields(&dup_host).is_err());
        assert!(check_request_fields(&request("GET / HTTP/1.1\r\n\r\n")).is_err());
        assert!(parse_request(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n").is_err());
        assert!(parse_request(b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n").is_err());
    }

    #[test]
    fn identical_duplicate_lengths_and_chunked_are_accepted() {
        let same = request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n");
        assert_eq!(request_framing(&same).unwrap(), Framing::Length(7));
        let chunked = request("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(request_framing(&chunked).unwrap(), Framing::Chunked);
        assert_eq!(request_framing(&request("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).unwrap(), Framing::Empty);
    }

    #[test]
    fn response_framing_follows_method_and_status() {
        let parse = |t: &str| parse_response(t.as_bytes()).unwrap().unwrap().1;
        let with_len = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(response_framing("GET", &with_len).unwrap(), Framing::Length(3));
        assert_eq!(response_framing("HEAD", &with_len).unwrap(), Framing::Empty);
        let open = parse("HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(response_framing("GET", &open).unwrap(), Framing::UntilClose);
        assert_eq!(open.version, Version::Http10);
        assert_eq!(response_framing("GET", &parse("HTTP/1.1 304 Not Modified\r\n\r\n")).unwrap(), Framing::Empty);
    }

    #[test]
    fn heads_serialise_with_framing_and_refuse_caller_framing() {
        let head = RequestHead::new("GET", "/x").header("Accept", "*/*");
        let text = String::from_utf8(encode_request(&head, "example:80", Framing::Chunked).unwrap()).unwrap();
        assert_eq!(text, "GET /x HTTP/1.1\r\nHost: example:80\r\nAccept: */*\r\nTransfer-Encoding: chunked\r\n\r\n");
        let bad = RequestHead::new("GET", "/x y");
        assert!(encode_request(&bad, "h", Framing::Empty).is_err());
        let resp = ResponseHead::new(404).header("Content-Length", "1");
        assert!(encode_response(&resp, Framing::Length(1), false, false).is_err());
        let resp = ResponseHead::new(207);
        let text = String::from_utf8(encode_response(&resp, Framing::Length(2), false, true).unwrap()).unwrap();
        assert_eq!(text, "HTTP/1.1 207 Multi-Status\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
    }
}
