//! The client side of one HTTP/1.1 connection: send requests (bodies from memory or streamed from any
//! `AsyncRead`), read response heads and bodies, and reuse the connection when the server allows it.
//!
//! The caller provides the connection (TCP, TLS, an rstream tunnel dial), so this works the same for the engine
//! REST API and a WebDAV sidecar reached through the relay. One request at a time: read (or drop) the previous
//! response body before the next request; up to `limits::HTTP_DRAIN_MAX` unread bytes are drained for you.
//!
//! ```no_run
//! # async fn get(stream: async_net::TcpStream) -> Result<(), rstream::http::HttpError> {
//! use rstream::http::{ClientConn, RequestHead};
//! let mut client = ClientConn::new(stream, "127.0.0.1:8443");
//! let head = RequestHead::new("GET", "/api/tunnels").header("Authorization", "Bearer TOKEN");
//! let resp = client.request(&head, b"").await?;
//! let json = client.read_body_to_vec(1 << 20).await?;
//! println!("{} {} bytes", resp.status, json.len());
//! # Ok(()) }
//! ```

use std::io;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::{drain_body, read_body_to_vec, BodyReader, BodyState};
use super::conn::Conn;
use super::error::HttpError;
use super::head::{encode_request, parse_response, response_framing, Framing, RequestHead, ResponseHead, Version};
use super::upgrade::PrefixedStream;
use super::writer::{BodyWriter, WriteMode};
use crate::limits::{COPY_BUF_LEN, HTTP_DRAIN_MAX, HTTP_HEAD_TIMEOUT, HTTP_IDLE_TIMEOUT};

/// One client-side HTTP/1.1 connection over any byte stream.
pub struct ClientConn<S: AsyncRead + AsyncWrite + Unpin> {
    conn: Conn<S>,
    host: String,
    head_timeout: Duration,
    body: BodyState,
    reusable: bool,
}

/// Methods that carry no request body by convention: no `Content-Length: 0` is sent for them.
const BODYLESS_METHODS: [&str; 5] = ["GET", "HEAD", "DELETE", "OPTIONS", "TRACE"];

impl<S: AsyncRead + AsyncWrite + Unpin> ClientConn<S> {
    /// A client on `stream`; `host` fills the `Host` field of requests that do not set one.
    pub fn new(stream: S, host: impl Into<String>) -> Self {
        Self::with_timeouts(stream, host, HTTP_HEAD_TIMEOUT, HTTP_IDLE_TIMEOUT)
    }

    /// A client with explicit timeouts: `head` bounds receiving a response head from its first byte, `idle`
    /// bounds any single read or write making no progress (including waiting for the server to start answering).
    pub fn with_timeouts(stream: S, host: impl Into<String>, head: Duration, idle: Duration) -> Self {
        Self {
            conn: Conn::new(stream, idle),
            host: host.into(),
            head_timeout: head,
            body: BodyState::Done,
            reusable: true,
        }
    }

    /// Changes the idle timeout (e.g. for a server-side COPY that takes long before answering).
    pub fn set_idle_timeout(&mut self, idle: Duration) {
        self.conn.set_idle(idle);
    }

    /// Whether another request may be sent on this connection.
    pub fn is_reusable(&self) -> bool {
        self.reusable && !self.conn.broken
    }

    async fn prepare(&mut self) -> Result<(), HttpError> {
        if !self.is_reusable() {
            let msg = "connection cannot carry another request (closed by the server or broken)";
            return Err(HttpError::Io(io::Error::new(io::ErrorKind::NotConnected, msg)));
        }
        if !self.body.is_done() && !drain_body(&mut self.conn, &mut self.body, HTTP_DRAIN_MAX).await? {
            self.reusable = false;
            let msg = "previous response body was not read";
            return Err(HttpError::Io(io::Error::new(io::ErrorKind::InvalidInput, msg)));
        }
        Ok(())
    }

    /// Sends `head` with `body` (with `Content-Length` unless empty on GET/HEAD/DELETE/OPTIONS/TRACE) and reads
    /// the response head; read its body with [`ClientConn::body`] or [`ClientConn::read_body_to_vec`].
    /// [`HttpError::Closed`] means the server closed an idle keep-alive connection: retry on a new one.
    pub async fn request(&mut self, head: &RequestHead, body: &[u8]) -> Result<ResponseHead, HttpError> {
        self.prepare().await?;
        let framing = if body.is_empty() && BODYLESS_METHODS.contains(&head.method.as_str()) {
            Framing::Empty
        } else {
            Framing::Length(body.len() as u64)
        };
        let mut bytes = encode_request(head, &self.host, framing)?;
        bytes.extend_from_slice(body);
        let sent = async {
            self.conn.write_all(&bytes).await?;
            self.conn.flush().await
        }
        .await;
        self.finish_exchange(&head.method, sent).await
    }

    /// Sends `head` with a body streamed from `body`: `Some(len)` sends `Content-Length` and copies exactly
    /// `len` bytes (a shorter source is an error), `None` sends it chunked until `body` ends. Memory stays at one
    /// `COPY_BUF_LEN` buffer. If the server answers early (e.g. 413) and stops reading, that answer is returned.
    pub async fn request_streaming<R: AsyncRead + Unpin>(
        &mut self,
        head: &RequestHead,
        mut body: R,
        len: Option<u64>,
    ) -> Result<ResponseHead, HttpError> {
        self.prepare().await?;
        let (framing, mode) = match len {
            Some(n) => (Framing::Length(n), WriteMode::Fixed(n)),
            None => (Framing::Chunked, WriteMode::Chunked),
        };
        let bytes = encode_request(head, &self.host, framing)?;
        let mut buf = vec![0u8; COPY_BUF_LEN];
        let mut source_error = None;
        let sent = async {
            self.conn.write_all(&bytes).await?;
            let mut writer = BodyWriter::new(&mut self.conn, mode);
            loop {
                let want = writer
                    .remaining()
                    .map_or(buf.len(), |left| buf.len().min(usize::try_from(left).unwrap_or(usize::MAX)));
                if want == 0 {
                    break;
                }
                let n = match body.read(&mut buf[..want]).await {
                    Ok(0) if writer.remaining().is_some() => {
                        let msg = format!("request body ended {} bytes early", writer.remaining().unwrap_or(0));
                        source_error = Some(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
                        return Ok(());
                    }
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        source_error = Some(e);
                        return Ok(());
                    }
                };
                writer.write_all(&buf[..n]).await?;
            }
            writer.finish().await
        }
        .await;
        if let Some(e) = source_error {
            self.reusable = false;
            self.conn.broken = true;
            return Err(HttpError::Io(e));
        }
        self.finish_exchange(&head.method, sent).await
    }

    /// Reads the response after a request was (or failed to be) sent.
    async fn finish_exchange(&mut self, method: &str, sent: io::Result<()>) -> Result<ResponseHead, HttpError> {
        match sent {
            Ok(()) => self.read_response(method).await,
            Err(e) => {
                // The server may have answered early and stopped reading: prefer its answer to the write error.
                self.reusable = false;
                self.read_response(method).await.map_err(|_| HttpError::from(e))
            }
        }
    }

    async fn read_response(&mut self, method: &str) -> Result<ResponseHead, HttpError> {
        loop {
            let head = match self.conn.read_head(parse_response, self.head_timeout, "response head").await {
                Ok(Some(head)) => head,
                Ok(None) => {
                    self.reusable = false;
                    return Err(HttpError::Closed);
                }
                Err(e) => {
                    self.reusable = false;
                    self.conn.broken = true;
                    return Err(e);
                }
            };
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            let framing = response_framing(method, &head).inspect_err(|_| self.conn.broken = true)?;
            self.body = BodyState::start(framing);
            let keep = head.version == Version::Http11
                && !head.headers.has_token("connection", "close")
                && framing != Framing::UntilClose
                && head.status != 101;
            self.reusable &= keep;
            return Ok(head);
        }
    }

    /// The current response body (empty for HEAD, 204, 304).
    pub fn body(&mut self) -> BodyReader<'_, S> {
        BodyReader::new(&mut self.conn, &mut self.body)
    }

    /// Reads the whole response body into memory, refusing more than `cap` bytes.
    pub async fn read_body_to_vec(&mut self, cap: usize) -> Result<Vec<u8>, HttpError> {
        let result = read_body_to_vec(&mut self.conn, &mut self.body, cap).await;
        if result.is_err() {
            self.reusable = false;
        }
        result
    }

    /// Hands over the raw stream (after `101 Switching Protocols`), unread bytes first.
    pub fn into_prefixed(self) -> PrefixedStream<S> {
        self.conn.into_prefixed(None)
    }
}
