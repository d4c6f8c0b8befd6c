//! Shared pieces of the fuzz targets in `fuzz_targets/`: an in-memory connection that hands the fuzzer's bytes
//! to a reader in chunks of a fuzzer-chosen size, so the parsers' "incomplete, read more" paths are exercised
//! as well as the one-shot ones.
//!
//! Every target takes its first input byte as the chunk size ([`split_chunking`]) and the rest as the data.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

/// Splits a fuzz input into (chunk size, data): the first byte picks the size (0 means "everything at once"),
/// the rest is what the peer sends.
pub fn split_chunking(input: &[u8]) -> (usize, &[u8]) {
    match input.split_first() {
        Some((&0, data)) => (usize::MAX, data),
        Some((&size, data)) => (usize::from(size), data),
        None => (usize::MAX, input),
    }
}

/// An in-memory peer: reads deliver `input` at most `chunk` bytes at a time, then end of stream; writes are
/// captured in [`ChunkedConn::written`].
#[derive(Debug)]
pub struct ChunkedConn<'a> {
    input: &'a [u8],
    chunk: usize,
    consumed: usize,
    written: Vec<u8>,
}

impl<'a> ChunkedConn<'a> {
    /// A peer that will send `input` in pieces of at most `chunk` bytes.
    pub fn new(input: &'a [u8], chunk: usize) -> Self {
        Self { input, chunk: chunk.max(1), consumed: 0, written: Vec::new() }
    }

    /// How many input bytes readers have taken so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// Everything written to this peer.
    pub fn written(&self) -> &[u8] {
        &self.written
    }
}

impl AsyncRead for ChunkedConn<'_> {
    fn poll_read(self: Pin<&mut Self>, _cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let rest = &this.input[this.consumed..];
        let n = rest.len().min(out.len()).min(this.chunk);
        out[..n].copy_from_slice(&rest[..n]);
        this.consumed += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for ChunkedConn<'_> {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().written.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
