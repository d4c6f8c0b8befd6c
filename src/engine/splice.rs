//! Splicing two byte streams together (client ⇄ agent), both directions at once, half-close aware.
//!
//! One future drives both directions with one buffer each ([`COPY_BUF_LEN`]), held only while that direction has
//! bytes on their way: a direction whose source has nothing to read gives its buffer back, so idle streams (a
//! terminal waiting for a keystroke, a kept-alive HTTP connection) hold none. Nothing else is buffered, so a slow
//! reader stalls its writer (backpressure). When one side reaches end-of-file its peer's write side
//! is closed (TLS `close_notify` + TCP shutdown) and the other direction keeps flowing until it ends too.
//! Bytes are counted per direction as they are written, into every counter given (the engine's totals for
//! metrics, the stream's own for its `stream.summary`); the result says which side ended first.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{ready, Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

use crate::limits::COPY_BUF_LEN;

/// A bidirectional byte stream that can move between tasks.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// A boxed [`Duplex`]: how an agent's leg travels from its connection task to the waiting stream.
pub type BoxedStream = Box<dyn Duplex>;

/// One copy direction: a buffer while bytes are on their way, its fill window, and where it stands.
struct Direction<'c> {
    buf: Option<Box<[u8]>>,
    start: usize,
    end: usize,
    eof: bool,
    needs_flush: bool,
    done: bool,
    counters: &'c [&'c AtomicU64],
}

impl<'c> Direction<'c> {
    fn new(counters: &'c [&'c AtomicU64]) -> Self {
        Direction { buf: None, start: 0, end: 0, eof: false, needs_flush: false, done: false, counters }
    }

    /// Moves bytes from `from` to `to` until it would block; `Ready(Ok)` once `from` ended and `to` is closed.
    fn poll_copy<R, W>(&mut self, cx: &mut Context<'_>, from: &mut R, to: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        loop {
            if self.start == self.end && !self.eof {
                let buf = self.buf.get_or_insert_with(|| vec![0u8; COPY_BUF_LEN].into_boxed_slice());
                match Pin::new(&mut *from).poll_read(cx, buf) {
                    Poll::Ready(Ok(0)) => self.eof = true,
                    Poll::Ready(Ok(n)) => (self.start, self.end) = (0, n),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        self.buf = None; // nothing on its way: an idle direction holds no buffer
                        if self.needs_flush {
                            ready!(Pin::new(&mut *to).poll_flush(cx))?;
                            self.needs_flush = false;
                        }
                        return Poll::Pending;
                    }
                }
            }
            while let Some(pending) = self.buf.as_deref().and_then(|buf| buf.get(self.start..self.end)) {
                if pending.is_empty() {
                    break;
                }
                let n = ready!(Pin::new(&mut *to).poll_write(cx, pending))?;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::WriteZero, "peer stopped accepting bytes")));
                }
                self.start += n;
                self.needs_flush = true;
                for counter in self.counters {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            if self.eof {
                ready!(Pin::new(&mut *to).poll_close(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Which side of a splice reached end-of-file first (closed first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstEnd {
    /// `a` did.
    A,
    /// `b` did.
    B,
}

/// Splices `a` and `b` until both directions reached end-of-file, or either fails. Bytes from `a` to `b` are
/// added to every counter of `a_to_b`, the others to `b_to_a`.
pub async fn splice<A, B>(a: &mut A, b: &mut B, a_to_b: &[&AtomicU64], b_to_a: &[&AtomicU64]) -> io::Result<FirstEnd>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    Splice { a, b, ab: Direction::new(a_to_b), ba: Direction::new(b_to_a), first: None }.await
}

struct Splice<'s, A: ?Sized, B: ?Sized> {
    a: &'s mut A,
    b: &'s mut B,
    ab: Direction<'s>,
    ba: Direction<'s>,
    first: Option<FirstEnd>,
}

impl<A, B> Future for Splice<'_, A, B>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    type Output = io::Result<FirstEnd>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<FirstEnd>> {
        let this = self.get_mut();
        if !this.ab.done {
            if let Poll::Ready(Err(e)) = this.ab.poll_copy(cx, this.a, this.b) {
                return Poll::Ready(Err(e));
            }
        }
        if this.ab.eof && this.first.is_none() {
            this.first = Some(FirstEnd::A);
        }
        if !this.ba.done {
            if let Poll::Ready(Err(e)) = this.ba.poll_copy(cx, this.b, this.a) {
                return Poll::Ready(Err(e));
            }
        }
        if this.ba.eof && this.first.is_none() {
            this.first = Some(FirstEnd::B);
        }
        if this.ab.done && this.ba.done {
            Poll::Ready(Ok(this.first.unwrap_or(FirstEnd::A)))
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

    /// An in-memory duplex end: reads from one pipe, writes to another.
    struct End {
        r: piper::Reader,
        w: piper::Writer,
    }

    fn pair() -> (End, End) {
        let (r1, w1) = piper::pipe(64);
        let (r2, w2) = piper::pipe(64);
        (End { r: r1, w: w2 }, End { r: r2, w: w1 })
    }

    impl AsyncRead for End {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.r).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for End {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.w).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.w).poll_flush(cx)
        }
        fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.w).poll_close(cx)
        }
    }

    #[test]
    fn splice_carries_both_directions_through_half_close_and_counts_bytes() {
        smol::block_on(async {
            let (mut client, mut engine_a) = pair();
            let (mut engine_b, mut agent) = pair();
            let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
            let (up_total, down_total) = (AtomicU64::new(0), AtomicU64::new(0));
            let (ups, downs) = ([&up, &up_total], [&down, &down_total]);
            let relay = splice(&mut engine_a, &mut engine_b, &ups, &downs);
            let request = vec![7u8; 100_000];
            let client_side = async {
                client.write_all(&request).await.unwrap();
                client.close().await.unwrap(); // half-close: the agent must see EOF, then still answer
                let mut back = String::new();
                client.read_to_string(&mut back).await.unwrap();
                assert_eq!(back, "response after the client's EOF");
            };
            let agent_side = async {
                let mut got = Vec::new();
                agent.read_to_end(&mut got).await.unwrap();
                assert_eq!(got, request);
                agent.write_all(b"response after the client's EOF").await.unwrap();
                agent.close().await.unwrap();
            };
            let ends = futures_lite::future::zip(client_side, agent_side);
            let (relayed, ((), ())) = futures_lite::future::zip(relay, ends).await;
            assert_eq!(relayed.unwrap(), FirstEnd::A, "the client closed first");
            assert_eq!(up.load(Ordering::Relaxed), 100_000);
            assert_eq!(down.load(Ordering::Relaxed), 31);
            assert_eq!((up_total.load(Ordering::Relaxed), down_total.load(Ordering::Relaxed)), (100_000, 31));
        });
    }
}
