//! The engine's TLS server: rustls (ring provider) through futures-rustls, one port for every ALPN.
//!
//! Only TLS 1.3 is offered. The ring provider's key exchange groups include secp256r1, the only one the
//! device's embedded-tls client offers, and the certificate key must be ECDSA P-256 so that the client's
//! ECDSA-P256-SHA256-only verifier accepts it. ALPN `rstrm/1` selects the rstream protocol; `http/1.1` (or no
//! ALPN at all) the REST API and published HTTP tunnels. Every handshake has a deadline. Accepted connections
//! are [`ServerTls`], which speaks end-of-stream the way embedded-tls peers do.

use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_net::TcpStream;
use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use rustls::crypto::ring::default_provider;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS server could not be configured.
#[derive(Debug)]
pub struct TlsSetupError(pub String);

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsSetupError {}

/// Builds a TLS 1.3 server configuration from a PEM certificate chain and PEM private key, offering `alpn`.
pub fn server_config(chain_pem: &[u8], key_pem: &[u8], alpn: &[&str]) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError(format!("bad certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(TlsSetupError("no certificate in the PEM file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsSetupError(format!("bad private key PEM: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsSetupError(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsSetupError(format!("certificate and key do not form a usable pair: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// A connection accepted by the engine: rustls over TCP, adapted to embedded-tls peers (devices, `rstream dial`).
///
/// embedded-tls can neither send `close_notify` while it still reads (its half-close is a bare TCP FIN) nor
/// write after receiving one. So a FIN at a record boundary reads as end of stream here (rustls reports it as
/// `UnexpectedEof`), and with [`ServerTls::set_fin_half_close`] closing the write side sends a bare FIN after
/// flushing, leaving the peer free to keep writing. Go's crypto/tls reads such a FIN as a clean EOF as well.
pub struct ServerTls {
    inner: TlsStream<TcpStream>,
    fin_half_close: bool,
}

impl ServerTls {
    /// Makes `close` half-close with a bare TCP FIN instead of `close_notify` (rstream protocol streams).
    pub fn set_fin_half_close(&mut self, on: bool) {
        self.fin_half_close = on;
    }

    /// The negotiated ALPN protocol and the SNI name.
    pub fn alpn_and_sni(&self) -> (Option<String>, Option<String>) {
        let conn = self.inner.get_ref().1;
        let alpn = conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
        (alpn, conn.server_name().map(str::to_owned))
    }
}

impl AsyncRead for ServerTls {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(0)),
            other => other,
        }
    }
}

impl AsyncWrite for ServerTls {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.fin_half_close {
            return Pin::new(&mut self.inner).poll_close(cx);
        }
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        match self.inner.get_ref().0.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// Performs the server handshake on `tcp` within `deadline`. The handshake state lives in its own allocation,
/// made here: callers waiting for a peer's first byte hold none of it.
pub async fn accept(acceptor: &TlsAcceptor, tcp: TcpStream, deadline: Duration) -> io::Result<ServerTls> {
    let handshake =
        async { Box::pin(acceptor.accept(tcp)).await.map(|inner| ServerTls { inner, fin_half_close: false }) };
    crate::deadline::with_deadline(deadline, "TLS handshake", handshake).await
}
