//! A raw stream handed out of the HTTP layer, with the bytes already read from it put back in front.
//!
//! After a WebSocket upgrade the peer may have sent its first frames together with the request head; when the
//! engine splices a published-tunnel connection to an agent it must replay the request it peeked at. Both get a
//! [`PrefixedStream`]: reads return the kept bytes first, then continue on the stream; writes go straight to it.
//! It is a plain `AsyncRead + AsyncWrite`, so `async_tungstenite::WebSocketStream::from_raw_socket` accepts it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

/// A stream whose first reads return bytes that were read from it earlier.
pub struct PrefixedStream<S> {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    inner: S,
}

impl<S> PrefixedStream<S> {
    /// Puts `prefix` in front of `inner`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        let end = prefix.len();
        Self { buf: prefix.into_boxed_slice(), pos: 0, end, inner }
    }

    /// Takes over a connection buffer whose unread bytes are `buf[pos..end]`.
    pub(crate) fn from_buffer(buf: Box<[u8]>, pos: usize, end: usize, inner: S) -> Self {
        Self { buf, pos, end, inner }
    }

    /// Bytes not yet returned by a read.
    pub fn prefix(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The underlying stream, mutably (reading from it directly skips the prefix).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The unread prefix and the stream, for a caller that splices them itself.
    pub fn into_parts(self) -> (Vec<u8>, S) {
        (self.buf[self.pos..self.end].to_vec(), self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PrefixedStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pos < this.end {
            let n = out.len().min(this.end - this.pos);
            out[..n].copy_from_slice(&this.buf[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.end {
                // Release the (up to 16 KiB) connection buffer once it is drained.
                this.buf = Box::default();
                this.pos = 0;
                this.end = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PrefixedStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::io::Cursor;
    use futures_lite::AsyncReadExt;

    #[test]
    fn prefix_is_read_before_the_stream() {
        futures_lite::future::block_on(async {
            let mut s = PrefixedStream::new(b"head ".to_vec(), Cursor::new(b"tail".to_vec()));
            assert_eq!(s.prefix(), b"head ");
            let mut all = String::new();
            s.read_to_string(&mut all).await.unwrap();
            assert_eq!(all, "head tail");
            assert!(s.prefix().is_empty());
        });
    }

    #[test]
    fn into_parts_returns_only_unread_bytes() {
        futures_lite::future::block_on(async {
            let mut s = PrefixedStream::new(b"abcdef".to_vec(), Cursor::new(Vec::new()));
            let mut two = [0u8; 2];
            s.read_exact(&mut two).await.unwrap();
            let (rest, _) = s.into_parts();
            assert_eq!(rest, b"cdef");
        });
    }
}
