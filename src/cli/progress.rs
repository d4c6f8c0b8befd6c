//! Progress on stderr for long transfers: a one-line meter, shown only when stderr is a terminal and the
//! transfer is (or may be) larger than [`PROGRESS_MIN_BYTES`], redrawn at most every [`PROGRESS_REDRAW`].

use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};

/// Transfers smaller than this show no meter.
pub const PROGRESS_MIN_BYTES: u64 = 1 << 20;
/// Minimum time between two redraws.
pub const PROGRESS_REDRAW: Duration = Duration::from_millis(200);

/// A byte meter for one transfer.
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_draw: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// A meter for `label` of `total` bytes (if known); silent unless stderr is a terminal.
    pub fn new(label: impl Into<String>, total: Option<u64>) -> Self {
        let big_enough = total.is_none_or(|t| t > PROGRESS_MIN_BYTES);
        let enabled = big_enough && std::io::stderr().is_terminal();
        Progress { label: label.into(), total, done: 0, started: Instant::now(), last_draw: None, enabled }
    }

    /// Counts `n` more bytes.
    pub fn advance(&mut self, n: usize) {
        self.done += n as u64;
        let due = self.last_draw.is_none_or(|t| t.elapsed() >= PROGRESS_REDRAW);
        if self.enabled && due && self.done > PROGRESS_MIN_BYTES {
            self.draw();
        }
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.done
    }

    fn draw(&mut self) {
        self.last_draw = Some(Instant::now());
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = mib(self.done) / secs;
        let line = match self.total {
            Some(t) if t > 0 => {
                let pct = self.done.saturating_mul(100) / t;
                format!("{}  {:.1}/{:.1} MiB  {pct:>3}%  {rate:.1} MiB/s", self.label, mib(self.done), mib(t))
            }
            _ => format!("{}  {:.1} MiB  {rate:.1} MiB/s", self.label, mib(self.done)),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// Ends the meter line (if one was drawn).
    pub fn finish(mut self) {
        if self.enabled && self.last_draw.is_some() {
            self.draw();
            eprintln!();
        }
    }
}

/// Counts bytes read through it.
pub struct MeteredReader<'a, R> {
    inner: R,
    progress: &'a mut Progress,
}

impl<'a, R> MeteredReader<'a, R> {
    /// Wraps `inner`.
    pub fn new(inner: R, progress: &'a mut Progress) -> Self {
        MeteredReader { inner, progress }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for MeteredReader<'_, R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.progress.advance(n);
        }
        res
    }
}

/// Counts bytes written through it.
pub struct MeteredWriter<'a, W> {
    inner: W,
    progress: &'a mut Progress,
}

impl<'a, W> MeteredWriter<'a, W> {
    /// Wraps `inner`.
    pub fn new(inner: W, progress: &'a mut Progress) -> Self {
        MeteredWriter { inner, progress }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for MeteredWriter<'_, W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.progress.advance(n);
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
