//! Tokens on the tunnel plane: a bad or expired token and a token without the right permission are refused
//! with clear messages and exit codes, by `forward` (register) and by `dial` (StreamReq).

mod common;

use std::time::Duration;

use common::tunnel::{dial, echo_origin, Forward};
use common::{Engine, DEVICE, OPERATOR};

const EXIT: Duration = Duration::from_secs(20);

#[test]
fn forward_with_a_bad_token_exits_with_401() {
    let engine = Engine::start();
    let origin = echo_origin();
    let env = [("RSTREAM_AUTHENTICATION_TOKEN", "not-a-jwt")];
    let mut forward = Forward::start(&engine, &origin.target(), &["--name", "web"], &env);
    assert_eq!(forward.wait_exit(EXIT), 1);
    let err = forward.stderr();
    assert!(err.contains("error: the engine refused the control channel: engine error 1000 UNAUTHORIZED"), "{err}");
}

#[test]
fn forward_with_an_expired_token_exits_with_401() {
    let engine = Engine::start();
    let origin = echo_origin();
    let token = engine.token(&DEVICE, Some("1s"));
    common::wait_until(Duration::from_secs(10), "the 1 s token to expire", || {
        let (_, _, err) = dial(&engine, "rstrm://anything", b"", &[("RSTREAM_AUTHENTICATION_TOKEN", &token)]);
        // A device token may not dial (UNAUTHORIZED too): wait for the expiry itself.
        (err.contains("engine error 1000 UNAUTHORIZED") && err.contains("expired")).then_some(())
    });
    let mut forward =
        Forward::start(&engine, &origin.target(), &["--name", "web"], &[("RSTREAM_AUTHENTICATION_TOKEN", &token)]);
    assert_eq!(forward.wait_exit(EXIT), 1);
    let err = forward.stderr();
    assert!(err.contains("engine error 1000 UNAUTHORIZED") && err.contains("expired"), "{err}");
}

#[test]
fn an_operator_token_may_not_register_tunnels() {
    let engine = Engine::start();
    let origin = echo_origin();
    let token = engine.token(&OPERATOR, None);
    let mut forward =
        Forward::start(&engine, &origin.target(), &["--name", "web"], &[("RSTREAM_AUTHENTICATION_TOKEN", &token)]);
    assert_eq!(forward.wait_exit(EXIT), 1);
    assert!(forward.stderr().contains("engine error 1000 UNAUTHORIZED"), "{}", forward.stderr());
}

#[test]
fn a_device_token_may_register_but_not_dial() {
    let engine = Engine::start();
    let origin = echo_origin();
    let device = engine.token(&DEVICE, None);
    let env = [("RSTREAM_AUTHENTICATION_TOKEN", device.as_str())];
    let forward = Forward::start(&engine, &origin.target(), &["--name", "echo", "--no-publish", "-o", "json"], &env);
    forward.wait_online(1, EXIT);
    let (code, out, err) = dial(&engine, "rstrm://echo", b"hello", &env);
    assert_eq!(code, 1, "stdout: {out:?}");
    assert!(err.starts_with("error: ") && err.contains("engine error 1000 UNAUTHORIZED"), "{err}");
    // The context's operator token may.
    let (code, out, err) = dial(&engine, "rstrm://echo", b"hello", &[]);
    assert_eq!((code, out.as_slice()), (0, &b"hello"[..]), "{err}");
}
