//! Reading message bodies: `Content-Length`, chunked, or until close.
//!
//! A [`BodyReader`] implements `AsyncRead` and stops exactly at the end of the body, so the next message on the
//! connection stays intact. The chunked decoder is a byte-level state machine: chunk-size lines are bounded by
//! `limits::MAX_HTTP_CHUNK_LINE_LEN` (extensions ignored), data is read straight into the caller's buffer, and
//! trailer fields are skipped (bounded by `limits::MAX_HTTP_HEAD_LEN` in total). Framing errors surface as
//! `io::Error`s wrapping [`HttpError::Framing`] and leave the connection unusable.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::future::poll_fn;
use futures_lite::{ready, AsyncRead, AsyncWrite};

use super::conn::Conn;
use super::error::HttpError;
use super::head::Framing;
use crate::limits::{MAX_HTTP_CHUNK_LINE_LEN, MAX_HTTP_HEAD_LEN};

/// Where a body reader stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyState {
    /// The body is complete (or there is none).
    Done,
    /// This many bytes remain.
    Length(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// Everything until the peer closes.
    UntilClose,
    /// A framing or transport error: the body (and the connection) cannot be read further.
    Failed,
}

impl BodyState {
    /// The reading state at the start of a body framed by `framing`.
    pub(crate) fn start(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(Chunk::Size { value: 0, digits: 0, line: 0 }),
            Framing::UntilClose => BodyState::UntilClose,
        }
    }

    /// Whether the whole body has been read.
    pub(crate) fn is_done(&self) -> bool {
        *self == BodyState::Done
    }
}

/// Position inside a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// Reading the hex size (`line` counts the bytes of the size line so far).
    Size { value: u64, digits: u8, line: usize },
    /// Skipping a chunk extension up to CR.
    Extension { value: u64, line: usize },
    /// CR seen at the end of the size line; LF expected.
    SizeLf { value: u64 },
    /// This many data bytes remain in the chunk.
    Data(u64),
    /// CR expected after chunk data.
    DataCr,
    /// LF expected after chunk data.
    DataLf,
    /// At the start of a trailer line (`total` trailer bytes so far).
    TrailerStart { total: usize },
    /// Inside a trailer field line.
    TrailerLine { total: usize },
    /// LF expected after a trailer field line.
    TrailerLf { total: usize },
    /// LF expected after the final empty line.
    EndLf,
}

fn framing_error(why: impl Into<String>) -> io::Error {
    HttpError::Framing(why.into()).into_io()
}

/// Advances the chunk state machine by one framing byte.
fn step(chunk: Chunk, b: u8) -> io::Result<BodyState> {
    let next = match chunk {
        Chunk::Size { value, digits, line } => match b {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                if digits == 15 {
                    return Err(framing_error("chunk size too large"));
                }
                let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                Chunk::Size { value: value << 4 | digit, digits: digits + 1, line: line + 1 }
            }
            b';' | b' ' | b'\t' if digits > 0 => Chunk::Extension { value, line: line + 1 },
            b'\r' if digits > 0 => Chunk::SizeLf { value },
            _ => return Err(framing_error(format!("invalid byte {b:#04x} in chunk size"))),
        },
        Chunk::Extension { value, line } => match b {
            b'\r' => Chunk::SizeLf { value },
            b'\t' | b' '..=b'~' | 0x80..=0xff if line < MAX_HTTP_CHUNK_LINE_LEN => {
                Chunk::Extension { value, line: line + 1 }
            }
            b'\t' | b' '..=b'~' | 0x80..=0xff => return Err(framing_error("chunk-size line too long")),
            _ => return Err(framing_error(format!("invalid byte {b:#04x} in chunk extension"))),
        },
        Chunk::SizeLf { value } => match b {
            b'\n' if value == 0 => Chunk::TrailerStart { total: 0 },
            b'\n' => Chunk::Data(value),
            _ => return Err(framing_error("chunk-size line not ended by CRLF")),
        },
        // Data bytes are copied by `poll_read_body`, never stepped through one by one.
        Chunk::Data(_) => return Err(framing_error("chunk data reached the framing parser")),
        Chunk::DataCr => match b {
            b'\r' => Chunk::DataLf,
            _ => return Err(framing_error("chunk data longer than its size")),
        },
        Chunk::DataLf => match b {
            b'\n' => Chunk::Size { value: 0, digits: 0, line: 0 },
            _ => return Err(framing_error("chunk data not followed by CRLF")),
        },
        Chunk::TrailerStart { total } => match b {
            b'\r' => Chunk::EndLf,
            b'\n' => return Err(framing_error("bare LF in trailer")),
            _ => Chunk::TrailerLine { total: total + 1 },
        },
        Chunk::TrailerLine { total } if total >= MAX_HTTP_HEAD_LEN => {
            return Err(framing_error("trailer section too large"));
        }
        Chunk::TrailerLine { total } => match b {
            b'\r' => Chunk::TrailerLf { total: total + 1 },
            b'\n' => return Err(framing_error("bare LF in trailer")),
            _ => Chunk::TrailerLine { total: total + 1 },
        },
        Chunk::TrailerLf { total } => match b {
            b'\n' => Chunk::TrailerStart { total: total + 1 },
            _ => return Err(framing_error("trailer line not ended by CRLF")),
        },
        Chunk::EndLf => match b {
            b'\n' => return Ok(BodyState::Done),
            _ => return Err(framing_error("chunked body not ended by CRLF")),
        },
    };
    Ok(BodyState::Chunked(next))
}

/// Reads body bytes into `out` according to `state`; `Ok(0)` only at the end of the body.
pub(crate) fn poll_read_body<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    state: &mut BodyState,
    cx: &mut Context<'_>,
    out: &mut [u8],
) -> Poll<io::Result<usize>> {
    if out.is_empty() {
        return Poll::Ready(Ok(0));
    }
    let result = ready!(poll_read_body_inner(conn, state, cx, out));
    if result.is_err() {
        *state = BodyState::Failed;
        conn.broken = true;
    }
    Poll::Ready(result)
}

fn poll_read_body_inner<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    state: &mut BodyState,
    cx: &mut Context<'_>,
    out: &mut [u8],
) -> Poll<io::Result<usize>> {
    loop {
        match *state {
            BodyState::Done => return Poll::Ready(Ok(0)),
            BodyState::Failed => return Poll::Ready(Err(framing_error("body already failed"))),
            BodyState::UntilClose => return conn.poll_read_some(cx, out),
            BodyState::Length(left) => {
                let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = ready!(conn.poll_read_some(cx, &mut out[..want]))?;
                if n == 0 {
                    return Poll::Ready(Err(eof(left)));
                }
                *state = if left == n as u64 { BodyState::Done } else { BodyState::Length(left - n as u64) };
                return Poll::Ready(Ok(n));
            }
            BodyState::Chunked(Chunk::Data(0)) => *state = BodyState::Chunked(Chunk::DataCr),
            BodyState::Chunked(Chunk::Data(left)) => {
                let want = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = ready!(conn.poll_read_some(cx, &mut out[..want]))?;
                if n == 0 {
                    return Poll::Ready(Err(eof(left)));
                }
                *state = BodyState::Chunked(Chunk::Data(left - n as u64));
                return Poll::Ready(Ok(n));
            }
            BodyState::Chunked(chunk) => {
                if conn.buffered().is_empty() && ready!(conn.poll_fill(cx))? == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed inside chunked framing",
                    )));
                }
                let b = conn.buffered()[0];
                conn.consume(1);
                *state = step(chunk, b)?;
                if state.is_done() {
                    return Poll::Ready(Ok(0));
                }
            }
        }
    }
}

fn eof(left: u64) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("connection closed with {left} body bytes missing"))
}

/// Reads and discards the rest of the body, at most `max` bytes: `Ok(true)` if the body ended within it.
pub(crate) async fn drain_body<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    state: &mut BodyState,
    max: u64,
) -> io::Result<bool> {
    let mut scratch = [0u8; 1024];
    let mut left = max;
    while !state.is_done() {
        if left == 0 {
            return Ok(false);
        }
        let n = poll_fn(|cx| poll_read_body(conn, state, cx, &mut scratch)).await?;
        left = left.saturating_sub(n as u64);
    }
    Ok(true)
}

/// Reads a whole body into memory, refusing more than `cap` bytes with [`HttpError::BodyTooLarge`].
pub(crate) async fn read_body_to_vec<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    state: &mut BodyState,
    cap: usize,
) -> Result<Vec<u8>, HttpError> {
    if let BodyState::Length(n) = *state {
        if n > cap as u64 {
            return Err(HttpError::BodyTooLarge { limit: cap as u64 });
        }
    }
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = poll_fn(|cx| poll_read_body(conn, state, cx, &mut chunk)).await?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > cap {
            return Err(HttpError::BodyTooLarge { limit: cap as u64 });
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Where a body forwarded verbatim ends: follows the body's framing over the raw bytes (chunk sizes, data,
/// trailers) without decoding them, for a proxy that passes a request on unchanged and must stop at its end.
/// Obtained from `ServerConn::into_raw_request`.
#[derive(Debug)]
pub struct BodyBoundary {
    state: BodyState,
}

impl BodyBoundary {
    pub(crate) fn new(state: BodyState) -> Self {
        Self { state }
    }

    /// Whether the whole body has gone by.
    pub fn is_done(&self) -> bool {
        self.state.is_done()
    }

    /// Follows the body over `bytes` (the next raw bytes of the message) and returns how many of them belong to
    /// it; the rest (if any) comes after the body. A framing error fails this and every later call.
    pub fn scan(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut used = 0;
        while used < bytes.len() {
            let rest = (bytes.len() - used) as u64;
            match self.state {
                BodyState::Done => break,
                BodyState::Failed => return Err(framing_error("body already failed")),
                BodyState::UntilClose => used = bytes.len(),
                BodyState::Length(left) => {
                    let n = left.min(rest);
                    used += n as usize;
                    self.state = if n == left { BodyState::Done } else { BodyState::Length(left - n) };
                }
                BodyState::Chunked(Chunk::Data(0)) => self.state = BodyState::Chunked(Chunk::DataCr),
                BodyState::Chunked(Chunk::Data(left)) => {
                    let n = left.min(rest);
                    used += n as usize;
                    self.state = BodyState::Chunked(Chunk::Data(left - n));
                }
                BodyState::Chunked(chunk) => match step(chunk, bytes[used]) {
                    Ok(next) => {
                        self.state = next;
                        used += 1;
                    }
                    Err(e) => {
                        self.state = BodyState::Failed;
                        return Err(e);
                    }
                },
            }
        }
        Ok(used)
    }
}

/// A message body being received: `AsyncRead` that ends exactly where the body ends.
///
/// Obtained from `ServerConn::body` or `ClientConn::body`. Dropping it early is fine: the connection drains
/// (a bounded amount of) the rest or closes before the next message.
pub struct BodyReader<'a, S> {
    conn: &'a mut Conn<S>,
    state: &'a mut BodyState,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> BodyReader<'a, S> {
    pub(crate) fn new(conn: &'a mut Conn<S>, state: &'a mut BodyState) -> Self {
        Self { conn, state }
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        self.state.is_done()
    }

    /// Bytes still expected when the body has a known length (`Content-Length`), `None` otherwise.
    pub fn remaining(&self) -> Option<u64> {
        match *self.state {
            BodyState::Length(n) => Some(n),
            BodyState::Done => Some(0),
            _ => None,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for BodyReader<'_, S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        poll_read_body(this.conn, this.state, cx, out)
    }
}
