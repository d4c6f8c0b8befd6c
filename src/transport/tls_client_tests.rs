//! Tests of the embedded-tls client against an in-process rustls server (futures-rustls, rcgen P-256 PKI).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::server::TlsStream as ServerTls;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::*;

const MIB: usize = 1 << 20;

/// A CA and a server certificate it signed.
pub(crate) struct Pki {
    pub ca_pem: String,
    pub server: rustls::ServerConfig,
    /// The chain the server presents (leaf, CA).
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
}

pub(crate) fn pki(names: &[&str], expired: bool, alpn: &[&str]) -> Pki {
    pki_with(names, expired, alpn, &rustls::version::TLS13)
}

fn pki_with(names: &[&str], expired: bool, alpn: &[&str], version: &'static rustls::SupportedProtocolVersion) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf_params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .unwrap();
    server.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    Pki { ca_pem: ca.pem(), server, chain: vec![leaf.der().clone(), ca.der().clone()] }
}

/// Accepts one TLS connection on 127.0.0.1 and runs `handler` on it.
pub(crate) fn serve_one<F, Fut, T>(config: rustls::ServerConfig, handler: F) -> (SocketAddr, smol::Task<io::Result<T>>)
where
    F: FnOnce(ServerTls<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<T>> + Send,
    T: Send + 'static,
{
    let listener = smol::block_on(async_net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = futures_rustls::TlsAcceptor::from(Arc::new(config));
    let task = smol::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        handler(acceptor.accept(tcp).await?).await
    });
    (addr, task)
}

pub(crate) fn client_config(ca_pem: &str, server_name: &str) -> ClientTlsConfig {
    ClientTlsConfig { server_name: server_name.into(), ca_pem: Some(ca_pem.as_bytes().to_vec()), ..Default::default() }
}

pub(crate) async fn dial(addr: SocketAddr, cfg: &ClientTlsConfig, alpn: &str) -> io::Result<TlsStream> {
    connect_tls(TcpStream::connect(addr).await?, cfg, alpn).await
}

pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn good_ca_carries_a_mebibyte_each_way_with_half_close_and_alpn() {
    let pki = pki(&["localhost", "*.t.localhost"], false, &["rstrm/1", "http/1.1"]);
    let (addr, server) = serve_one(pki.server, |mut tls| async move {
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        // Echo everything back concurrently, then close (close_notify) once the client half-closed.
        let (mut r, mut w) = futures_lite::io::split(&mut tls);
        let copied = futures_lite::io::copy(&mut r, &mut w).await;
        let copied = match copied {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            other => Some(other?),
        };
        tls.close().await?;
        Ok((alpn, copied))
    });
    smol::block_on(async {
        let tls = dial(addr, &client_config(&pki.ca_pem, "localhost"), "rstrm/1").await.unwrap();
        let sent = pattern(MIB, 7);
        let (mut rd, mut wr) = futures_lite::io::split(tls);
        let writer = async {
            wr.write_all(&sent).await?;
            wr.close().await
        };
        let mut echoed = Vec::new();
        let (written, read) = futures_lite::future::zip(writer, rd.read_to_end(&mut echoed)).await;
        if written.is_err() {
            panic!("client write failed: {written:?}; server: {:?}", server.await.map(|_| ()));
        }
        assert_eq!(read.unwrap(), MIB);
        assert!(echoed == sent, "echoed bytes differ");
        let (alpn, _) = server.await.unwrap();
        assert_eq!(alpn.as_deref(), Some(&b"rstrm/1"[..]));
    });
}

#[test]
fn a_mebibyte_from_the_server_then_its_fin_reads_as_eof_and_writes_go_on() {
    let pki = pki(&["localhost"], false, &["rstrm/1"]);
    let (addr, server) = serve_one(pki.server, |mut tls| async move {
        tls.write_all(&pattern(MIB, 3)).await?;
        tls.flush().await?;
        // Half-close the way the engine does towards embedded-tls peers: a bare FIN, no close_notify.
        tls.get_ref().0.shutdown(Shutdown::Write)?;
        let mut reply = Vec::new();
        // The client ends with a real close_notify (its read side saw our FIN first): a clean Ok, no error.
        tls.read_to_end(&mut reply).await?;
        Ok(reply)
    });
    smol::block_on(async {
        let mut tls = dial(addr, &client_config(&pki.ca_pem, "localhost"), "rstrm/1").await.unwrap();
        let mut got = Vec::new();
        tls.read_to_end(&mut got).await.unwrap();
        assert!(got == pattern(MIB, 3));
        tls.write_all(b"still writing after the server's FIN").await.unwrap();
        tls.close().await.unwrap();
        assert_eq!(server.await.unwrap(), b"still writing after the server's FIN");
    });
}

#[test]
fn writes_after_the_server_close_notify_fail_clearly() {
    let pki = pki(&["localhost"], false, &["rstrm/1"]);
    let (addr, server) = serve_one(pki.server, |mut tls| async move {
        tls.write_all(b"bye").await?;
        tls.close().await?;
        Ok(())
    });
    smol::block_on(async {
        let mut tls = dial(addr, &client_config(&pki.ca_pem, "localhost"), "rstrm/1").await.unwrap();
        let mut got = Vec::new();
        tls.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
        server.await.unwrap();
        let _ = tls.write_all(b"too late").await;
        let err = tls.close().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(err.to_string().contains("close_notify"), "{err}");
    });
}

fn handshake_error_of(server: rustls::ServerConfig, cfg: ClientTlsConfig, alpn: &str) -> io::Error {
    let (addr, server) = serve_one(server, |_tls| async { Ok(()) });
    smol::block_on(async {
        let err = dial(addr, &cfg, alpn).await.expect_err("handshake must fail");
        drop(server); // the server side fails too; its result does not matter
        err
    })
}

#[test]
fn wrong_ca_is_refused_with_a_clear_error() {
    let served = pki(&["localhost"], false, &["rstrm/1"]);
    let other = pki(&["localhost"], false, &["rstrm/1"]);
    let err = handshake_error_of(served.server, client_config(&other.ca_pem, "localhost"), "rstrm/1");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("not signed by the trusted CA"), "{err}");
}

#[test]
fn wrong_hostname_is_refused_with_a_clear_error() {
    let pki = pki(&["engine.example"], false, &["rstrm/1"]);
    let err = handshake_error_of(pki.server, client_config(&pki.ca_pem, "localhost"), "rstrm/1");
    let msg = err.to_string();
    assert!(msg.contains("do not include the server name \"localhost\""), "{msg}");
    assert!(msg.contains("engine.example"), "{msg}");
}

#[test]
fn expired_certificate_is_refused_with_a_clear_error() {
    let pki = pki(&["localhost"], true, &["rstrm/1"]);
    let err = handshake_error_of(pki.server, client_config(&pki.ca_pem, "localhost"), "rstrm/1");
    assert!(err.to_string().contains("certificate expired: valid until unix 1609459200"), "{err}");
}

#[test]
fn unsupported_alpn_is_refused_with_a_clear_error() {
    let pki = pki(&["localhost"], false, &["http/1.1"]);
    let err = handshake_error_of(pki.server, client_config(&pki.ca_pem, "localhost"), "rstrm/1");
    assert!(err.to_string().contains("ALPN protocol: this client offered \"rstrm/1\""), "{err}");
}

#[test]
fn tls12_only_server_is_refused_with_a_clear_error() {
    let pki = pki_with(&["localhost"], false, &["rstrm/1"], &rustls::version::TLS12);
    let err = handshake_error_of(pki.server, client_config(&pki.ca_pem, "localhost"), "rstrm/1");
    assert!(err.to_string().contains("TLS 1.3"), "{err}");
}

#[test]
fn missing_ca_is_an_error_never_a_silent_skip() {
    let pki = pki(&["localhost"], false, &["rstrm/1"]);
    let cfg = ClientTlsConfig { server_name: "localhost".into(), ..Default::default() };
    let err = handshake_error_of(pki.server, cfg, "rstrm/1");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("caFile"), "{err}");
}

#[test]
fn ip_server_name_is_refused_before_connecting() {
    let pki = pki(&["localhost"], false, &["rstrm/1"]);
    let err = handshake_error_of(pki.server, client_config(&pki.ca_pem, "127.0.0.1"), "rstrm/1");
    assert!(err.to_string().contains("serverName"), "{err}");
}

#[test]
fn insecure_skip_verify_connects_despite_a_foreign_ca_when_asked() {
    let pki = pki(&["elsewhere.example"], true, &["rstrm/1"]);
    let (addr, server) = serve_one(pki.server, |mut tls| async move {
        tls.write_all(b"unverified").await?;
        tls.close().await
    });
    smol::block_on(async {
        let cfg = ClientTlsConfig { server_name: "localhost".into(), ca_pem: None, insecure_skip_verify: true };
        let mut tls = dial(addr, &cfg, "rstrm/1").await.unwrap();
        let mut got = Vec::new();
        tls.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"unverified");
        server.await.unwrap();
    });
}

#[test]
fn second_ca_in_the_file_is_also_trusted() {
    let served = pki(&["localhost"], false, &["rstrm/1"]);
    let other = pki(&["localhost"], false, &["rstrm/1"]);
    let bundle = format!("{}{}", other.ca_pem, served.ca_pem);
    let (addr, server) = serve_one(served.server, |mut tls| async move { tls.close().await });
    smol::block_on(async {
        let mut tls = dial(addr, &client_config(&bundle, "localhost"), "rstrm/1").await.unwrap();
        let mut got = Vec::new();
        tls.read_to_end(&mut got).await.unwrap();
        server.await.unwrap();
    });
}

/// A server that presents `chain` but signs its handshake with a fresh key that is not the leaf's.
fn impostor(chain: Vec<rustls::pki_types::CertificateDer<'static>>) -> rustls::ServerConfig {
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);
    impl rustls::server::ResolvesServerCert for Fixed {
        fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }
    let provider = rustls::crypto::ring::default_provider();
    let other_key = rcgen::KeyPair::generate().unwrap();
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(other_key.serialize_der())))
        .unwrap();
    let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, key));
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(certified)));
    server.alpn_protocols = vec![b"rstrm/1".to_vec()];
    server
}

#[test]
fn a_remembered_chain_is_worth_nothing_without_the_leaf_key() {
    let pki = pki(&["localhost"], false, &["rstrm/1"]);
    let chain = pki.chain.clone();
    let cfg = client_config(&pki.ca_pem, "localhost");
    let (addr, genuine) = serve_one(pki.server, |tls| async move { Ok(tls) });
    smol::block_on(async {
        // The genuine engine: its chain verifies and is remembered.
        let first = dial(addr, &cfg, "rstrm/1").await.unwrap();
        let _genuine = genuine.await.unwrap();
        drop(first);
        // A copy of the same certificates without the private key must still be refused.
        let (addr, _impostor) = serve_one(impostor(chain), |tls| async move { Ok(tls) });
        let err = dial(addr, &cfg, "rstrm/1").await.expect_err("an impostor with a copied chain was accepted");
        assert!(err.to_string().contains("handshake signature does not match its certificate"), "{err}");
    });
}

#[test]
fn a_handshake_completes_while_another_session_streams_flat_out() {
    let pki = pki(&["localhost"], false, &["rstrm/1"]);
    let ca_pem = pki.ca_pem.clone();
    // One server streams without pause until the client goes away.
    let (busy_addr, _busy) = serve_one(pki.server.clone(), |mut tls| async move {
        let chunk = pattern(64 * 1024, 1);
        loop {
            tls.write_all(&chunk).await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), io::Error>(())
    });
    let (quiet_addr, _quiet) = serve_one(pki.server, |tls| async move { Ok(tls) });
    smol::block_on(async {
        let cfg = client_config(&ca_pem, "localhost");
        let mut busy = dial(busy_addr, &cfg, "rstrm/1").await.unwrap();
        let mut sink = vec![0u8; 64 * 1024];
        let mut received = 0usize;
        while received < 4 * MIB {
            received += busy.read(&mut sink).await.unwrap();
        }
        // Keep draining the busy stream while a second handshake runs on the same TLS thread.
        let drain = async {
            loop {
                if busy.read(&mut sink).await.unwrap() == 0 {
                    break;
                }
            }
        };
        let second = crate::deadline::with_deadline(
            std::time::Duration::from_secs(5),
            "a handshake beside a busy stream",
            dial(quiet_addr, &cfg, "rstrm/1"),
        );
        let done = futures_lite::future::or(async { Some(second.await) }, async {
            drain.await;
            None
        })
        .await;
        done.expect("the busy stream ended first").expect("the second handshake starved");
    });
}
