//! `rstream forward` publishing a local HTTP service through a real engine: reachable over HTTPS at
//! `<name>.t.localhost:<port>`, bytes intact, status output as upstream prints it. The engine publishes HTTP
//! only: a published `--tcp`/`--tls` tunnel is refused with the reason, and works once private.

mod common;

use std::time::Duration;

use common::tunnel::{big_body, dial, echo_origin, http_origin, https_get, Forward, BIG_LEN, HELLO};
use common::Engine;

const ONLINE: Duration = Duration::from_secs(20);

#[test]
fn published_forward_serves_the_origin_over_https_with_a_10_mib_body_intact() {
    let engine = Engine::start();
    let origin = http_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "web", "-o", "json"], &[]);
    let online = forward.wait_online(1, ONLINE);
    let host = "web.t.localhost";
    assert_eq!(online["forwarding"], format!("https://{host}:{}", engine.port()), "{online}");
    assert_eq!(online["forwarded"], format!("http://{} (http/1.1)", origin.target()));
    assert!(online["tunnel_id"].as_str().is_some_and(|id| !id.is_empty()), "{online}");

    let (status, body) = https_get(&engine, host, "/");
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (200, HELLO));
    let (status, body) = https_get(&engine, host, "/big");
    assert_eq!((status, body.len()), (200, BIG_LEN));
    assert!(body == big_body(), "the 10 MiB body arrived altered");

    // Every stream is reported, and its end too.
    let lines = forward.lines();
    assert!(lines.iter().any(|l| l.starts_with(r#"{"active":true,"date":""#)), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with(r#"{"event":"connection_closed","idx":"#)), "{lines:?}");
}

#[test]
fn text_output_prints_the_aligned_status_block() {
    let engine = Engine::start();
    let origin = http_origin();
    let forward = Forward::start(&engine, &origin.target(), &["--name", "site"], &[]);
    let forwarding = format!("  forwarding : https://site.t.localhost:{}", engine.port());
    common::wait_until(ONLINE, "text status block online", || {
        let lines = forward.lines();
        lines.iter().any(|l| l == "  status     : online").then_some(()).filter(|_| lines.contains(&forwarding))
    });
    let lines = forward.lines();
    assert_eq!(lines[0], "tunnel status");
    assert!(lines.iter().any(|l| l.starts_with("  tunnel ID  : ") && l.len() > 15), "{lines:?}");
    assert!(lines.contains(&format!("  forwarded  : http://{} (http/1.1)", origin.target())), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("  version    : ")), "{lines:?}");
}

#[test]
fn published_tcp_and_tls_forwards_are_refused_with_the_reason_and_exit_non_zero() {
    let engine = Engine::start();
    let origin = echo_origin();
    // With --no-retry forward stops at the first failure; without it, a FEATURE_NOT_AVAILABLE refusal is still final (the agent
    // does not retry what the engine will never accept).
    let cases: [(&str, &str, &[&str]); 2] =
        [("--tcp", "raw", &["--no-retry"]), ("--tls", "passthrough", &["--retry-interval", "100"])];
    for (flag, name, retry) in cases {
        let args = [&[flag, "--name", name][..], retry].concat();
        let mut forward = Forward::start(&engine, &origin.target(), &args, &[]);
        let code = forward.wait_exit(ONLINE);
        let stderr = forward.stderr();
        assert_ne!(code, 0, "{flag}: a refused tunnel must not exit 0; stderr:\n{stderr}");
        let protocol = flag.trim_start_matches("--");
        let reason =
            format!("published tunnels on this engine are HTTP only; protocol \"{protocol}\" needs --no-publish");
        assert!(stderr.contains(&format!("error: the engine refused tunnel \"{name}\"")), "{flag}: {stderr}");
        assert!(stderr.contains(&reason), "{flag}: {stderr}");
        let lines = forward.lines();
        assert!(
            lines.contains(&format!(
                "  status     : tunnel creation failed (engine error 5000 FEATURE_NOT_AVAILABLE: {reason})"
            )),
            "{lines:?}"
        );
        assert!(
            lines.iter().filter(|l| l.starts_with("  forwarding : ")).all(|l| l == "  forwarding : -"),
            "{lines:?}"
        );
    }
}

#[test]
fn private_tcp_forward_comes_online_and_is_dialable() {
    let engine = Engine::start();
    let origin = echo_origin();
    let forward =
        Forward::start(&engine, &origin.target(), &["--tcp", "--no-publish", "--name", "raw", "-o", "json"], &[]);
    let online = forward.wait_online(1, ONLINE);
    assert_eq!(online["forwarding"], "rstrm://raw (unpublished)", "{online}");
    let (code, out, err) = dial(&engine, "rstrm://raw", b"ping over a private tcp tunnel", &[]);
    assert_eq!(code, 0, "dial failed: {err}");
    assert_eq!(String::from_utf8_lossy(&out), "ping over a private tcp tunnel");
}
