//! `rstream forward` publishing a local HTTP service through a real engine: reachable over HTTPS at
//! `<name>.t.localhost:<port>`, bytes intact, status output as upstream prints it.

mod common;

use std::time::Duration;

use common::tunnel::{big_body, http_origin, https_get, Forward, BIG_LEN, HELLO};
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
