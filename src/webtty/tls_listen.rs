//! TLS for `rstream webtty server --listen … --tls-cert-file C --tls-key-file K` (builds with feature `engine`).
//!
//! The engine's rustls server ([`crate::transport::tls_server`]: TLS 1.3 only, ring provider, P-256 key share)
//! terminates TLS in front of the same [`super::server::WebttyServer`], so WebSocket sessions (`wss://`) and the
//! WebDAV sidecar (`https://…/fs`) share the port. ALPN `http/1.1` is offered; a client offering none is served
//! too. For embedded-tls clients (`rstream webtty exec|client|fs` on a device build) the certificate must be
//! ECDSA P-256, as the engine's.
//!
//! A client that speaks plain HTTP to the TLS port gets a plain-text `400` saying so (the first byte of a TLS
//! connection is always 0x16, a handshake record; of an HTTP request, a letter), not a stalled handshake.

use std::future::Future;
use std::io;
use std::path::Path;

use async_net::TcpStream;
use futures_rustls::TlsAcceptor;

use super::server::Handshake;
use crate::http::{ResponseHead, ServerConn};
use crate::limits::TLS_HANDSHAKE_TIMEOUT;
use crate::proto::rstream::ALPN_HTTP1;
use crate::transport::tls_server::{accept, server_config, ServerTls};

/// First byte of every TLS connection: the record type of the ClientHello.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain-HTTP client hears on the TLS port.
const PLAIN_HTTP_REFUSAL: &str = "this port serves TLS: use https:// or wss://\n";

/// The TLS server handshake for every accepted connection.
#[derive(Clone)]
pub struct TlsHandshake {
    acceptor: TlsAcceptor,
}

impl TlsHandshake {
    /// Reads a PEM certificate chain and its PEM private key; errors name the file at fault.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsHandshake, String> {
        let read = |flag: &str, path: &Path| {
            std::fs::read(path).map_err(|e| format!("{flag} {:?}: {e}", path.display().to_string()))
        };
        let chain = read("--tls-cert-file", cert)?;
        let key_pem = read("--tls-key-file", key)?;
        let config = server_config(&chain, &key_pem, &[ALPN_HTTP1]).map_err(|e| {
            format!(
                "--tls-cert-file {:?} / --tls-key-file {:?}: {e}",
                cert.display().to_string(),
                key.display().to_string()
            )
        })?;
        Ok(TlsHandshake { acceptor: TlsAcceptor::from(config) })
    }
}

impl Handshake for TlsHandshake {
    type Stream = ServerTls;
    const WS_SCHEME: &'static str = "wss";

    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<ServerTls>> {
        let acceptor = self.acceptor.clone();
        async move {
            let mut first = [0u8; 1];
            let peeked = crate::deadline::with_deadline(TLS_HANDSHAKE_TIMEOUT, "TLS handshake", tcp.peek(&mut first));
            if peeked.await? == 1 && first[0] != TLS_HANDSHAKE_RECORD {
                refuse_plain_http(tcp).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, "plain HTTP on the TLS port (answered 400)"));
            }
            accept(&acceptor, tcp, TLS_HANDSHAKE_TIMEOUT).await
        }
    }
}

/// Answers one plain-text request with `400` and closes (lingering over unread input, so the answer arrives).
async fn refuse_plain_http(tcp: TcpStream) {
    let mut conn = ServerConn::new(tcp);
    if let Ok(Some(_)) = conn.next_request().await {
        let head = ResponseHead::new(400).header("Content-Type", "text/plain; charset=utf-8");
        let _ = conn.respond_and_close(head, PLAIN_HTTP_REFUSAL.as_bytes()).await;
    }
}
