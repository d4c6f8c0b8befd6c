//! `rstream forward --no-publish`: not routed by host name, reachable only with `rstream dial` (StreamReq),
//! including half-close (stdin EOF reaches the origin, which can still answer).

mod common;

use std::time::Duration;

use common::tunnel::{count_after_eof_origin, dial, http_origin, https_get, Forward, HELLO};
use common::Engine;

const ONLINE: Duration = Duration::from_secs(20);

#[test]
fn private_forward_is_404_by_host_and_reachable_with_dial() {
    let engine = Engine::start();
    let origin = http_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "db", "--no-publish", "-o", "json"], &[]);
    let online = forward.wait_online(1, ONLINE);
    assert_eq!(online["forwarding"], "rstrm://db (unpublished)");
    assert_eq!(online["forwarded"], origin.target());

    let (status, _) = https_get(&engine, "db.t.localhost", "/");
    assert_eq!(status, 404, "a private tunnel must not be routed by host name");

    let (code, out, err) = dial(&engine, "rstrm://db", b"GET / HTTP/1.0\r\n\r\n", &[]);
    assert_eq!(code, 0, "dial failed: {err}");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with(HELLO), "{out}");
}

#[test]
fn dial_half_closes_on_stdin_eof_and_still_reads_the_answer() {
    let engine = Engine::start();
    let origin = count_after_eof_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "counter", "--no-publish", "-o", "json"], &[]);
    forward.wait_online(1, ONLINE);
    let input = vec![b'x'; 100_000];
    let (code, out, err) = dial(&engine, "rstrm://counter", &input, &[]);
    assert_eq!(code, 0, "dial failed: {err}");
    assert_eq!(String::from_utf8_lossy(&out), "got 100000 bytes");
}

#[test]
fn dialing_an_unknown_tunnel_is_a_clear_engine_error() {
    let engine = Engine::start();
    let (code, _, err) = dial(&engine, "rstrm://nobody", b"", &[]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: ") && err.contains("engine error 3000 TUNNEL_NOT_FOUND"), "{err}");
}
