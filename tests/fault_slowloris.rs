//! Fault: slowloris and half-open clients on every listener — the engine's TLS port (TCP connect and silence;
//! a ClientHello and then silence; a REST request head that never ends), its plain published-HTTP listener
//! (`--http-listen`) and a `webtty server --listen` with its WebDAV sidecar. Each kind is opened 200 times at
//! once: the server closes every one when its limit from `src/limits.rs` runs out (not before), legitimate
//! requests are served meanwhile, and the server's resident memory stays bounded: at most
//! [`MAX_RSS_GROWTH_KIB`], what a 128 MiB router can spare. The WebTTY server holds at most
//! `MAX_WEBTTY_CONNECTIONS`: its timeouts are checked below that, and with more half-open clients than it holds it
//! must still serve requests (it closes the oldest connection that never sent a request).
//!
//! The half-open clients come from many loopback source addresses, [`PER_SOURCE`] each, below the engine's
//! per-source limits on unauthenticated connections and handshakes (`tests/dos_preauth.rs` checks those): this test is
//! about what the timeouts do. The legitimate requests come from 127.0.0.1.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;
// Both harnesses include `common/proc.rs`; this file uses it through `common`.
#[allow(clippy::duplicate_mod)]
mod webtty_support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proc::{memory_kib, raise_nofile_limit};
use common::raw::{connect_from, peer_ip};
use common::tunnel::{http_origin, https_get, Forward, HELLO};
use common::{curl, Engine};
use rstream::limits::{
    HTTP_HEAD_TIMEOUT, HTTP_IDLE_TIMEOUT, MAX_PREAUTH_HANDSHAKES_PER_SOURCE, MAX_WEBTTY_CONNECTIONS,
    TLS_HANDSHAKE_TIMEOUT,
};
use rustls::pki_types::ServerName;
use webtty_support::LocalServer;

/// Half-open connections of each kind.
const PER_KIND: usize = 200;
/// How late after its limit a connection may be closed (a loaded two-core machine).
const LATE: Duration = Duration::from_secs(8);
/// How early: timers start when the server accepts or reads the first byte, never before we connected.
const EARLY: Duration = Duration::from_millis(500);
/// A legitimate request must be answered within this while the half-open connections are held.
const SERVED_WITHIN: Duration = Duration::from_secs(5);
/// Resident memory a server may gain while holding all its half-open connections: 8 MiB, what a router with
/// 128 MiB can spare for a flood.
const MAX_RSS_GROWTH_KIB: u64 = 8 * 1024;
/// Half-open connections opened from one source address.
const PER_SOURCE: usize = MAX_PREAUTH_HANDSHAKES_PER_SOURCE / 2;
/// A request head that never ends.
const PARTIAL_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";

/// One kind of half-open connection: what it sent, when it must be closed, and the sockets.
struct Kind {
    name: &'static str,
    limit: Duration,
    sockets: Vec<HalfOpen>,
}

/// A connection we never speak on again, watched for the server closing it.
struct HalfOpen {
    tcp: TcpStream,
    opened: Instant,
    closed: Option<Duration>,
}

impl HalfOpen {
    fn new(tcp: TcpStream) -> HalfOpen {
        tcp.set_nonblocking(true).expect("non-blocking");
        HalfOpen { tcp, opened: Instant::now(), closed: None }
    }

    /// Reads (and discards) what the server sent; true once it closed the connection (FIN or reset).
    fn poll_closed(&mut self) -> bool {
        if self.closed.is_some() {
            return true;
        }
        let mut scratch = [0u8; 4096];
        let gone = loop {
            match self.tcp.read(&mut scratch) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        if gone {
            self.closed = Some(self.opened.elapsed());
        }
        gone
    }
}

impl Kind {
    /// Opens [`PER_KIND`] connections with `connect`.
    fn open(name: &'static str, limit: Duration, connect: impl FnMut() -> TcpStream) -> Kind {
        Kind::open_n(PER_KIND, name, limit, connect)
    }

    fn open_n(n: usize, name: &'static str, limit: Duration, mut connect: impl FnMut() -> TcpStream) -> Kind {
        Kind { name, limit, sockets: (0..n).map(|_| HalfOpen::new(connect())).collect() }
    }

    /// How many are still open.
    fn open_count(&mut self) -> usize {
        self.sockets.iter_mut().map(HalfOpen::poll_closed).filter(|closed| !closed).count()
    }

    /// Asserts every connection was closed, none before `limit - EARLY`, none after `limit + LATE`.
    fn check(&self) {
        let times: Vec<Duration> = self.sockets.iter().map(|s| s.closed.expect("closed")).collect();
        let (first, last) = (times.iter().min().unwrap(), times.iter().max().unwrap());
        eprintln!("{}: {} closed between {first:?} and {last:?} (limit {:?})", self.name, times.len(), self.limit);
        assert!(*first + EARLY >= self.limit, "{}: one was closed after {first:?}, before its limit", self.name);
        assert!(*last <= self.limit + LATE, "{}: one was closed only after {last:?}", self.name);
    }
}

/// Polls all kinds until every connection is closed or the longest limit plus [`LATE`] passed.
fn wait_all_closed(kinds: &mut [Kind]) {
    let limit = kinds.iter().map(|k| k.limit).max().unwrap() + LATE + Duration::from_secs(2);
    let end = Instant::now() + limit;
    loop {
        let open: usize = kinds.iter_mut().map(Kind::open_count).sum();
        if open == 0 {
            break;
        }
        let left: Vec<String> = kinds.iter_mut().map(|k| format!("{} {}", k.open_count(), k.name)).collect();
        assert!(Instant::now() < end, "half-open connections never closed: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for kind in kinds.iter() {
        kind.check();
    }
}

/// A new connection to `addr`, from the next source address ([`PER_SOURCE`] connections each).
fn connect(addr: &str) -> TcpStream {
    static OPENED: AtomicUsize = AtomicUsize::new(0);
    let source = peer_ip(OPENED.fetch_add(1, Ordering::Relaxed) / PER_SOURCE);
    connect_from(source, addr).unwrap_or_else(|e| panic!("connect {addr} from {source}: {e}"))
}

/// A rustls client config for the engine (trusting `ca`, if any), offering ALPN `http/1.1`.
fn tls_config(ca: Option<&std::path::Path>) -> Arc<rustls::ClientConfig> {
    Arc::new(common::tls::client_config(ca, Some("http/1.1")))
}

fn tls_client(config: &Arc<rustls::ClientConfig>) -> rustls::ClientConnection {
    rustls::ClientConnection::new(Arc::clone(config), ServerName::try_from("localhost").unwrap()).expect("client")
}

/// Sends a ClientHello and nothing more.
fn client_hello_then_silence(addr: &str, config: &Arc<rustls::ClientConfig>) -> TcpStream {
    let mut tcp = connect(addr);
    let mut hello = Vec::new();
    tls_client(config).write_tls(&mut hello).expect("ClientHello");
    tcp.write_all(&hello).expect("send ClientHello");
    tcp
}

/// Completes the TLS handshake, then sends [`PARTIAL_HEAD`] and nothing more.
fn tls_partial_head(addr: &str, config: &Arc<rustls::ClientConfig>) -> TcpStream {
    let mut tcp = connect(addr);
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = tls_client(config);
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).expect("TLS handshake");
    }
    tls.writer().write_all(PARTIAL_HEAD).unwrap();
    while tls.wants_write() {
        tls.write_tls(&mut tcp).expect("send partial head");
    }
    tcp.set_read_timeout(None).unwrap();
    tcp
}

fn partial_head(addr: &str) -> TcpStream {
    let mut tcp = connect(addr);
    tcp.write_all(PARTIAL_HEAD).expect("send partial head");
    tcp
}

/// Runs `request` and asserts it succeeds within [`SERVED_WITHIN`].
fn served(what: &str, request: impl FnOnce() -> bool) {
    let started = Instant::now();
    assert!(request(), "{what} failed while half-open connections were held");
    let took = started.elapsed();
    eprintln!("{what}: served in {took:?}");
    assert!(took <= SERVED_WITHIN, "{what} took {took:?}");
}

#[test]
fn engine_listeners_close_half_open_clients_at_their_limits_and_keep_serving() {
    raise_nofile_limit(8192);
    let engine = Engine::start_with(&["--http-listen", "127.0.0.1:0"]);
    let origin = http_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "web", "-o", "json"], &[]);
    forward.wait_online(1, Duration::from_secs(20));
    let plain = format!("127.0.0.1:{}", engine.http_port().expect("--http-listen address"));
    let (tls, token) = (engine.addr(), engine.operator_token());
    assert_eq!(engine.api("/api/tunnels", Some(&token)).status, 200); // warm up
    let (_, before) = memory_kib(engine.pid());

    let (anonymous, trusting) = (tls_config(None), tls_config(Some(&engine.ca_path())));
    let mut kinds = vec![
        Kind::open("TLS port, TCP only", TLS_HANDSHAKE_TIMEOUT, || connect(&tls)),
        Kind::open("TLS port, ClientHello only", TLS_HANDSHAKE_TIMEOUT, || client_hello_then_silence(&tls, &anonymous)),
        Kind::open("REST, partial head", HTTP_HEAD_TIMEOUT, || tls_partial_head(&tls, &trusting)),
        Kind::open("--http-listen, partial head", HTTP_HEAD_TIMEOUT, || partial_head(&plain)),
        Kind::open("--http-listen, silent", HTTP_IDLE_TIMEOUT, || connect(&plain)),
    ];
    let (_, holding) = memory_kib(engine.pid());

    served("REST GET /api/tunnels", || engine.api("/api/tunnels", Some(&token)).status == 200);
    served("published HTTPS GET", || https_get(&engine, "web.t.localhost", "/") == (200, HELLO.as_bytes().to_vec()));
    served("published plain-HTTP GET", || {
        let url = format!("http://{plain}/");
        let reply = curl(&["-H", "Host: web.t.localhost", &url]);
        reply.status == 200 && reply.body == HELLO
    });

    wait_all_closed(&mut kinds);
    let (peak, after) = memory_kib(engine.pid());
    eprintln!(
        "engine RSS: {before} KiB before, {holding} KiB holding {} half-open connections, peak {peak} KiB, \
         {after} KiB after",
        kinds.len() * PER_KIND
    );
    assert!(peak.saturating_sub(before) <= MAX_RSS_GROWTH_KIB, "engine grew from {before} KiB to a peak of {peak} KiB");
    assert_eq!(engine.api("/api/tunnels", Some(&token)).status, 200, "the engine still serves");
}

/// A `webtty server --listen` with a WebDAV root holding `hello.txt`, and a GET of it that checks the answer.
fn webtty_with_fs() -> (LocalServer, common::TempDir, impl Fn() -> bool) {
    let root = common::TempDir::new("slowloris-fs");
    std::fs::write(root.path().join("hello.txt"), "hello over WebDAV\n").unwrap();
    let server = LocalServer::start(&["--fs-root", root.path().to_str().unwrap()]);
    let (url, auth) =
        (format!("http://{}/fs/hello.txt", server.addr), format!("Authorization: Bearer {}", server.token));
    let get = move || {
        let reply = curl(&["-H", &auth, &url]);
        reply.status == 200 && reply.body == "hello over WebDAV\n"
    };
    assert!(get(), "warm up");
    (server, root, get)
}

#[test]
fn webtty_listener_closes_half_open_clients_at_their_limits() {
    let (server, _root, get) = webtty_with_fs();
    // Below the server's connection cap, so that nothing but the timeouts closes them.
    let n = MAX_WEBTTY_CONNECTIONS / 2 - 2;
    let mut kinds = vec![
        Kind::open_n(n, "webtty --listen, partial head", HTTP_HEAD_TIMEOUT, || partial_head(&server.addr)),
        Kind::open_n(n, "webtty --listen, silent", HTTP_IDLE_TIMEOUT, || connect(&server.addr)),
    ];
    served("WebDAV GET", &get);
    wait_all_closed(&mut kinds);
    assert!(get(), "the server still serves");
}

#[test]
fn a_webtty_listener_full_of_half_open_clients_still_serves() {
    raise_nofile_limit(8192);
    let (server, _root, get) = webtty_with_fs();
    let (_, before) = memory_kib(server.child.id());
    // More than the server holds (MAX_WEBTTY_CONNECTIONS): it must make room for requests by closing these.
    let mut kinds = [
        Kind::open("webtty --listen, partial head", HTTP_HEAD_TIMEOUT, || partial_head(&server.addr)),
        Kind::open("webtty --listen, silent", HTTP_IDLE_TIMEOUT, || connect(&server.addr)),
    ];
    for i in 0..5 {
        served(&format!("WebDAV GET #{i} with {} half-open connections", 2 * PER_KIND), &get);
    }
    let (peak, now) = memory_kib(server.child.id());
    let open: usize = kinds.iter_mut().map(Kind::open_count).sum();
    eprintln!("webtty server RSS: {before} KiB before, {now} KiB now, peak {peak} KiB; {open} half-open left");
    assert!(open <= MAX_WEBTTY_CONNECTIONS, "{open} half-open connections held, more than the server's cap");
    assert!(peak.saturating_sub(before) <= MAX_RSS_GROWTH_KIB, "server grew from {before} KiB to a peak of {peak} KiB");
}
