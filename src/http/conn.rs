//! The buffered connection under both the server and the client side.
//!
//! One fixed buffer of `limits::MAX_HTTP_HEAD_LEN` bytes per connection holds a head while it is parsed and,
//! afterwards, whatever the peer sent beyond it (the start of a body, a pipelined request). Bytes are never lost:
//! body readers take from this buffer first, and an upgrade hands the unread rest to the new owner. Every read
//! and write is guarded by an idle timeout: an operation that makes no progress for that long fails with
//! `ErrorKind::TimedOut` (slowloris guard, stuck peers).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Timer;
use futures_lite::future::poll_fn;
use futures_lite::{ready, AsyncRead, AsyncWrite};

use super::error::HttpError;
use super::upgrade::PrefixedStream;
use crate::limits::MAX_HTTP_HEAD_LEN;

/// Parses a head at the start of a buffer: `Ok(None)` while incomplete, else its length and the head.
pub(crate) type HeadParser<H> = fn(&[u8]) -> Result<Option<(usize, H)>, HttpError>;

/// A stream with a fixed read buffer and an idle timeout.
pub(crate) struct Conn<S> {
    stream: S,
    buf: Box<[u8]>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    idle: Duration,
    timer: Timer,
    timer_armed: bool,
    /// Set when a body was abandoned mid-way or the transport failed: the connection cannot carry another
    /// message.
    pub(crate) broken: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Wraps `stream` with an empty buffer.
    pub(crate) fn new(stream: S, idle: Duration) -> Self {
        Self {
            stream,
            buf: vec![0; MAX_HTTP_HEAD_LEN].into_boxed_slice(),
            pos: 0,
            end: 0,
            idle,
            timer: Timer::never(),
            timer_armed: false,
            broken: false,
        }
    }

    /// Changes the idle timeout for later operations.
    pub(crate) fn set_idle(&mut self, idle: Duration) {
        self.idle = idle;
    }

    /// Applies the idle timeout to the outcome of one poll of the stream.
    fn guard<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.timer_armed = false;
                if result.is_err() {
                    self.broken = true;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if !self.timer_armed {
                    self.timer.set_after(self.idle);
                    self.timer_armed = true;
                }
                if Pin::new(&mut self.timer).poll(cx).is_ready() {
                    self.timer_armed = false;
                    self.broken = true;
                    let msg = format!("no progress for {:?}", self.idle);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, msg)));
                }
                Poll::Pending
            }
        }
    }

    /// Unread buffered bytes.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Marks `n` buffered bytes as read.
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Moves unread bytes to the start of the buffer.
    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
    }

    /// Reads more bytes from the stream into the buffer; `Ok(0)` means end of stream (or a full buffer, which
    /// callers rule out first).
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.end == self.buf.len() {
            self.compact();
        }
        let end = self.end;
        let polled = Pin::new(&mut self.stream).poll_read(cx, &mut self.buf[end..]);
        let n = ready!(self.guard(cx, polled))?;
        self.end += n;
        Poll::Ready(Ok(n))
    }

    /// Reads buffered bytes first, then straight from the stream (no copy through the buffer).
    pub(crate) fn poll_read_some(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.pos < self.end {
            let n = out.len().min(self.end - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.consume(n);
            return Poll::Ready(Ok(n));
        }
        let polled = Pin::new(&mut self.stream).poll_read(cx, out);
        self.guard(cx, polled)
    }

    /// Writes to the stream under the idle timeout.
    pub(crate) fn poll_write_raw(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        self.guard(cx, polled)
    }

    /// Flushes the stream under the idle timeout.
    pub(crate) fn poll_flush_raw(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.guard(cx, polled)
    }

    /// Closes the stream's write side under the idle timeout.
    pub(crate) fn poll_close_raw(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_close(cx);
        self.guard(cx, polled)
    }

    /// Writes all of `data`.
    pub(crate) async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = poll_fn(|cx| self.poll_write_raw(cx, data)).await?;
            if n == 0 {
                self.broken = true;
                return Err(io::Error::new(io::ErrorKind::WriteZero, "connection refused more bytes"));
            }
            data = &data[n..];
        }
        Ok(())
    }

    /// Flushes the stream.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush_raw(cx)).await
    }

    /// Closes the stream's write side.
    pub(crate) async fn close(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_close_raw(cx)).await
    }

    /// Reads and throws away up to `max` raw bytes until end of stream; `Ok(true)` if the end was reached.
    pub(crate) async fn discard_raw(&mut self, max: u64) -> io::Result<bool> {
        let mut left = max;
        loop {
            let n = poll_fn(|cx| {
                let n = match self.end - self.pos {
                    0 => ready!(self.poll_fill(cx))?,
                    had => had,
                };
                self.consume(n);
                Poll::Ready(Ok::<_, io::Error>(n))
            })
            .await?;
            if n == 0 {
                return Ok(true);
            }
            left = left.saturating_sub(n as u64);
            if left == 0 {
                return Ok(false);
            }
        }
    }

    /// Reads one head: waits up to the idle timeout for its first byte, then up to `head_timeout` for the
    /// rest. `Ok(None)` if the peer closed cleanly before sending anything. After success the head's bytes
    /// stay at `buf[..len]` (see [`Conn::into_prefixed`]) and the read position is just past them.
    pub(crate) async fn read_head<H>(
        &mut self,
        parse: HeadParser<H>,
        head_timeout: Duration,
        what: &'static str,
    ) -> Result<Option<H>, HttpError> {
        self.compact();
        if self.end == 0 && poll_fn(|cx| self.poll_fill(cx)).await? == 0 {
            return Ok(None);
        }
        let deadline = async_io::Timer::after(head_timeout);
        let parse_loop = async {
            loop {
                if let Some((len, head)) = parse(&self.buf[..self.end])? {
                    // The head's bytes stay at `buf[..len]` for a replay until the body is read.
                    self.pos = len;
                    return Ok(Some(head));
                }
                if self.end == self.buf.len() {
                    return Err(HttpError::HeadTooLarge);
                }
                if poll_fn(|cx| self.poll_fill(cx)).await? == 0 {
                    return Err(HttpError::Malformed(format!("connection closed inside the {what}")));
                }
            }
        };
        futures_lite::future::or(parse_loop, async {
            deadline.await;
            Err(HttpError::TimedOut(what))
        })
        .await
    }

    /// Bytes before the read position: the head just read by [`Conn::read_head`] while nothing else was read.
    pub(crate) fn consumed(&self) -> &[u8] {
        &self.buf[..self.pos]
    }

    /// Gives up buffering: the stream plus its unread bytes (from `from`, `None` = the read position).
    pub(crate) fn into_prefixed(self, from: Option<usize>) -> PrefixedStream<S> {
        let start = from.unwrap_or(self.pos);
        PrefixedStream::from_buffer(self.buf, start, self.end, self.stream)
    }
}
