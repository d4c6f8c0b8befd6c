//! The engine's TLS server: rustls (ring provider) through futures-rustls, one port for every ALPN.
//!
//! Only TLS 1.3 is offered. The ring provider's key exchange groups include secp256r1, the only one the
//! device's embedded-tls client offers, and the certificate key must be ECDSA P-256 so that the client's
//! ECDSA-P256-SHA256-only verifier accepts it. ALPN `rstrm/1` selects the rstream protocol; `http/1.1` (or no
//! ALPN at all) the REST API and published HTTP tunnels. Every handshake has a deadline.

use std::io;
use std::sync::Arc;
use std::time::Duration;

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

/// A TLS connection accepted by the engine.
pub type ServerTlsStream<S> = TlsStream<S>;

/// Performs the server handshake on `tcp` within `deadline`.
pub async fn accept<S>(acceptor: &TlsAcceptor, tcp: S, deadline: Duration) -> io::Result<ServerTlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    futures_lite::future::or(acceptor.accept(tcp), async {
        async_io::Timer::after(deadline).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, format!("TLS handshake not done within {deadline:?}")))
    })
    .await
}

/// The negotiated ALPN protocol and the SNI name of an accepted connection.
pub fn alpn_and_sni<S>(stream: &ServerTlsStream<S>) -> (Option<String>, Option<String>) {
    let conn = stream.get_ref().1;
    let alpn = conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
    (alpn, conn.server_name().map(str::to_owned))
}
