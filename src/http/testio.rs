//! In-memory duplex streams for tests: two bounded `piper` pipes joined back to back, plus a deadline helper.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};

/// One end of an in-memory connection.
pub(crate) struct Duplex {
    reader: piper::Reader,
    writer: piper::Writer,
}

/// A connected pair; each direction buffers at most `cap` bytes (backpressure like a socket).
pub(crate) fn duplex(cap: usize) -> (Duplex, Duplex) {
    let (r1, w1) = piper::pipe(cap);
    let (r2, w2) = piper::pipe(cap);
    (Duplex { reader: r1, writer: w2 }, Duplex { reader: r2, writer: w1 })
}

impl AsyncRead for Duplex {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, out)
    }
}

impl AsyncWrite for Duplex {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}

/// Runs `fut` to completion, failing the test if it takes longer than `limit` (a deadline, not a sleep).
pub(crate) fn run_within<T>(limit: Duration, fut: impl Future<Output = T>) -> T {
    futures_lite::future::block_on(futures_lite::future::or(fut, async {
        async_io::Timer::after(limit).await;
        panic!("test did not finish within {limit:?}");
    }))
}

/// Runs `fut` with the default test deadline of ten seconds.
pub(crate) fn run<T>(fut: impl Future<Output = T>) -> T {
    run_within(Duration::from_secs(10), fut)
}

/// Reads everything until the peer closes, as text.
pub(crate) async fn read_all(stream: &mut Duplex) -> String {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
