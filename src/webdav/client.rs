//! The operator's WebDAV client for a WebTTY filesystem sidecar: list, stat, read, write, mkdir, delete, move
//! and copy over any stream the caller connected (an rstream tunnel dial, TCP, TLS).
//!
//! Requests follow upstream `rstream webtty fs`: paths are relative to the server's `--fs-root` and normalised
//! (leading `/`, `.`/`..` resolved lexically, never above `/`), then percent-encoded under the sidecar base path
//! (`/fs`). Listings use `PROPFIND` with `Depth: 1` and upstream's body; the multistatus answer is parsed as it
//! streams through a fixed buffer (`limits::WEBDAV_XML_BUF_LEN`), at most `limits::MAX_WEBDAV_LIST_ENTRIES`
//! entries. Reads and writes stream in `COPY_BUF_LEN` chunks. One client owns one connection (keep-alive);
//! after [`DavClient::is_reusable`] turns false, connect again.
//!
//! ```no_run
//! # async fn ls(stream: async_net::TcpStream) -> Result<(), rstream::webdav::DavClientError> {
//! use rstream::webdav::DavClient;
//! let mut fs = DavClient::new(stream, "127.0.0.1:8080", "/fs").with_bearer_token("secret");
//! for entry in fs.list("/").await? {
//!     println!("{} {:?} {:?}", entry.path, entry.kind, entry.size);
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::xml::{XmlEvent, XmlReader, DAV_NS};
use crate::http::date::{format_rfc3339, parse_http_date};
use crate::http::percent::{encode_path, percent_decode_utf8};
use crate::http::{ClientConn, HttpError, RequestHead, ResponseHead};
use crate::limits::{COPY_BUF_LEN, MAX_WEBDAV_LIST_ENTRIES, WEBDAV_ERROR_BODY_LEN, WEBDAV_XML_BUF_LEN};
use crate::secret::Secret;

/// The PROPFIND body upstream's client sends.
const PROPFIND_BODY: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><propfind xmlns=\"DAV:\"><prop><resourcetype/><getcontentlength/><getlastmodified/></prop></propfind>";

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A collection.
    Directory,
}

/// One file or directory as listed (`{"path","kind","size"?,"modified"?}` in JSON, as upstream).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DavEntry {
    /// Path relative to the filesystem root, with a leading `/` (`/logs/app.log`).
    pub path: String,
    /// File or directory.
    pub kind: EntryKind,
    /// Size in bytes (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Last modification, RFC 3339 UTC (the server's `getlastmodified`; kept verbatim if not an HTTP date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
}

/// Why a filesystem operation failed.
#[derive(Debug)]
pub enum DavClientError {
    /// The HTTP exchange failed (connection, framing, timeout).
    Http(HttpError),
    /// The server answered with an unexpected status; `body` holds at most `limits::WEBDAV_ERROR_BODY_LEN`
    /// bytes of its answer.
    Status {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Start of the answer body.
        body: String,
    },
    /// The multistatus answer could not be understood.
    Protocol(String),
    /// Copying to or from the local side failed.
    Local(io::Error),
    /// A file was wanted and the path (normalised) is a directory: its GET would be a listing, not its bytes.
    IsDirectory(String),
}

impl fmt::Display for DavClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DavClientError::Http(e) => write!(f, "webtty filesystem request failed: {e}"),
            DavClientError::Status { status, reason, body } => {
                write!(f, "webtty filesystem request failed with status {status} {reason}: {}", body.trim_end())
            }
            DavClientError::Protocol(why) => write!(f, "webtty filesystem answer not understood: {why}"),
            DavClientError::Local(e) => write!(f, "local i/o: {e}"),
            DavClientError::IsDirectory(path) => write!(f, "{path} is a directory"),
        }
    }
}

impl std::error::Error for DavClientError {}

impl From<HttpError> for DavClientError {
    fn from(e: HttpError) -> Self {
        DavClientError::Http(e)
    }
}

impl DavClientError {
    /// The HTTP status, when the server answered with an unexpected one.
    pub fn status(&self) -> Option<u16> {
        match self {
            DavClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Normalises a remote path like upstream: leading `/`, `.` and `..` resolved lexically (never above `/`),
/// duplicate and trailing slashes dropped.
pub fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for piece in path.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A WebDAV client over one connection.
pub struct DavClient<S: AsyncRead + AsyncWrite + Unpin> {
    http: ClientConn<S>,
    base: String,
    bearer: Option<Secret>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> DavClient<S> {
    /// A client on `stream` for the sidecar at `base_path` (`/fs`); `host` is sent as `Host`.
    pub fn new(stream: S, host: impl Into<String>, base_path: &str) -> Self {
        let base = normalize_path(base_path);
        let base = if base == "/" { String::new() } else { base };
        Self { http: ClientConn::new(stream, host), base, bearer: None }
    }

    /// Sends `Authorization: Bearer <token>` with every request (the WebTTY server's local token).
    pub fn with_bearer_token(mut self, token: impl Into<Secret>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// Whether another operation may use this connection.
    pub fn is_reusable(&self) -> bool {
        self.http.is_reusable()
    }

    /// The encoded request target of a remote path.
    fn target(&self, path: &str) -> String {
        format!("{}{}", self.base, encode_path(&normalize_path(path)))
    }

    fn head(&self, method: &str, path: &str) -> RequestHead {
        let mut head = RequestHead::new(method, self.target(path));
        if let Some(token) = &self.bearer {
            head.headers.add("Authorization", format!("Bearer {}", token.expose()));
        }
        head
    }

    /// Turns an unexpected answer into an error quoting the start of its body.
    async fn failure(&mut self, resp: ResponseHead) -> DavClientError {
        let mut body = Vec::new();
        let mut reader = self.http.body();
        let mut chunk = [0u8; 1024];
        while body.len() < WEBDAV_ERROR_BODY_LEN {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        body.truncate(WEBDAV_ERROR_BODY_LEN);
        DavClientError::Status { status: resp.status, reason: resp.reason, body: String::from_utf8_lossy(&body).into() }
    }

    async fn expect(&mut self, resp: ResponseHead, ok: &[u16]) -> Result<(), DavClientError> {
        if !ok.contains(&resp.status) {
            return Err(self.failure(resp).await);
        }
        self.http.read_body_to_vec(WEBDAV_ERROR_BODY_LEN).await.map(drop).or(Ok(()))
    }

    async fn propfind(&mut self, path: &str, depth: &str) -> Result<Vec<DavEntry>, DavClientError> {
        let head =
            self.head("PROPFIND", path).header("Depth", depth).header("Content-Type", "application/xml; charset=utf-8");
        let resp = self.http.request(&head, PROPFIND_BODY.as_bytes()).await?;
        if resp.status != 207 {
            return Err(self.failure(resp).await);
        }
        let base = self.base.clone();
        parse_multistatus(self.http.body(), &base).await
    }

    /// The entries directly inside the directory `path` (the directory itself is left out).
    pub async fn list(&mut self, path: &str) -> Result<Vec<DavEntry>, DavClientError> {
        let own = normalize_path(path);
        let entries = self.propfind(path, "1").await?;
        Ok(entries.into_iter().filter(|e| e.path != own).collect())
    }

    /// The entry at `path` (PROPFIND Depth 0).
    pub async fn stat(&mut self, path: &str) -> Result<DavEntry, DavClientError> {
        let entries = self.propfind(path, "0").await?;
        entries.into_iter().next().ok_or_else(|| DavClientError::Protocol("empty multistatus".into()))
    }

    /// The file at `path` (PROPFIND Depth 0); a directory is [`DavClientError::IsDirectory`].
    pub async fn stat_file(&mut self, path: &str) -> Result<DavEntry, DavClientError> {
        let entry = self.stat(path).await?;
        if entry.kind == EntryKind::Directory {
            return Err(DavClientError::IsDirectory(entry.path));
        }
        Ok(entry)
    }

    /// Streams the body of `GET path` into `out`; returns the number of bytes copied. A directory answers with
    /// a listing: call [`DavClient::stat_file`] first when only a file will do.
    pub async fn read<W: AsyncWrite + Unpin>(&mut self, path: &str, mut out: W) -> Result<u64, DavClientError> {
        let resp = self.http.request(&self.head("GET", path), b"").await?;
        if resp.status != 200 {
            return Err(self.failure(resp).await);
        }
        let mut body = self.http.body();
        let mut buf = vec![0u8; COPY_BUF_LEN];
        let mut total = 0u64;
        loop {
            let n = body.read(&mut buf).await.map_err(|e| DavClientError::Http(e.into()))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).await.map_err(DavClientError::Local)?;
            total += n as u64;
        }
        out.flush().await.map_err(DavClientError::Local)?;
        Ok(total)
    }

    /// Uploads `body` to `path` (replacing a file atomically on the server): `Some(len)` sends exactly `len`
    /// bytes with `Content-Length`, `None` streams chunked until `body` ends.
    pub async fn write<R: AsyncRead + Unpin>(
        &mut self,
        path: &str,
        body: R,
        len: Option<u64>,
    ) -> Result<(), DavClientError> {
        let head = self.head("PUT", path);
        let resp = self.http.request_streaming(&head, body, len).await?;
        self.expect(resp, &[200, 201, 204]).await
    }

    /// Creates the directory `path`; an existing one (405) is fine, as upstream.
    pub async fn mkdir(&mut self, path: &str) -> Result<(), DavClientError> {
        let resp = self.http.request(&self.head("MKCOL", path), b"").await?;
        self.expect(resp, &[200, 201, 405]).await
    }

    /// Deletes the file or directory (recursively) at `path`.
    pub async fn delete(&mut self, path: &str) -> Result<(), DavClientError> {
        let resp = self.http.request(&self.head("DELETE", path), b"").await?;
        self.expect(resp, &[200, 204]).await
    }

    async fn relocate(&mut self, method: &str, from: &str, to: &str, overwrite: bool) -> Result<(), DavClientError> {
        let head = self
            .head(method, from)
            .header("Destination", self.target(to))
            .header("Overwrite", if overwrite { "T" } else { "F" });
        let resp = self.http.request(&head, b"").await?;
        self.expect(resp, &[200, 201, 204]).await
    }

    /// Moves (renames) `from` to `to`; with `overwrite` false an existing destination is an error (412).
    pub async fn rename(&mut self, from: &str, to: &str, overwrite: bool) -> Result<(), DavClientError> {
        self.relocate("MOVE", from, to, overwrite).await
    }

    /// Copies `from` (a directory: recursively) to `to`.
    pub async fn copy(&mut self, from: &str, to: &str, overwrite: bool) -> Result<(), DavClientError> {
        self.relocate("COPY", from, to, overwrite).await
    }
}

/// Properties of one `<D:response>` being read.
#[derive(Default)]
struct Pending {
    href: String,
    collection: bool,
    size: Option<u64>,
    modified: Option<String>,
    ok: bool,
}

/// Converts an `href` (absolute URL or path, percent-encoded) into a path below `base`.
fn href_to_path(href: &str, base: &str) -> Result<String, DavClientError> {
    let href = href.trim();
    let path = match href.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => href,
    };
    let decoded = percent_decode_utf8(path).map_err(|e| DavClientError::Protocol(e.to_string()))?;
    let below = decoded.strip_prefix(base).filter(|rest| rest.is_empty() || rest.starts_with('/'));
    Ok(normalize_path(below.unwrap_or(&decoded)))
}

/// Reads a multistatus answer through a fixed buffer and collects the entries whose properties came with a
/// 200 status.
async fn parse_multistatus<R: AsyncRead + Unpin>(mut body: R, base: &str) -> Result<Vec<DavEntry>, DavClientError> {
    let mut buf = vec![0u8; WEBDAV_XML_BUF_LEN];
    let mut filled = 0;
    let mut eof = false;
    let mut reader = XmlReader::new();
    let mut entries = Vec::new();
    let mut pending = Pending::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut propstat_ok = false;
    let mut staged = Pending::default();
    loop {
        let event = reader.next_event(&buf[..filled], eof).map_err(|e| DavClientError::Protocol(e.to_string()))?;
        let Some(event) = event else {
            if eof {
                break;
            }
            let used = reader.consumed();
            buf.copy_within(used..filled, 0);
            filled -= used;
            reader.rebase(used);
            if filled == buf.len() {
                return Err(DavClientError::Protocol(format!("XML token larger than {WEBDAV_XML_BUF_LEN} bytes")));
            }
            let n = body.read(&mut buf[filled..]).await.map_err(|e| DavClientError::Http(e.into()))?;
            filled += n;
            eof = n == 0;
            continue;
        };
        match event {
            XmlEvent::Start { name, .. } => {
                let local = if name.ns == DAV_NS { name.local } else { format!("{{{}}}{}", name.ns, name.local) };
                match local.as_str() {
                    "response" => pending = Pending::default(),
                    "propstat" => staged = Pending::default(),
                    "collection" if path.last().map(String::as_str) == Some("resourcetype") => staged.collection = true,
                    _ => {}
                }
                path.push(local);
                text.clear();
            }
            XmlEvent::Text(t) => {
                if text.len() + t.len() <= WEBDAV_XML_BUF_LEN {
                    text.push_str(&t);
                }
            }
            XmlEvent::End { .. } => {
                let local = path.pop().unwrap_or_default();
                let parent = path.last().map(String::as_str).unwrap_or_default();
                match (parent, local.as_str()) {
                    ("response", "href") => pending.href = text.trim().to_string(),
                    ("propstat", "status") => propstat_ok = text.contains(" 200 "),
                    ("prop", "getcontentlength") => staged.size = text.trim().parse().ok(),
                    ("prop", "getlastmodified") => {
                        let raw = text.trim();
                        staged.modified = Some(parse_http_date(raw).map_or_else(|| raw.to_string(), format_rfc3339));
                    }
                    (_, "propstat") if propstat_ok => {
                        pending.collection |= staged.collection;
                        pending.size = pending.size.or(staged.size);
                        pending.modified = pending.modified.take().or(staged.modified.take());
                        pending.ok = true;
                        propstat_ok = false;
                    }
                    (_, "response") if pending.ok && !pending.href.is_empty() => {
                        if entries.len() >= MAX_WEBDAV_LIST_ENTRIES {
                            return Err(DavClientError::Protocol(format!(
                                "listing has more than {MAX_WEBDAV_LIST_ENTRIES} entries"
                            )));
                        }
                        let kind = if pending.collection { EntryKind::Directory } else { EntryKind::File };
                        entries.push(DavEntry {
                            path: href_to_path(&pending.href, base)?,
                            kind,
                            size: if kind == EntryKind::File { pending.size } else { None },
                            modified: pending.modified.take(),
                        });
                    }
                    _ => {}
                }
                text.clear();
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_like_upstream() {
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("a//b/./c/"), "/a/b/c");
        assert_eq!(normalize_path("/../../etc"), "/etc");
        assert_eq!(normalize_path("/a/b/../c"), "/a/c");
    }

    #[test]
    fn hrefs_become_paths_below_the_base() {
        assert_eq!(href_to_path("/fs/dir%20x/f.txt", "/fs").unwrap(), "/dir x/f.txt");
        assert_eq!(href_to_path("http://h:1/fs/", "/fs").unwrap(), "/");
        assert_eq!(href_to_path("/fsx/y", "/fs").unwrap(), "/fsx/y");
        assert!(href_to_path("/fs/%zz", "/fs").is_err());
    }

    #[test]
    fn parses_a_foreign_multistatus_through_a_small_stream() {
        // Apache-style prefixes, absolute hrefs, split propstats, and a 404 propstat to ignore.
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:lp1="DAV:">
<D:response><D:href>http://example/fs/docs/</D:href>
<D:propstat><D:prop><lp1:resourcetype><D:collection/></lp1:resourcetype><lp1:getlastmodified>Sun, 06 Nov 1994 08:49:37 GMT</lp1:getlastmodified></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><D:getcontentlength/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>
</D:response>
<D:response><D:href>/fs/docs/r%C3%A9sum%C3%A9.txt</D:href>
<D:propstat><D:prop><D:resourcetype/><D:getcontentlength>1234</D:getcontentlength></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<D:response><D:href>/fs/docs/gone</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>
</D:multistatus>"#;
        let entries =
            futures_lite::future::block_on(parse_multistatus(futures_lite::io::Cursor::new(xml), "/fs")).unwrap();
        assert_eq!(
            entries,
            [
                DavEntry {
                    path: "/docs".into(),
                    kind: EntryKind::Directory,
                    size: None,
                    modified: Some("1994-11-06T08:49:37Z".into())
                },
                DavEntry { path: "/docs/résumé.txt".into(), kind: EntryKind::File, size: Some(1234), modified: None },
            ]
        );
        let json = serde_json::to_string(&entries[1]).unwrap();
        assert_eq!(json, r#"{"path":"/docs/résumé.txt","kind":"file","size":1234}"#);
    }
}
