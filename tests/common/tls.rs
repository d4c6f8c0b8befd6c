//! Test-side TLS client (rustls through futures-rustls, trusting the engine's CA) and rstream-protocol
//! helpers, so tests can speak to the engine directly: open control channels, dial, play a fake agent.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_net::TcpStream;
use futures_lite::{future, AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use rstream::proto::frame::{read_frame, write_frame};
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{ClientDetails, Message};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// A TLS connection to the engine. Like the device's embedded-tls client and Go's crypto/tls, it reads a bare
/// TCP FIN at a record boundary as end of stream (the engine half-closes rstream streams that way).
pub struct Conn(TlsStream<TcpStream>);

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(0)),
            other => other,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// Any single network wait in a test.
pub const IO_DEADLINE: Duration = Duration::from_secs(20);

/// Runs `fut` for at most `limit`, panicking with `what` otherwise.
pub async fn within<T>(limit: Duration, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    future::or(fut, async {
        async_io::Timer::after(limit).await;
        panic!("timed out after {limit:?}: {what}")
    })
    .await
}

/// A rustls TLS 1.3 client config trusting `ca` (none: trusts nothing), offering `alpn` (if any).
pub fn client_config(ca: Option<&Path>, alpn: Option<&str>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca.into_iter().flat_map(|ca| CertificateDer::pem_file_iter(ca).expect("read CA")) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.into_iter().map(|p| p.as_bytes().to_vec()).collect();
    config
}

/// Connects to `addr` with TLS 1.3, trusting `ca`, verifying `server_name`, offering `alpn` (if any).
pub async fn connect_to(addr: &str, ca: &Path, server_name: &str, alpn: Option<&str>) -> std::io::Result<Conn> {
    let config = client_config(Some(ca), alpn);
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned()).expect("server name");
    within(IO_DEADLINE, "TLS handshake", TlsConnector::from(Arc::new(config)).connect(name, tcp)).await.map(Conn)
}

/// An `rstrm/1` connection to the engine.
pub async fn rstrm(engine: &super::Engine) -> Conn {
    connect_to(&engine.addr(), &engine.ca_path(), "localhost", Some("rstrm/1")).await.expect("connect rstrm/1")
}

/// Sends one framed message.
pub async fn send(conn: &mut Conn, payload: Payload) {
    within(IO_DEADLINE, "write frame", write_frame(conn, &Message::new(payload))).await.expect("write frame");
}

/// Receives one framed message, skipping heartbeats.
pub async fn recv(conn: &mut Conn) -> Payload {
    loop {
        let msg: Message = within(IO_DEADLINE, "read frame", read_frame(conn)).await.expect("read frame");
        match msg.payload.expect("message has a payload") {
            Payload::Heartbeat(_) => continue,
            other => return other,
        }
    }
}

/// Client details carrying `token`.
pub fn details(token: &str) -> Option<ClientDetails> {
    Some(ClientDetails::this_binary(token))
}

/// Client details of a protocol 1.3 peer (what an older agent announces), carrying `token`.
pub fn details_1_3(token: &str) -> Option<ClientDetails> {
    Some(ClientDetails {
        protocol_version: rstream::proto::rstream::some_str("1.3.0"),
        ..ClientDetails::this_binary(token)
    })
}
