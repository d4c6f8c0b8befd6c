//! Writing message bodies: fixed length, chunked, until close, or discarded (answers to HEAD).
//!
//! A [`BodyWriter`] implements `AsyncWrite` and is unbuffered: each `write` becomes (for chunked bodies) one
//! chunk, so callers batch small pieces themselves (e.g. into a `COPY_BUF_LEN` buffer). [`BodyWriter::finish`]
//! must be called to end the body (the last chunk, or a check that every promised byte was written); a writer
//! dropped without `finish` leaves the connection unusable, so it is closed instead of reused.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::future::poll_fn;
use futures_lite::{ready, AsyncRead, AsyncWrite};

use super::conn::Conn;

/// How the body being written is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// Exactly this many bytes remain to be written.
    Fixed(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Written bytes are dropped (the answer to a HEAD request, or a bodiless status).
    Discard,
    /// Raw bytes; the body ends when the connection closes (HTTP/1.0 peers).
    UntilClose,
}

/// A message body being sent: `AsyncWrite`, ended with [`BodyWriter::finish`].
pub struct BodyWriter<'a, S: AsyncRead + AsyncWrite + Unpin> {
    conn: &'a mut Conn<S>,
    mode: WriteMode,
    /// Chunk framing bytes not yet written (a chunk-size line or the CRLF after data).
    frame: [u8; 20],
    frame_pos: usize,
    frame_len: usize,
    /// Data bytes the current chunk still needs.
    chunk_left: usize,
    finished: bool,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> BodyWriter<'a, S> {
    pub(crate) fn new(conn: &'a mut Conn<S>, mode: WriteMode) -> Self {
        Self { conn, mode, frame: [0; 20], frame_pos: 0, frame_len: 0, chunk_left: 0, finished: false }
    }

    /// Bytes still owed by a fixed-length body (`None` for other framings).
    pub fn remaining(&self) -> Option<u64> {
        match self.mode {
            WriteMode::Fixed(n) => Some(n),
            _ => None,
        }
    }

    /// Whether written bytes are being discarded (answer to HEAD): callers can skip producing them.
    pub fn is_discarding(&self) -> bool {
        self.mode == WriteMode::Discard
    }

    fn set_frame(&mut self, bytes: &[u8]) {
        self.frame[..bytes.len()].copy_from_slice(bytes);
        self.frame_pos = 0;
        self.frame_len = bytes.len();
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.frame_pos < self.frame_len {
            let n = ready!(self.conn.poll_write_raw(cx, &self.frame[self.frame_pos..self.frame_len]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.frame_pos += n;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_write_chunked(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_frame(cx))?;
        if self.chunk_left == 0 {
            let size = format!("{:x}\r\n", data.len());
            self.set_frame(size.as_bytes());
            self.chunk_left = data.len();
            ready!(self.poll_frame(cx))?;
        }
        let take = data.len().min(self.chunk_left);
        let n = ready!(self.conn.poll_write_raw(cx, &data[..take]))?;
        self.chunk_left -= n;
        if self.chunk_left == 0 && n > 0 {
            self.set_frame(b"\r\n");
        }
        Poll::Ready(Ok(n))
    }

    /// Ends the body: writes the last chunk, or checks that a fixed-length body is complete; then flushes.
    /// For an until-close body it also closes the connection's write side.
    pub async fn finish(mut self) -> io::Result<()> {
        let result = self.finish_inner().await;
        if result.is_ok() {
            self.finished = true;
        }
        result
    }

    async fn finish_inner(&mut self) -> io::Result<()> {
        match self.mode {
            WriteMode::Fixed(0) | WriteMode::Discard => {}
            WriteMode::Fixed(n) => {
                let msg = format!("body ended {n} bytes short of its content-length");
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
            }
            WriteMode::Chunked => {
                poll_fn(|cx| self.poll_frame(cx)).await?;
                if self.chunk_left != 0 {
                    let msg = format!("chunk ended {} bytes short", self.chunk_left);
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
                }
                self.conn.write_all(b"0\r\n\r\n").await?;
            }
            WriteMode::UntilClose => {
                self.conn.flush().await?;
                return self.conn.close().await;
            }
        }
        self.conn.flush().await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for BodyWriter<'_, S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match this.mode {
            WriteMode::Discard => Poll::Ready(Ok(data.len())),
            WriteMode::UntilClose => this.conn.poll_write_raw(cx, data),
            WriteMode::Chunked => this.poll_write_chunked(cx, data),
            WriteMode::Fixed(left) => {
                if data.len() as u64 > left {
                    let msg = format!("write of {} bytes exceeds the {left} left of the content-length", data.len());
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidInput, msg)));
                }
                let n = ready!(this.conn.poll_write_raw(cx, data))?;
                this.mode = WriteMode::Fixed(left - n as u64);
                Poll::Ready(Ok(n))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.mode == WriteMode::Chunked {
            ready!(this.poll_frame(cx))?;
        }
        this.conn.poll_flush_raw(cx)
    }

    /// Closing a body writer only flushes: use [`BodyWriter::finish`] to end the body.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Drop for BodyWriter<'_, S> {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.broken = true;
        }
    }
}
