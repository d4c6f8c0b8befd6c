//! Attacker tests for `rstream webtty server --listen`, from the real binary on loopback:
//! - a flood of tokenless clients (as many as the server holds connections, each sending a request without a
//!   token and reconnecting when closed) cannot lock a legitimate client out: every tokenless request gets 401
//!   and its connection is closed, and `webtty exec` with the token still runs;
//! - an unauthenticated listener answers only requests naming it by a loopback name or its own address
//!   (`Host`), so a browser page cannot reach it through DNS rebinding;
//! - `--allow-unauthenticated` on a non-loopback address is refused unless `--i-understand-this-is-open`.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::closed_within;
use common::{run, ChildGuard};
use rstream::limits::MAX_WEBTTY_CONNECTIONS;
#[allow(clippy::duplicate_mod)]
mod webtty_support;
use webtty_support::LocalServer;

/// How soon a refused connection must be closed: far below the server's idle timeout (a minute).
const CLOSED_AT_ONCE: Duration = Duration::from_secs(3);
/// How long the legitimate `webtty exec` may take under the flood.
const EXEC_DEADLINE: Duration = Duration::from_secs(20);

/// A WebSocket upgrade request naming `host`, with an optional bearer token.
fn upgrade(host: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{auth}\r\n"
    )
    .into_bytes()
}

/// Sends `req` on a new connection to `addr` and returns the connection and the status of the answer.
fn send(addr: &str, req: &[u8]) -> (TcpStream, u16) {
    let mut tcp = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    tcp.write_all(req).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 12];
    let status = match tcp.read_exact(&mut head) {
        Ok(()) => std::str::from_utf8(&head[9..12]).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        Err(_) => 0,
    };
    (tcp, status)
}

/// Runs `webtty exec -- echo hello` against `server` within [`EXEC_DEADLINE`]: its stdout, or why it failed.
fn exec_hello(server: &LocalServer) -> Result<String, String> {
    let mut cmd = server.exec_cmd(&["-o", "text", "--", "echo", "hello"]);
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut guard = ChildGuard(child);
    match guard.wait_exit(EXEC_DEADLINE) {
        None => Err(format!("webtty exec did not finish within {EXEC_DEADLINE:?}")),
        Some(status) => {
            let mut out = String::new();
            guard.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            let mut err = String::new();
            guard.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            if status.success() {
                Ok(out)
            } else {
                Err(format!("webtty exec failed ({status}): {err}"))
            }
        }
    }
}

#[test]
fn a_tokenless_flood_gets_401_and_closed_while_a_legitimate_client_still_execs() {
    let server = LocalServer::start(&[]);
    let addr = server.addr.clone();
    let tokenless = upgrade(&addr, None);

    // As many tokenless clients as the server holds: each is answered 401 and closed.
    let flood: Vec<(TcpStream, u16)> = (0..MAX_WEBTTY_CONNECTIONS).map(|_| send(&addr, &tokenless)).collect();
    for (i, (tcp, status)) in flood.iter().enumerate() {
        assert_eq!(*status, 401, "tokenless request {i}");
        assert!(closed_within(tcp, CLOSED_AT_ONCE), "tokenless connection {i} was kept open after its 401");
    }

    // The same clients keep coming back; the legitimate client is served all the same.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let (addr, stop, sent, tokenless) = (addr.clone(), Arc::clone(&stop), Arc::clone(&sent), tokenless.clone());
            std::thread::spawn(move || {
                let mut held: Vec<TcpStream> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    held.retain(|tcp| !closed_within(tcp, Duration::ZERO));
                    while held.len() < MAX_WEBTTY_CONNECTIONS / 4 {
                        let Ok(mut tcp) = TcpStream::connect(&addr) else { break };
                        if tcp.write_all(&tokenless).is_ok() {
                            sent.fetch_add(1, Ordering::Relaxed);
                            held.push(tcp);
                        }
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    let result = exec_hello(&server);
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    eprintln!("exec under a flood of {} tokenless requests: {took:?}", sent.load(Ordering::Relaxed));
    assert_eq!(result.expect("the legitimate client was locked out"), "hello\n");
}

#[test]
fn an_unauthenticated_listener_answers_only_loopback_host_names() {
    let server = LocalServer::start_unauthenticated(&["--listen", "127.0.0.1:0"]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    for host in ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil.example", ""] {
        let host = host.replace("PORT", &port);
        let (tcp, status) = send(&server.addr, &upgrade(&host, None));
        assert!(status == 421 || status == 403, "Host {host:?} answered {status}");
        assert!(closed_within(&tcp, CLOSED_AT_ONCE), "Host {host:?}: the refused connection stayed open");
    }
    // Plain HTTP at the terminal endpoint: 426 proves the request passed the gate.
    for host in [format!("localhost:{port}"), "LOCALHOST".into(), format!("127.0.0.1:{port}"), "127.3.4.5".into()] {
        let plain = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let (_, status) = send(&server.addr, plain.as_bytes());
        assert_eq!(status, 426, "Host {host:?}");
    }
    let ipv6 = format!("GET / HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n");
    assert_eq!(send(&server.addr, ipv6.as_bytes()).1, 426, "Host [::1]");
    // The operator's own client names the listener as it was given.
    assert_eq!(exec_hello(&server).expect("webtty exec against an unauthenticated listener"), "hello\n");
}

#[test]
fn allow_unauthenticated_on_a_non_loopback_address_needs_the_explicit_flag() {
    // 192.0.2.1 (TEST-NET-1) is never bound here: the command must refuse before trying.
    let (code, _, err) = run(&["webtty", "server", "--listen", "192.0.2.1:0", "--allow-unauthenticated"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--i-understand-this-is-open"), "the refusal must name the flag: {err}");
    assert!(err.contains("192.0.2.1"), "the refusal must name the address: {err}");
    let (code, _, err) = run(&["webtty", "server", "--listen", "127.0.0.1:0", "--i-understand-this-is-open"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--allow-unauthenticated"), "the flag alone makes no sense: {err}");
}
