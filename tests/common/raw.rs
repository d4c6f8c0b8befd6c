//! Raw sockets for attacker tests: TCP connections from a chosen loopback source address (the whole of
//! 127.0.0.0/8 is local on Linux, so one test can be many peers to the engine's per-address limits), blocking
//! TLS over them, and a probe telling whether the server has closed a connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use socket2::{Domain, Protocol, Socket, Type};

/// A blocking TLS connection over TCP.
pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The loopback source address of simulated peer `n` (127.0.<n / 250 + 10>.<n % 250 + 2>): never 127.0.0.1,
/// which the legitimate clients of a test use.
pub fn peer_ip(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, (10 + n / 250) as u8, (2 + n % 250) as u8))
}

/// Connects to `addr` from `source` (port chosen by the kernel), with `TCP_NODELAY`.
pub fn connect_from(source: IpAddr, addr: &str) -> std::io::Result<TcpStream> {
    let target: SocketAddr = addr.parse().expect("a socket address");
    let socket = Socket::new(Domain::for_address(target), Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&target.into(), Duration::from_secs(10))?;
    let tcp: TcpStream = socket.into();
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Completes a TLS 1.3 handshake over `tcp` trusting `ca`, naming `localhost`, offering `alpn`.
pub fn tls_over(tcp: TcpStream, ca: &Path, alpn: &str) -> std::io::Result<Tls> {
    let config = Arc::new(super::tls::client_config(Some(ca), Some(alpn)));
    let conn = rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.sock.set_read_timeout(Some(Duration::from_secs(20)))?;
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    tls.sock.set_read_timeout(None)?;
    Ok(tls)
}

/// Whether the peer has closed `tcp` (FIN or reset), waiting at most `wait`; bytes it sent are discarded.
pub fn closed_within(tcp: &TcpStream, wait: Duration) -> bool {
    let end = Instant::now() + wait;
    let mut scratch = [0u8; 4096];
    let mut reader = tcp;
    loop {
        let left = end.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        tcp.set_read_timeout(Some(left)).expect("set_read_timeout");
        match reader.read(&mut scratch) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= end {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// Sends `request` over `tls` and reads one response (head and `Content-Length` body) within `wait`: its status
/// and text (status 0 if none arrived in time).
pub fn request(tls: &mut Tls, request: &[u8], wait: Duration) -> (u16, String) {
    tls.write_all(request).expect("send request");
    tls.flush().expect("flush request");
    let end = Instant::now() + wait;
    let mut got = Vec::new();
    let mut scratch = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
            });
            if body.len() >= len.unwrap_or(0) {
                let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                return (status, text);
            }
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (0, text);
        }
        tls.sock.set_read_timeout(Some(left)).expect("set_read_timeout");
        match tls.read(&mut scratch) {
            Ok(0) => return (0, text),
            Ok(n) => got.extend_from_slice(&scratch[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return (0, text),
        }
    }
}

/// Whether the server closed `tls` (close_notify, bare FIN or reset) within `wait`; data it sent is discarded.
pub fn tls_closed_within(tls: &mut Tls, wait: Duration) -> bool {
    let end = Instant::now() + wait;
    let mut scratch = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        tls.sock.set_read_timeout(Some(left)).expect("set_read_timeout");
        match tls.read(&mut scratch) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // rustls reports a FIN without close_notify as UnexpectedEof; a reset is closed too.
            Err(_) => return true,
        }
    }
}
