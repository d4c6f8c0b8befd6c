//! GET and HEAD: files streamed in `COPY_BUF_LEN` chunks with `ETag`, `Last-Modified`, conditional requests
//! (`If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`, `If-Range`), single byte ranges,
//! and gzip for compressible types when the client accepts it (never for ranges). A collection answers with a
//! plain-text listing, one name per line (directories end in `/`), streamed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::error::{DavError, Failure};
use super::gzip::{accepts_gzip, GzipEncoder, GzipSlot};
use super::handler::{etag_of, DavRequest, WebDav};
use super::path::is_reserved_name;
use crate::http::date::{format_http_date, parse_http_date};
use crate::http::etag::{if_match_matches, if_none_match_matches};
use crate::http::range::{content_range, parse_range, unsatisfied_content_range, ByteRange};
use crate::http::{BodyWriter, RequestHead, ResponseHead, ServerConn};
use crate::limits::{COPY_BUF_LEN, GZIP_MIN_LEN};

/// Content types by file extension: (extensions, type, worth compressing).
const TYPES: &[(&[&str], &str, bool)] = &[
    (&["html", "htm"], "text/html; charset=utf-8", true),
    (&["txt", "log", "md", "conf", "cfg", "ini", "env"], "text/plain; charset=utf-8", true),
    (&["csv"], "text/csv; charset=utf-8", true),
    (&["css"], "text/css; charset=utf-8", true),
    (&["js", "mjs"], "text/javascript; charset=utf-8", true),
    (&["json"], "application/json", true),
    (&["xml"], "application/xml", true),
    (&["svg"], "image/svg+xml", true),
    (&["yaml", "yml"], "application/yaml", true),
    (&["toml"], "application/toml", true),
    (&["sh", "py", "rs", "c", "h", "go", "ts"], "text/plain; charset=utf-8", true),
    (&["png"], "image/png", false),
    (&["jpg", "jpeg"], "image/jpeg", false),
    (&["gif"], "image/gif", false),
    (&["webp"], "image/webp", false),
    (&["pdf"], "application/pdf", false),
    (&["zip"], "application/zip", false),
    (&["gz", "tgz"], "application/gzip", false),
    (&["wasm"], "application/wasm", false),
];

/// The content type of `name` and whether it is worth compressing.
pub(crate) fn content_type(name: &str) -> (&'static str, bool) {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    TYPES
        .iter()
        .find(|(exts, _, _)| exts.contains(&ext.as_str()))
        .map_or(("application/octet-stream", false), |(_, t, z)| (t, *z))
}

/// Whole seconds (HTTP dates have no finer precision).
fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

/// Evaluates the conditional headers for a GET/HEAD (RFC 9110 §13.2.2 order): `Err(412)` or `Ok(true)` for 304.
fn not_modified(head: &RequestHead, etags: &[&str], modified: SystemTime) -> Result<bool, DavError> {
    let h = &head.headers;
    if let Some(im) = h.get("if-match") {
        if !etags.iter().any(|e| if_match_matches(im, e)) {
            return Err(DavError::new(412, "If-Match does not match"));
        }
    } else if let Some(since) = h.get("if-unmodified-since").and_then(parse_http_date) {
        if secs(modified) > secs(since) {
            return Err(DavError::new(412, "modified since If-Unmodified-Since"));
        }
    }
    if let Some(inm) = h.get("if-none-match") {
        return Ok(etags.iter().any(|e| if_none_match_matches(inm, e)));
    }
    Ok(h.get("if-modified-since").and_then(parse_http_date).is_some_and(|since| secs(modified) <= secs(since)))
}

/// Whether `If-Range` (if any) still allows serving the range.
fn range_still_valid(head: &RequestHead, etag: &str, modified: SystemTime) -> bool {
    match head.headers.get("if-range") {
        None => true,
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) => parse_http_date(v).is_some_and(|d| secs(d) == secs(modified)),
    }
}

impl WebDav {
    pub(crate) async fn get<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
    ) -> Result<(), Failure> {
        let (target, meta) = self.root.resolve_existing(&req.path)?;
        if meta.is_dir() {
            return self.list_as_text(conn, req, &target).await;
        }
        let file = self.root.open_read(&target, &req.path)?;
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let etag = etag_of(&meta);
        let gz_etag = format!("{}-gz\"", etag.trim_end_matches('"'));
        let (ctype, compressible) = content_type(req.path.name().unwrap_or_default());
        let mut head = ResponseHead::new(200)
            .header("ETag", etag.clone())
            .header("Last-Modified", format_http_date(modified))
            .header("Accept-Ranges", "bytes");
        if compressible {
            head = head.header("Vary", "Accept-Encoding");
        }
        if not_modified(req.head, &[&etag, &gz_etag], modified)? {
            head.status = 304;
            head.reason = "Not Modified".into();
            return Ok(conn.respond(head, b"").await?);
        }
        head = head.header("Content-Type", ctype);
        let len = meta.len();
        let range = match range_still_valid(req.head, &etag, modified) {
            true => parse_range(req.head.headers.get("range"), len),
            false => ByteRange::Full,
        };
        match range {
            ByteRange::Unsatisfiable => {
                let head = ResponseHead::new(416).header("Content-Range", unsatisfied_content_range(len));
                Ok(conn.respond(head, b"").await?)
            }
            ByteRange::Partial { start, end } => {
                head.status = 206;
                head.reason = "Partial Content".into();
                let head = head.header("Content-Range", content_range(start, end, len));
                let mut w = conn.respond_stream(head, Some(end - start + 1)).await?;
                send_file(&mut w, file, start, end - start + 1, None).await?;
                Ok(w.finish().await?)
            }
            ByteRange::Full => {
                let slot =
                    (compressible && len >= GZIP_MIN_LEN && accepts_gzip(req.head.headers.get("accept-encoding")))
                        .then(|| GzipSlot::acquire(&self.gzip_streams))
                        .flatten();
                if let Some(_slot) = slot {
                    head.headers.set("ETag", gz_etag);
                    let head = head.header("Content-Encoding", "gzip");
                    let mut w = conn.respond_stream(head, None).await?;
                    send_file(&mut w, file, 0, len, Some(GzipEncoder::new())).await?;
                    return Ok(w.finish().await?);
                }
                let mut w = conn.respond_stream(head, Some(len)).await?;
                send_file(&mut w, file, 0, len, None).await?;
                Ok(w.finish().await?)
            }
        }
    }

    async fn list_as_text<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
        dir: &std::path::Path,
    ) -> Result<(), Failure> {
        let entries = std::fs::read_dir(dir).map_err(|e| DavError::io(e, &req.path.key()))?;
        let head = ResponseHead::new(200).header("Content-Type", "text/plain; charset=utf-8");
        let mut w = conn.respond_stream(head, None).await?;
        if w.is_discarding() {
            return Ok(w.finish().await?);
        }
        let mut buf = String::new();
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else { continue };
            if is_reserved_name(&name) || self.root.hides(&dir.join(&name)) {
                continue;
            }
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            buf.push_str(&name);
            buf.push_str(if is_dir { "/\n" } else { "\n" });
            if buf.len() >= COPY_BUF_LEN {
                w.write_all(buf.as_bytes()).await?;
                buf.clear();
            }
        }
        w.write_all(buf.as_bytes()).await?;
        Ok(w.finish().await?)
    }
}

/// Streams `len` bytes of `file` from `start` into `w`, optionally through gzip. A file that shrank meanwhile
/// breaks the answer off (the connection closes; the length promised can no longer be kept).
async fn send_file<S: AsyncRead + AsyncWrite + Unpin>(
    w: &mut BodyWriter<'_, S>,
    mut file: File,
    start: u64,
    len: u64,
    mut gzip: Option<GzipEncoder>,
) -> std::io::Result<()> {
    if w.is_discarding() {
        return Ok(());
    }
    file.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; COPY_BUF_LEN];
    let mut packed = Vec::new();
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank while being sent"));
        }
        left -= n as u64;
        match gzip.as_mut() {
            Some(enc) => {
                enc.write(&buf[..n], &mut packed);
                if !packed.is_empty() {
                    w.write_all(&packed).await?;
                    packed.clear();
                }
            }
            None => w.write_all(&buf[..n]).await?,
        }
        futures_lite::future::yield_now().await;
    }
    if let Some(enc) = gzip {
        enc.finish(&mut packed);
        w.write_all(&packed).await?;
    }
    Ok(())
}
