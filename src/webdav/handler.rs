//! The WebDAV handler: configuration, method dispatch, and the checks every request passes through.
//!
//! [`WebDav::handle`] answers one request read by a [`ServerConn`], independent of how the connection arrived
//! (loopback TCP in tests, an rstream tunnel behind the WebTTY server). Order of checks: the path must lie under
//! the mount; read-only mode refuses every writing method with 403; the protected paths (the agent's own
//! secrets) are resolved afresh; the path is decoded and confined ([`DavPath::parse`]); an `If` header must
//! hold (else 412) and submits lock tokens; then the method runs.
//!
//! File I/O runs on the connection's executor as short synchronous reads and writes of `limits::COPY_BUF_LEN`
//! bytes, yielding between chunks, so memory stays flat (one buffer per transfer) and no thread pool is needed;
//! a slow disk slows that executor, which on a device is the same disk every task waits on anyway.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};

use futures_lite::{AsyncRead, AsyncWrite};

use super::error::{DavError, Failure};
use super::lock::{parse_if, submitted_tokens, Condition, IfList, LockTable};
use super::path::{DavPath, FsRoot};
use super::props::DeadProps;
use super::protected::ProtectedPaths;
use crate::http::etag::file_etag;
use crate::http::{HttpError, RequestHead, ResponseHead, ServerConn};
use crate::limits::{DEFAULT_FS_MAX_UPLOAD, MAX_HTTP_BUFFERED_BODY};

/// Methods that change something; all refused in read-only mode.
const WRITE_METHODS: [&str; 8] = ["PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "UNLOCK"];
/// `Allow` in read-write mode.
const ALLOW_RW: &str = "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK";
/// `Allow` in read-only mode.
const ALLOW_RO: &str = "OPTIONS, GET, HEAD, PROPFIND";

/// How to serve a directory over WebDAV.
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// The directory served as `/` (must exist).
    pub root: PathBuf,
    /// Refuse every writing method with 403.
    pub read_only: bool,
    /// Largest PUT body in bytes (413 beyond it).
    pub max_upload: u64,
    /// URL path the handler is mounted at (`/fs`); hrefs in answers carry it.
    pub mount: String,
    /// Paths never served, listed or changed, even inside the root (the agent's own secrets).
    pub protected: ProtectedPaths,
}

impl FsConfig {
    /// Read-write, `limits::DEFAULT_FS_MAX_UPLOAD`, mounted at `/fs`, nothing protected.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            read_only: false,
            max_upload: DEFAULT_FS_MAX_UPLOAD,
            mount: "/fs".into(),
            protected: ProtectedPaths::default(),
        }
    }
}

/// A WebDAV class 1 and 2 server for one directory tree; share it (`Arc`) between connections.
pub struct WebDav {
    pub(crate) root: FsRoot,
    pub(crate) read_only: bool,
    pub(crate) max_upload: u64,
    pub(crate) mount: String,
    locks: Mutex<LockTable>,
    props: Mutex<DeadProps>,
    /// gzip answers streaming now (bounded by `limits::MAX_GZIP_STREAMS`).
    pub(crate) gzip_streams: AtomicUsize,
}

/// One request after the common checks.
pub(crate) struct DavRequest<'a> {
    pub head: &'a RequestHead,
    pub path: DavPath,
    /// Lock tokens submitted in the `If` header.
    pub tokens: Vec<String>,
}

fn lock_unpoisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WebDav {
    /// A handler for `config` (the root must be an existing directory).
    pub fn new(config: FsConfig) -> io::Result<Self> {
        let mount = config.mount.trim_end_matches('/').to_string();
        if !mount.is_empty() && !mount.starts_with('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mount path must start with /: {mount:?}"),
            ));
        }
        Ok(Self {
            root: FsRoot::protecting(&config.root, config.protected)?,
            read_only: config.read_only,
            max_upload: config.max_upload,
            mount,
            locks: Mutex::new(LockTable::new()),
            props: Mutex::new(DeadProps::new()),
            gzip_streams: AtomicUsize::new(0),
        })
    }

    /// The mount path (`/fs`, no trailing slash; empty when mounted at `/`).
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// Whether the handler refuses writes.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The canonical root directory.
    pub fn root_dir(&self) -> &std::path::Path {
        self.root.path()
    }

    /// Whether a (still encoded) request path belongs to this handler: the mount itself or below it.
    pub fn owns(&self, path: &str) -> bool {
        self.below_mount(path).is_some()
    }

    /// The part of a request path below the mount, if it is under it.
    pub(crate) fn below_mount<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.mount.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }

    pub(crate) fn locks(&self) -> MutexGuard<'_, LockTable> {
        lock_unpoisoned(&self.locks)
    }

    pub(crate) fn props(&self) -> MutexGuard<'_, DeadProps> {
        lock_unpoisoned(&self.props)
    }

    /// Serves every request on `stream` (keep-alive) until it closes: paths under the mount go to
    /// [`WebDav::handle`], anything else gets 404. For tests and a dedicated listener.
    pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S) -> Result<(), HttpError> {
        let mut conn = ServerConn::new(stream);
        while let Some(req) = conn.next_request().await? {
            if self.owns(req.path()) {
                self.handle(&mut conn, &req).await?;
            } else {
                let head = ResponseHead::new(404).header("Content-Type", "text/plain; charset=utf-8");
                conn.respond(head, b"not found\n").await?;
            }
        }
        Ok(())
    }

    /// Answers one request whose path is under the mount (see [`WebDav::owns`]). `Err` only when the
    /// connection failed; every refusal is answered with its status.
    pub async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &RequestHead,
    ) -> io::Result<()> {
        match self.dispatch(conn, req).await {
            Ok(()) => Ok(()),
            Err(Failure::Io(e)) => Err(e),
            Err(Failure::Dav(e)) => {
                log_debug!("webdav {} {}: {e}", req.method, req.target);
                self.respond_error(conn, e).await
            }
        }
    }

    async fn dispatch<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        head: &RequestHead,
    ) -> Result<(), Failure> {
        let method = head.method.as_str();
        let raw = self.below_mount(head.path()).ok_or_else(|| DavError::not_found(head.path()))?;
        self.root.refresh_protected();
        if self.read_only && WRITE_METHODS.contains(&method) {
            return Err(DavError::forbidden(format!("{method} refused: the filesystem is read-only")).into());
        }
        let path = DavPath::parse(raw)?;
        let tokens = match head.headers.get("if") {
            Some(value) => self.check_if(&parse_if(value)?, &path, head)?,
            None => Vec::new(),
        };
        let req = DavRequest { head, path, tokens };
        match method {
            "OPTIONS" => self.options(conn).await,
            "GET" | "HEAD" => self.get(conn, &req).await,
            "PUT" => self.put(conn, &req).await,
            "DELETE" => self.delete(conn, &req).await,
            "MKCOL" => self.mkcol(conn, &req).await,
            "COPY" | "MOVE" => self.copy_or_move(conn, &req, method == "MOVE").await,
            "PROPFIND" => self.propfind(conn, &req).await,
            "PROPPATCH" => self.proppatch(conn, &req).await,
            "LOCK" => self.lock(conn, &req).await,
            "UNLOCK" => self.unlock(conn, &req).await,
            _ => Err(DavError::new(405, format!("method {method:?} is not supported")).into()),
        }
    }

    async fn options<S: AsyncRead + AsyncWrite + Unpin>(&self, conn: &mut ServerConn<S>) -> Result<(), Failure> {
        let head = ResponseHead::new(200)
            .header("DAV", "1, 2")
            .header("MS-Author-Via", "DAV")
            .header("Allow", if self.read_only { ALLOW_RO } else { ALLOW_RW });
        Ok(conn.respond(head, b"").await?)
    }

    /// Writes the answer for a refused request: RFC 4918 `<D:error>` XML when a precondition is named, else
    /// the message as text.
    async fn respond_error<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        e: DavError,
    ) -> io::Result<()> {
        let mut head = ResponseHead::new(e.status);
        if e.status == 405 {
            head = head.header("Allow", if self.read_only { ALLOW_RO } else { ALLOW_RW });
        }
        let body = match &e.condition {
            Some(condition) => {
                head = head.header("Content-Type", "application/xml; charset=utf-8");
                format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\">{condition}</D:error>\n")
            }
            None => {
                head = head.header("Content-Type", "text/plain; charset=utf-8");
                format!("{}\n", e.message)
            }
        };
        conn.respond(head, body.as_bytes()).await
    }

    /// Maps a URL from `Destination` or an `If` tag to a path below the mount: an absolute path, or an absolute
    /// URL whose authority is the request's `Host` (else 502, per RFC 4918 for another server).
    pub(crate) fn url_to_path(&self, url: &str, head: &RequestHead) -> Result<DavPath, DavError> {
        let path = if url.starts_with('/') {
            url
        } else {
            let (_, after_scheme) =
                url.split_once("://").ok_or_else(|| DavError::bad_request(format!("invalid URL {url:?}")))?;
            let (authority, path) = after_scheme.split_at(after_scheme.find('/').unwrap_or(after_scheme.len()));
            let host = head.headers.get("host").unwrap_or_default();
            if !authority.eq_ignore_ascii_case(host) {
                return Err(DavError::new(502, format!("destination {url:?} is on another server")));
            }
            path
        };
        if path.contains(['?', '#']) {
            return Err(DavError::bad_request(format!("URL {url:?} has a query or fragment")));
        }
        let rest = self
            .below_mount(if path.is_empty() { "/" } else { path })
            .ok_or_else(|| DavError::forbidden(format!("fs path escapes root: {url:?}")))?;
        DavPath::parse(rest)
    }

    /// Evaluates an `If` header (412 when no list holds) and returns the lock tokens it submits.
    fn check_if(&self, lists: &[IfList], path: &DavPath, head: &RequestHead) -> Result<Vec<String>, DavError> {
        let holds = lists.iter().any(|list| {
            let resource = match &list.resource {
                None => Some(path.clone()),
                Some(url) => self.url_to_path(url, head).ok(),
            };
            let Some(resource) = resource else { return false };
            list.conditions.iter().all(|c| self.condition_holds(c, &resource))
        });
        if !holds {
            return Err(DavError::new(412, format!("If header does not match {:?}", path.key())));
        }
        Ok(submitted_tokens(lists))
    }

    fn condition_holds(&self, condition: &Condition, resource: &DavPath) -> bool {
        match condition {
            Condition::Token { token, not } => {
                let live = self.locks().find(token).is_some_and(|l| l.covers(resource));
                live != *not
            }
            Condition::ETag { etag, not } => {
                let current = self.root.resolve_existing(resource).ok().map(|(_, m)| etag_of(&m));
                (current.as_deref() == Some(etag.as_str())) != *not
            }
        }
    }

    /// Refuses a write to `path` (with `subtree`: and to everything below it) unless the request submitted the
    /// tokens of the locks involved; `membership`: the parent collection's locks are involved too.
    pub(crate) fn check_locks(
        &self,
        req: &DavRequest<'_>,
        path: &DavPath,
        subtree: bool,
        membership: bool,
    ) -> Result<(), DavError> {
        let mut locks = self.locks();
        locks.check_write(path, subtree, &req.tokens)?;
        match path.parent() {
            Some(parent) if membership => locks.check_write(&parent, false, &req.tokens),
            _ => Ok(()),
        }
    }
}

/// The entity tag of a file or directory from its metadata.
pub(crate) fn etag_of(meta: &std::fs::Metadata) -> String {
    file_etag(meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH))
}

/// Reads a small XML request body into memory (capped by `limits::MAX_HTTP_BUFFERED_BODY`).
pub(crate) async fn read_small_body<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut ServerConn<S>,
) -> Result<Vec<u8>, Failure> {
    conn.read_body_to_vec(MAX_HTTP_BUFFERED_BODY).await.map_err(body_failure)
}

/// Maps a request-body error: framing and size problems are answered, transport failures drop the connection.
pub(crate) fn body_failure(e: HttpError) -> Failure {
    match e {
        HttpError::Io(e) => Failure::Io(e),
        HttpError::TimedOut(_) | HttpError::Closed => Failure::Io(e.into()),
        other => Failure::Dav(DavError::new(other.status(), other.to_string())),
    }
}

/// Parses a `Depth` header: `Some(false)` for 0, `Some(true)` for infinity, `None` for 1; `default` if absent.
pub(crate) fn parse_depth(head: &RequestHead, default: &str) -> Result<Depth, DavError> {
    match head.headers.get("depth").unwrap_or(default).trim() {
        "0" => Ok(Depth::Zero),
        "1" => Ok(Depth::One),
        d if d.eq_ignore_ascii_case("infinity") => Ok(Depth::Infinity),
        other => Err(DavError::bad_request(format!("invalid Depth {other:?}"))),
    }
}

/// A `Depth` header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// The resource only.
    Zero,
    /// The resource and its direct members.
    One,
    /// The whole subtree.
    Infinity,
}
