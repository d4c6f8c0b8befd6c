//! Attacker tests: peers that never authenticate cannot starve the engine. Played from the real binary on
//! loopback, each peer from its own 127.0.x.y source address (`common::raw`):
//! - a REST request answered 401 or 403 ends its connection (no keep-alive for a refused credential), as does
//!   a refused control channel, stream or proxy leg;
//! - one source holding [`MAX_PREAUTH_CONNECTIONS_PER_SOURCE`] unauthenticated connections gets its next ones
//!   closed at once, while other sources and authenticated connections are untouched and clients are served;
//!   and only [`MAX_PREAUTH_HANDSHAKES_PER_SOURCE`] of a source's connections get a TLS handshake at a time;
//! - 2 000 `rstrm/1` peers announcing a 65 535-byte first frame and sending nothing are closed at once and cost
//!   the engine little memory; 2 000 announcing a first frame within the bound are held, and nothing is allocated
//!   for the bytes that never arrive;
//! - the engine raises its descriptor limit and caps its connections below it, so a flood is refused cleanly
//!   instead of failing `accept` with EMFILE.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::proc::{memory_kib, raise_nofile_limit};
use common::raw::{closed_within, connect_from, peer_ip, request, tls_closed_within, tls_over};
use common::tls::{details, recv, rstrm, send, within, IO_DEADLINE};
use common::{wait_until, Engine, DEVICE};
use rstream::limits::{
    ENGINE_RESERVED_FDS, MAX_FIRST_FRAME_LEN, MAX_PREAUTH_CONNECTIONS_PER_SOURCE, MAX_PREAUTH_HANDSHAKES_PER_SOURCE,
};
use rstream::proto::frame::{read_frame, FrameError};
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{
    open_control_channel_rsp, stream_rsp, ErrorCode, Message, OpenControlChannelReq, ProxyReq, StreamReq,
};

/// How soon a refused connection must be closed: at once, so far below every timeout (the TLS handshake's and
/// the first message's are 10 s) that only a deliberate close meets it.
const CLOSED_AT_ONCE: Duration = Duration::from_secs(3);
/// Peers of each kind in the memory test.
const SILENT_FRAME_PEERS: usize = 2000;
/// Resident memory the engine may gain while refusing that many peers that announce an oversize first frame
/// (8 MiB, what a 128 MiB router can spare; the old reader allocated the announced 64 KiB for each).
const MAX_KIB_FOR_REFUSED_PEERS: u64 = 8 * 1024;
/// What one silent peer within the first-frame bound may cost: its TLS session and a small task, never the
/// announced bytes.
const MAX_BYTES_PER_SILENT_PEER: u64 = 16 * 1024;

fn rest_request(token: Option<&str>, path: &str) -> Vec<u8> {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n").into_bytes()
}

#[test]
fn rest_answers_to_a_refused_credential_close_the_connection() {
    let engine = Engine::start();
    let device = engine.token(&DEVICE, None);
    let cases = [
        (None, "/api/tunnels", 401),
        (Some("not-a-jwt"), "/api/tunnels", 401),
        (Some(device.as_str()), "/api/tunnels", 403),
        (None, "/api/auth", 401),
        (None, "/", 200), // unauthenticated, so no keep-alive either
    ];
    for (token, path, expected) in cases {
        let tcp = TcpStream::connect(engine.addr()).unwrap();
        let mut tls = tls_over(tcp, &engine.ca_path(), "http/1.1").expect("TLS");
        let (status, text) = request(&mut tls, &rest_request(token, path), IO_DEADLINE);
        assert_eq!(status, expected, "GET {path} with {token:?}: {text}");
        assert!(
            tls_closed_within(&mut tls, CLOSED_AT_ONCE),
            "GET {path} with {token:?} answered {status}, but the connection stayed open"
        );
    }
    // An authenticated connection keeps alive.
    let tcp = TcpStream::connect(engine.addr()).unwrap();
    let mut tls = tls_over(tcp, &engine.ca_path(), "http/1.1").expect("TLS");
    let operator = engine.operator_token();
    for _ in 0..3 {
        let (status, text) = request(&mut tls, &rest_request(Some(&operator), "/api/tunnels"), IO_DEADLINE);
        assert_eq!(status, 200, "{text}");
    }
}

#[test]
fn refused_control_channels_streams_and_legs_are_closed() {
    let engine = Engine::start();
    smol::block_on(async {
        let mut conn = rstrm(&engine).await;
        let open = OpenControlChannelReq { client_details: details("forged"), liveness: None };
        send(&mut conn, Payload::OpenControlChannelReq(open)).await;
        let Payload::OpenControlChannelRsp(rsp) = recv(&mut conn).await else { panic!("expected the channel answer") };
        assert!(
            matches!(rsp.result, Some(open_control_channel_rsp::Result::Error(e)) if e.is(ErrorCode::Unauthorized))
        );
        assert_closed(&mut conn, "refused control channel").await;

        let mut conn = rstrm(&engine).await;
        let dial = StreamReq { client_details: details("forged"), tunnel_id_name: "any".into(), ..Default::default() };
        send(&mut conn, Payload::StreamReq(dial)).await;
        let Payload::StreamRsp(rsp) = recv(&mut conn).await else { panic!("expected the stream answer") };
        assert!(matches!(rsp.result, Some(stream_rsp::Result::Error(e)) if e.is(ErrorCode::Unauthorized)));
        assert_closed(&mut conn, "refused stream").await;

        let mut conn = rstrm(&engine).await;
        let leg = ProxyReq { client_details: details("guess"), stream_id: "nope".into(), zero_rtt: None };
        send(&mut conn, Payload::ProxyReq(leg)).await;
        assert_closed(&mut conn, "refused proxy leg").await;
    });
}

async fn assert_closed(conn: &mut common::tls::Conn, what: &str) {
    let next = within(CLOSED_AT_ONCE, what, read_frame::<_, Message>(conn)).await;
    assert!(matches!(next, Err(FrameError::Closed)), "{what}: expected the engine to close, got {next:?}");
}

/// Opens `n` silent TCP connections to `addr` from `source`.
fn silent_from(source: std::net::IpAddr, addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n).map(|i| connect_from(source, addr).unwrap_or_else(|e| panic!("connection {i} from {source}: {e}"))).collect()
}

/// How many of `conns` the server closed, waiting up to `wait` for the first and then only briefly for the rest.
fn count_closed(conns: &[TcpStream], wait: Duration) -> usize {
    let end = Instant::now() + wait;
    conns.iter().filter(|c| closed_within(c, end.saturating_duration_since(Instant::now()))).count()
}

#[test]
fn one_source_over_its_preauth_limit_is_refused_while_others_are_served() {
    raise_nofile_limit(4096);
    let engine = Engine::start();
    let addr = engine.addr();
    let cap = MAX_PREAUTH_CONNECTIONS_PER_SOURCE;
    const OVER: usize = 16;

    // The attacker's first `cap` connections are held (they may still authenticate); the rest are closed at once.
    let attacker = silent_from(peer_ip(0), &addr, cap + OVER);
    let (held, over) = attacker.split_at(cap);
    assert_eq!(count_closed(over, CLOSED_AT_ONCE), OVER, "connections over the per-source limit must be closed");
    assert_eq!(count_closed(held, Duration::ZERO), 0, "connections within the limit stay until their deadline");

    // Other sources are not affected, and clients are served meanwhile.
    let neighbour = silent_from(peer_ip(1), &addr, cap);
    assert_eq!(count_closed(&neighbour, Duration::from_millis(500)), 0, "another source has its own limit");
    assert_eq!(engine.api("/api/tunnels", Some(&engine.operator_token())).status, 200);
    assert!(tls_over(connect_from(peer_ip(2), &addr).unwrap(), &engine.ca_path(), "rstrm/1").is_ok());

    // A connection that authenticated no longer counts: `cap` authenticated REST connections and `cap` silent
    // ones from one source all stay; one more silent one is closed.
    let source = peer_ip(3);
    let operator = engine.operator_token();
    let authenticated: Vec<_> = (0..cap)
        .map(|_| {
            let mut tls = tls_over(connect_from(source, &addr).unwrap(), &engine.ca_path(), "http/1.1").unwrap();
            let (status, text) = request(&mut tls, &rest_request(Some(&operator), "/api/auth"), IO_DEADLINE);
            assert_eq!(status, 200, "{text}");
            tls
        })
        .collect();
    let silent = silent_from(source, &addr, cap);
    assert_eq!(count_closed(&silent, Duration::from_millis(500)), 0, "authenticated connections were counted");
    let one_more = silent_from(source, &addr, 1);
    assert_eq!(count_closed(&one_more, CLOSED_AT_ONCE), 1, "the limit still holds for unauthenticated ones");
    drop((authenticated, attacker, neighbour));
}

/// A connection from `source` that has sent a TLS ClientHello and nothing more.
fn client_hello_from(source: std::net::IpAddr, engine: &Engine) -> TcpStream {
    let config = std::sync::Arc::new(common::tls::client_config(Some(&engine.ca_path()), Some("http/1.1")));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut hello = Vec::new();
    rustls::ClientConnection::new(config, name).unwrap().write_tls(&mut hello).unwrap();
    let mut tcp = connect_from(source, &engine.addr()).unwrap();
    tcp.write_all(&hello).unwrap();
    tcp
}

/// Whether the server sent anything on `tcp` within `wait`.
fn answered_within(tcp: &TcpStream, wait: Duration) -> bool {
    tcp.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).unwrap();
    matches!(tcp.peek(&mut [0u8; 1]), Ok(n) if n > 0)
}

#[test]
fn only_so_many_handshakes_of_one_source_run_at_once_and_the_rest_wait_their_turn() {
    raise_nofile_limit(4096);
    let engine = Engine::start();
    let source = peer_ip(0);
    let stalled: Vec<TcpStream> =
        (0..MAX_PREAUTH_HANDSHAKES_PER_SOURCE).map(|_| client_hello_from(source, &engine)).collect();
    for (i, tcp) in stalled.iter().enumerate() {
        assert!(answered_within(tcp, IO_DEADLINE), "handshake {i} within the limit got no ServerHello");
    }
    let waiting = client_hello_from(source, &engine);
    assert!(!answered_within(&waiting, Duration::from_secs(1)), "one handshake too many was run");
    let elsewhere = client_hello_from(peer_ip(1), &engine);
    assert!(answered_within(&elsewhere, IO_DEADLINE), "another source has turns of its own");
    drop(stalled); // their turns come free: the waiting handshake runs
    assert!(answered_within(&waiting, IO_DEADLINE), "the waiting handshake never got its turn");
}

/// Opens [`SILENT_FRAME_PEERS`] `rstrm/1` peers (from as many sources as the per-source limit needs), each
/// sending only a frame header announcing `len` bytes.
fn silent_frame_peers(engine: &Engine, first_source: usize, len: u32) -> Vec<common::raw::Tls> {
    let per_source = MAX_PREAUTH_HANDSHAKES_PER_SOURCE - 1;
    (0..SILENT_FRAME_PEERS)
        .map(|i| {
            let source = peer_ip(first_source + i / per_source);
            let tcp = connect_from(source, &engine.addr()).unwrap_or_else(|e| panic!("peer {i}: {e}"));
            let mut tls = tls_over(tcp, &engine.ca_path(), "rstrm/1").unwrap_or_else(|e| panic!("peer {i}: {e}"));
            tls.write_all(&len.to_be_bytes()).unwrap();
            tls.flush().unwrap();
            tls
        })
        .collect()
}

#[test]
fn silent_peers_announcing_a_large_first_frame_cost_the_engine_little_memory() {
    raise_nofile_limit(2 * SILENT_FRAME_PEERS as u64 + 1024);
    let engine = Engine::start();
    let operator = engine.operator_token();
    assert_eq!(engine.api("/api/tunnels", Some(&operator)).status, 200); // warm up
    let (_, before) = memory_kib(engine.pid());

    // A first frame of 65 535 bytes is more than an unauthenticated peer may send: refused from its header.
    let mut oversize = silent_frame_peers(&engine, 0, u16::MAX as u32);
    let end = Instant::now() + CLOSED_AT_ONCE;
    let wait = || end.saturating_duration_since(Instant::now());
    let open = oversize.iter_mut().map(|t| tls_closed_within(t, wait())).filter(|closed| !closed).count();
    assert_eq!(open, 0, "peers announcing a 65 535-byte first frame must be closed at once");
    let (peak, settled) = memory_kib(engine.pid());
    eprintln!("engine RSS: {before} KiB before {SILENT_FRAME_PEERS} peers announcing 64 KiB, peak {peak} KiB");
    assert!(peak - before <= MAX_KIB_FOR_REFUSED_PEERS, "the engine peaked {} KiB above {before} KiB", peak - before);
    drop(oversize);

    // A first frame within the bound whose bytes never come: held until its deadline, with nothing allocated
    // for the announced bytes.
    let held = silent_frame_peers(&engine, SILENT_FRAME_PEERS, MAX_FIRST_FRAME_LEN as u32);
    assert_eq!(engine.api("/api/tunnels", Some(&operator)).status, 200, "served meanwhile");
    let (_, holding) = memory_kib(engine.pid());
    let per_peer = holding.saturating_sub(settled) * 1024 / SILENT_FRAME_PEERS as u64;
    eprintln!(
        "engine RSS: {settled} KiB, then {holding} KiB holding {SILENT_FRAME_PEERS} silent peers ({per_peer} B each)"
    );
    assert!(per_peer <= MAX_BYTES_PER_SILENT_PEER, "each silent peer costs the engine {per_peer} bytes");
    drop(held);
}

/// The soft `Max open files` of process `pid` (from `/proc/<pid>/limits`).
fn soft_nofile(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files");
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).expect("a number")
}

#[test]
fn the_engine_raises_its_descriptor_limit_and_caps_connections_below_it() {
    raise_nofile_limit(4096);
    // Soft limit below the hard one: raised.
    let engine = Engine::start_with_fd_limit(256, 2048, &[]);
    assert_eq!(soft_nofile(engine.pid()), 2048, "soft RLIMIT_NOFILE not raised; log:\n{}", engine.logs());
    let cap = 2048 - ENGINE_RESERVED_FDS;
    wait_until(Duration::from_secs(5), "the engine to log its connection cap", || {
        engine.logs().contains(&format!("connection cap {cap}")).then_some(())
    });
    drop(engine);

    // Hard limit low: the cap follows it, and a flood past it is refused at accept, never an EMFILE.
    let engine = Engine::start_with_fd_limit(200, 200, &[]);
    let cap = (200 - ENGINE_RESERVED_FDS) as usize;
    let addr = engine.addr();
    let per_source = MAX_PREAUTH_HANDSHAKES_PER_SOURCE / 2;
    const OVER: usize = 20;
    let flood: Vec<TcpStream> = (0..cap + OVER)
        .map(|i| connect_from(peer_ip(i / per_source), &addr).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    let closed = count_closed(&flood[cap..], CLOSED_AT_ONCE);
    assert_eq!(closed, OVER, "connections over the cap of {cap} must be closed at once; log:\n{}", engine.logs());
    assert_eq!(count_closed(&flood[..cap], Duration::ZERO), 0);
    drop(flood);
    wait_until(Duration::from_secs(10), "the engine to serve again after the flood", || {
        (engine.api("/api/tunnels", Some(&engine.operator_token())).status == 200).then_some(())
    });
    let logs = engine.logs();
    assert!(!logs.contains("accept failed"), "the engine ran out of descriptors:\n{logs}");
}
