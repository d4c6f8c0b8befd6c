//! The server side of one HTTP/1.1 connection: read requests (keep-alive, pipelining), read their bodies,
//! write responses, or hand the raw stream over (WebSocket upgrade, raw splice).
//!
//! Usage: call [`ServerConn::next_request`] in a loop; for each request read its body (optional) and answer
//! exactly once with [`ServerConn::respond`] or [`ServerConn::respond_stream`]. Whatever a handler leaves unread
//! is drained (up to `limits::HTTP_DRAIN_MAX`) or the connection is closed — never misread as the next request.
//! Malformed heads are answered here (400/408/413/417/431/501 with `Connection: close`) and surface as `Err`.
//!
//! ```no_run
//! # async fn serve(stream: async_net::TcpStream) -> Result<(), rstream::http::HttpError> {
//! use rstream::http::{ResponseHead, ServerConn};
//! let mut conn = ServerConn::new(stream);
//! while let Some(req) = conn.next_request().await? {
//!     let body = conn.read_body_to_vec(1024).await?;
//!     let reply = format!("{} {} ({} bytes)\n", req.method, req.path(), body.len());
//!     conn.respond(ResponseHead::new(200).header("Content-Type", "text/plain"), reply.as_bytes()).await?;
//! }
//! # Ok(()) }
//! ```

use std::io;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};

use super::body::{drain_body, read_body_to_vec, BodyBoundary, BodyReader, BodyState};
use super::conn::Conn;
use super::error::HttpError;
use super::head::{
    bodiless_status, check_request_fields, encode_response, parse_request, request_framing, Framing, RequestHead,
    ResponseHead, Version,
};
use super::upgrade::PrefixedStream;
use super::writer::{BodyWriter, WriteMode};
use crate::limits::{HTTP_DRAIN_MAX, HTTP_HEAD_TIMEOUT, HTTP_IDLE_TIMEOUT, HTTP_LINGER_MAX, HTTP_LINGER_TIMEOUT};

/// The current request handed over raw ([`ServerConn::into_raw_request`]): its head exactly as received, where
/// its body ends, and the stream with everything after the head first.
pub struct RawRequest<S> {
    /// The request head as received, up to and including the empty line.
    pub head: Vec<u8>,
    /// Follows the body that comes next on `stream`.
    pub body: BodyBoundary,
    /// The connection, reading on from the first byte after the head.
    pub stream: PrefixedStream<S>,
}

/// One server-side HTTP/1.1 connection over any byte stream.
pub struct ServerConn<S: AsyncRead + AsyncWrite + Unpin> {
    conn: Conn<S>,
    head_timeout: Duration,
    /// Reading state of the current request's body.
    body: BodyState,
    /// The current request carries `Expect: 100-continue` and no `100 Continue` was sent yet.
    continue_pending: bool,
    /// The current request is HEAD: responses carry headers only.
    head_request: bool,
    version: Version,
    keep_alive: bool,
    in_request: bool,
    responded: bool,
    /// The current request's head is still at the start of the buffer (nothing read or written since).
    replayable: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerConn<S> {
    /// Serves `stream` with `limits::HTTP_HEAD_TIMEOUT` and `limits::HTTP_IDLE_TIMEOUT`.
    pub fn new(stream: S) -> Self {
        Self::with_timeouts(stream, HTTP_HEAD_TIMEOUT, HTTP_IDLE_TIMEOUT)
    }

    /// Serves `stream` with explicit timeouts: `head` bounds receiving one request head (from its first byte),
    /// `idle` bounds any single read or write making no progress (including the wait for the next request).
    pub fn with_timeouts(stream: S, head: Duration, idle: Duration) -> Self {
        Self {
            conn: Conn::new(stream, idle),
            head_timeout: head,
            body: BodyState::Done,
            continue_pending: false,
            head_request: false,
            version: Version::Http11,
            keep_alive: true,
            in_request: false,
            responded: false,
            replayable: false,
        }
    }

    /// Waits for the next request head. `Ok(None)` when the connection is over: the peer closed, the previous
    /// exchange ended with `Connection: close`, or a body was abandoned. A malformed head is answered with its
    /// status (see [`HttpError::status`]) and returned as `Err`; the connection must then be dropped.
    pub async fn next_request(&mut self) -> Result<Option<RequestHead>, HttpError> {
        if self.in_request {
            if !self.responded || self.conn.broken || !self.keep_alive {
                self.shutdown().await;
                return Ok(None);
            }
            if !self.body.is_done() && !drain_body(&mut self.conn, &mut self.body, HTTP_DRAIN_MAX).await? {
                self.shutdown().await;
                return Ok(None);
            }
        }
        self.in_request = false;
        let head = match self.conn.read_head(parse_request, self.head_timeout, "request head").await {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.refuse(e).await),
        };
        let framing = match check_request_fields(&head).and_then(|()| request_framing(&head)) {
            Ok(framing) => framing,
            Err(e) => return Err(self.refuse(e).await),
        };
        self.body = BodyState::start(framing);
        self.version = head.version;
        self.head_request = head.method == "HEAD";
        self.keep_alive = head.version == Version::Http11 && !head.headers.has_token("connection", "close");
        self.continue_pending = false;
        self.in_request = true;
        self.responded = false;
        self.replayable = true;
        if let Some(expect) = head.headers.get("expect") {
            if !expect.eq_ignore_ascii_case("100-continue") {
                return Err(self.refuse(HttpError::ExpectationFailed(expect.to_string())).await);
            }
            self.continue_pending = head.version == Version::Http11 && !self.body.is_done();
        }
        Ok(Some(head))
    }

    /// Answers a request that could not be read with its error status, then closes. Returns the error.
    async fn refuse(&mut self, e: HttpError) -> HttpError {
        if !matches!(e, HttpError::Io(_) | HttpError::Closed) {
            let status = e.status();
            let text = format!("{e}\n");
            let head = ResponseHead::new(status).header("Content-Type", "text/plain; charset=utf-8");
            if let Ok(mut bytes) = encode_response(&head, Framing::Length(text.len() as u64), true, true) {
                bytes.extend_from_slice(text.as_bytes());
                if self.conn.write_all(&bytes).await.is_ok() {
                    // Linger over unread input, except for a peer too slow to send its head.
                    let slow = matches!(e, HttpError::TimedOut(_));
                    self.body = if slow { BodyState::Done } else { BodyState::Failed };
                    self.shutdown().await;
                }
            }
        }
        self.in_request = false;
        self.conn.broken = true;
        e
    }

    /// Flushes and closes the write side; if the request body was left unread, reads and discards a bounded
    /// amount first so the peer sees the response rather than a reset.
    async fn shutdown(&mut self) {
        let _ = self.conn.flush().await;
        let _ = self.conn.close().await;
        if !self.body.is_done() {
            let linger = self.conn.discard_raw(HTTP_LINGER_MAX);
            let _ = futures_lite::future::or(linger, async {
                async_io::Timer::after(HTTP_LINGER_TIMEOUT).await;
                Ok(false)
            })
            .await;
        }
        self.in_request = false;
        self.conn.broken = true;
    }

    /// The current request's declared body length: `Some(0)` without a body, `None` for a chunked body.
    pub fn body_len(&self) -> Option<u64> {
        match self.body {
            BodyState::Done => Some(0),
            BodyState::Length(n) => Some(n),
            _ => None,
        }
    }

    /// The current request's body. Sends `100 Continue` first when the client asked for it.
    pub async fn body(&mut self) -> io::Result<BodyReader<'_, S>> {
        if !self.in_request || self.responded {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no request body to read"));
        }
        self.replayable = false;
        if self.continue_pending {
            self.continue_pending = false;
            self.conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            self.conn.flush().await?;
        }
        Ok(BodyReader::new(&mut self.conn, &mut self.body))
    }

    /// Reads the whole request body into memory, refusing more than `cap` bytes with
    /// [`HttpError::BodyTooLarge`] (answer 413; no `100 Continue` is sent when the declared length is over).
    pub async fn read_body_to_vec(&mut self, cap: usize) -> Result<Vec<u8>, HttpError> {
        if let BodyState::Length(n) = self.body {
            if n > cap as u64 {
                return Err(HttpError::BodyTooLarge { limit: cap as u64 });
            }
        }
        self.body().await?;
        read_body_to_vec(&mut self.conn, &mut self.body, cap).await
    }

    /// Makes this the last exchange: the response carries `Connection: close`.
    pub fn set_close(&mut self) {
        self.keep_alive = false;
    }

    /// Checks a response may be written now and settles the unread request body: drained when small, else
    /// the connection will close after the response.
    async fn begin_response(&mut self, head: &ResponseHead) -> io::Result<()> {
        if !self.in_request || self.responded {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no request awaiting a response"));
        }
        self.responded = true;
        self.replayable = false;
        if head.headers.has_token("connection", "close") {
            self.keep_alive = false;
        }
        if !self.body.is_done() {
            if self.continue_pending {
                // The client holds the body back until told to send it: it will not arrive.
                self.keep_alive = false;
            } else if self.keep_alive {
                let drained = drain_body(&mut self.conn, &mut self.body, HTTP_DRAIN_MAX).await.unwrap_or(false);
                self.keep_alive = drained;
            }
        }
        Ok(())
    }

    /// Answers with a complete body (`Content-Length` is set; the body is omitted for HEAD). Statuses that
    /// carry no body (1xx, 204, 304) must be given an empty `body`.
    pub async fn respond(&mut self, head: ResponseHead, body: &[u8]) -> io::Result<()> {
        let bodiless = bodiless_status(head.status);
        if bodiless && !body.is_empty() {
            let msg = format!("status {} cannot carry a body", head.status);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
        self.begin_response(&head).await?;
        let framing = if bodiless { Framing::Empty } else { Framing::Length(body.len() as u64) };
        let mut bytes =
            encode_response(&head, framing, true, !self.keep_alive).inspect_err(|_| self.conn.broken = true)?;
        if !self.head_request {
            bytes.extend_from_slice(body);
        }
        self.conn.write_all(&bytes).await?;
        self.conn.flush().await
    }

    /// Answers with a streamed body: `Some(len)` sends `Content-Length` and the writer enforces it; `None`
    /// sends chunked (or, to an HTTP/1.0 client, raw bytes ended by closing). For HEAD the writer discards.
    /// Call [`BodyWriter::finish`] at the end.
    pub async fn respond_stream(&mut self, head: ResponseHead, len: Option<u64>) -> io::Result<BodyWriter<'_, S>> {
        self.begin_response(&head).await?;
        let (framing, mut mode) = match len {
            _ if bodiless_status(head.status) => (Framing::Empty, WriteMode::Discard),
            Some(n) => (Framing::Length(n), WriteMode::Fixed(n)),
            None if self.version == Version::Http11 => (Framing::Chunked, WriteMode::Chunked),
            None => {
                self.keep_alive = false;
                (Framing::UntilClose, WriteMode::UntilClose)
            }
        };
        if self.head_request {
            mode = WriteMode::Discard;
        }
        // An unwritable head (invalid field) leaves the request unanswered: the connection must close.
        let bytes = encode_response(&head, framing, true, !self.keep_alive).inspect_err(|_| self.conn.broken = true)?;
        self.conn.write_all(&bytes).await?;
        Ok(BodyWriter::new(&mut self.conn, mode))
    }

    /// Writes `head` (normally `101 Switching Protocols`, with the caller's `Upgrade`/`Connection`/
    /// `Sec-WebSocket-Accept` fields) and hands over the raw stream; bytes the client sent after its request
    /// head come first on reads.
    pub async fn upgrade(mut self, head: ResponseHead) -> io::Result<PrefixedStream<S>> {
        if !self.in_request || self.responded {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no request awaiting a response"));
        }
        let bytes = encode_response(&head, Framing::Empty, true, false)?;
        self.conn.write_all(&bytes).await?;
        self.conn.flush().await?;
        Ok(self.conn.into_prefixed(None))
    }

    /// Hands over the raw stream with the current request's head (and everything after it) replayed first,
    /// for a raw splice after peeking at the head. Only possible before the body is read or a response is
    /// written; otherwise the connection comes back unchanged as `Err`.
    pub fn into_replay(self) -> Result<PrefixedStream<S>, Box<Self>> {
        if !self.in_request || !self.replayable {
            return Err(Box::new(self));
        }
        // `Conn::read_head` parses from the start of the buffer, so the head begins at offset 0.
        Ok(self.conn.into_prefixed(Some(0)))
    }

    /// Hands over the current request raw, its head apart, for a proxy that rewrites the head and forwards the
    /// body verbatim. Same conditions as [`ServerConn::into_replay`].
    pub fn into_raw_request(self) -> Result<RawRequest<S>, Box<Self>> {
        if !self.in_request || !self.replayable {
            return Err(Box::new(self));
        }
        let head = self.conn.consumed().to_vec();
        let body = BodyBoundary::new(self.body);
        Ok(RawRequest { head, body, stream: self.conn.into_prefixed(None) })
    }

    /// Hands over the raw stream with the bytes not yet consumed (after the current head) first.
    pub fn into_prefixed(self) -> PrefixedStream<S> {
        self.conn.into_prefixed(None)
    }
}
