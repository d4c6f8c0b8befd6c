//! Reaching a WebTTY server's WebDAV sidecar for the `rstream_webtty_fs_*` tools.
//!
//! `rstrm://NAME` (or a bare name) is resolved in the engine's inventory first, and the server's advertised
//! capabilities decide before any byte goes to the sidecar: an exec-only server is refused ("advertises exec
//! only"), a read-only one refuses changes. Then the tunnel is dialed through the engine (by tunnel id) and the
//! sidecar path comes from the inventory (`fs_path`) unless the agent overrides it. `ws://HOST:PORT` and
//! `http://HOST:PORT` reach a local `webtty server --listen` over TCP (no inventory, so no capability check;
//! the bearer token is `RSTREAM_WEBTTY_AUTH_TOKEN`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::AsyncWrite;

use super::args::ToolError;
use super::operator_env::OperatorEnv;
use super::tools_webtty::server_url;
use crate::limits::DIAL_TIMEOUT;
use crate::operator::inventory::resolve_webtty;
use crate::webdav::DavClient;
use crate::webtty::client::{BoxConn, Target};

/// A WebDAV client on one connection to a sidecar.
pub type FsClient = DavClient<BoxConn>;

/// What the tool is about to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// list, read, download.
    Read,
    /// write, mkdir, delete.
    Change,
}

/// A connected sidecar.
pub struct FsSession {
    /// The server as the agent should name it in follow-ups.
    pub server: String,
    /// The client.
    pub client: FsClient,
}

/// Connects to the sidecar of the server `url` names, refusing what its capabilities rule out.
pub async fn open(env: &OperatorEnv, url: &str, fs_path: Option<&str>, access: Access) -> Result<FsSession, ToolError> {
    let url = server_url(url);
    let ws_url = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => format!("ws://{rest}"),
        (_, Some(rest)) => format!("wss://{rest}"),
        _ => url.clone(),
    };
    let target = Target::parse(&ws_url, None).map_err(|e| ToolError(e.to_string()))?;
    match target {
        Target::Tunnel { name, .. } => open_tunnel(env, &name, fs_path, access).await,
        Target::Direct { tls: true, .. } => Err(ToolError(format!(
            "{url}: the fs tools reach servers through the engine (rstrm://NAME) or a local ws://HOST:PORT; \
             wss:// and https:// are not supported"
        ))),
        Target::Direct { tls: false, host, port, .. } => {
            let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
            let tcp = crate::webtty::timeout(DIAL_TIMEOUT, async_net::TcpStream::connect(addr.as_str()))
                .await
                .ok_or_else(|| ToolError(format!("connect {addr}: timed out after {DIAL_TIMEOUT:?}")))?
                .map_err(|e| ToolError(format!("connect {addr}: {e}")))?;
            let mut client = DavClient::new(Box::new(tcp) as BoxConn, addr.clone(), fs_path.unwrap_or("/fs"));
            if let Some(token) = env.var("RSTREAM_WEBTTY_AUTH_TOKEN") {
                client = client.with_bearer_token(token);
            }
            Ok(FsSession { server: url.clone(), client })
        }
    }
}

async fn open_tunnel(
    env: &OperatorEnv,
    name: &str,
    fs_path: Option<&str>,
    access: Access,
) -> Result<FsSession, ToolError> {
    let api = env.engine_api()?;
    let server = resolve_webtty(&api, name).await.map_err(ToolError)?;
    if !server.has("fs") {
        return Err(ToolError(format!(
            "server {} advertises {} only: it has no filesystem sidecar, so the rstream_webtty_fs_* tools cannot \
             be used on it; use rstream_webtty_exec instead (e.g. [\"cat\", \"FILE\"])",
            server.target,
            server.capabilities.join(",")
        )));
    }
    if access == Access::Change && server.fs_mode == "read-only" {
        return Err(ToolError(format!(
            "server {} serves its filesystem read-only (fs_mode read-only): list, read and download work, changes \
             do not",
            server.target
        )));
    }
    let stream = api
        .endpoint()
        .dial_tunnel(&server.tunnel_id)
        .await
        .map_err(|e| ToolError(format!("cannot reach server {} through the engine: {e}", server.target)))?;
    let base = fs_path.unwrap_or(&server.fs_path);
    let client = DavClient::new(Box::new(stream) as BoxConn, server.target.clone(), base);
    Ok(FsSession { server: server.rstream_url.clone(), client })
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
    fn wss_urls_are_refused_before_dialing() {
        let env = OperatorEnv::default();
        let err = smol::block_on(open(&env, "wss://example.com", None, Access::Read)).err().unwrap();
        assert!(err.0.contains("not supported"), "{err}");
    }
}
