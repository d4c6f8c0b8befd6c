//! Reaching a WebTTY server's WebDAV sidecar for the `rstream_webtty_fs_*` tools: a thin adapter over
//! [`crate::operator::fs_session`] (which resolves `rstrm://NAME` in the engine inventory, refuses servers that do
//! not advertise `fs` before any request goes to the device, and dials the tunnel), adding what the tools need:
//! bare server names, the `--allow-servers` policy (checked first), the local bearer token from
//! `RSTREAM_WEBTTY_AUTH_TOKEN`, and the refusal of changes on a server whose filesystem is read-only (before the
//! first WebDAV request).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::AsyncWrite;

use super::args::ToolError;
use super::catalog::CallContext;
use super::tools_webtty::server_url;
use crate::operator::fs_session;
use crate::webdav::DavClient;
use crate::webtty::client::{BoxConn, DirectTls};

/// A WebDAV client on one connection to a sidecar.
pub type FsClient = DavClient<BoxConn>;

/// What the tool is about to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// list, stat, read, download.
    Read,
    /// write, mkdir, move, delete, upload.
    Change,
}

/// A connected sidecar.
pub struct FsSession {
    /// The server as the agent should name it in follow-ups (`rstrm://NAME` or the URL given).
    pub server: String,
    /// The client.
    pub client: FsClient,
}

/// Connects to the sidecar of the server `url` names, refusing what the policy and its capabilities rule out.
pub async fn open(
    ctx: &CallContext<'_>,
    url: &str,
    fs_path: Option<&str>,
    access: Access,
) -> Result<FsSession, ToolError> {
    let url = server_url(url);
    let dial = ctx.servers.resolve(ctx.env, &url).await?;
    let token = ctx.env.webtty_token();
    let session = fs_session::open(&dial, fs_path, token.as_ref(), &DirectTls::default()).await.map_err(|e| {
        let hint = if e.0.contains("exec-only") { "; with MCP, use rstream_webtty_exec on it" } else { "" };
        ToolError(format!("{e}{hint}"))
    })?;
    let server = match &session.server {
        Some(info) if access == Access::Change && info.fs_mode == "read-only" => {
            return Err(ToolError(format!(
                "server {} serves its filesystem read-only (fs_mode read-only): list, read and download work, \
                 changes do not",
                info.target
            )));
        }
        Some(info) => info.rstream_url.clone(),
        None => url,
    };
    Ok(FsSession { server, client: session.client })
}

/// An `AsyncWrite` over a blocking writer that accepts at most `cap` bytes; past it, writes fail and
/// [`Capped::overflowed`] turns true (so a read can stop early and report truncation).
pub struct Capped<W> {
    inner: W,
    cap: u64,
    written: u64,
    overflowed: bool,
}

impl<W: io::Write + Unpin> Capped<W> {
    /// Wraps `inner` with a cap of `cap` bytes.
    pub fn new(inner: W, cap: u64) -> Self {
        Capped { inner, cap, written: 0, overflowed: false }
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether more than `cap` bytes were offered.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: io::Write + Unpin> AsyncWrite for Capped<W> {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let room = self.cap - self.written;
        if room == 0 && !buf.is_empty() {
            self.overflowed = true;
            return Poll::Ready(Err(io::Error::other(format!("more than {} bytes", self.cap))));
        }
        let n = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        self.inner.write_all(&buf[..n])?;
        self.written += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.flush())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::AsyncWriteExt;

    #[test]
    fn capped_writer_keeps_the_first_bytes_and_reports_overflow() {
        smol::block_on(async {
            let mut w = Capped::new(Vec::new(), 5);
            w.write_all(b"abc").await.unwrap();
            assert!(!w.overflowed());
            assert!(w.write_all(b"defg").await.is_err());
            assert!(w.overflowed());
            assert_eq!((w.written(), w.into_inner()), (5, b"abcde".to_vec()));
            let mut exact = Capped::new(Vec::new(), 3);
            exact.write_all(b"abc").await.unwrap();
            exact.flush().await.unwrap();
            assert!(!exact.overflowed());
        });
    }

    #[test]
    fn tls_urls_naming_an_ip_are_refused_before_dialing() {
        let env = crate::mcp::operator_env::OperatorEnv::default();
        let (cancel, servers) = (crate::mcp::cancel::Cancel::never(), crate::mcp::policy::ServerAccess::default());
        let ctx = CallContext { env: &env, cancel: &cancel, servers: &servers };
        let err = smol::block_on(open(&ctx, "wss://192.0.2.1:8443", None, Access::Read)).err().unwrap();
        assert!(err.0.contains("DNS names, not IP addresses"), "{err}");
    }
}
