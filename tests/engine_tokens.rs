//! The engine's own credentials over time: the local operator token survives restarts, every minted token has a
//! `jti` that `rstream engine token revoke` can cut off (REST API, control channels — open ones too — and
//! streams), and a device token minted without a lifetime draws a warning.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::fake_agent::{tunnel, FakeAgent};
use common::tokens::TOKEN_ENV;
use common::tunnel::{dial, wait_for_context};
use common::{wait_until, Engine, ALL};

const DEADLINE: Duration = Duration::from_secs(20);

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn serve_mints_the_operator_token_once_and_reuses_it_after_a_restart() {
    let mut engine = Engine::start();
    wait_for_context(&engine);
    let first = engine.context_token();
    // A token minted again would differ even without a jti once its `iat` second has passed.
    let minted_at = unix_now();
    wait_until(Duration::from_secs(5), "the clock to pass one second", || (unix_now() > minted_at).then_some(()));
    engine.restart();
    assert_eq!(engine.context_token(), first, "the restarted engine wrote a new operator token");
    assert_eq!(engine.api("/api/tunnels", Some(&first)).status, 200);
    assert_eq!(mode(&engine.state_dir().join("operator-token")), 0o600);
}

#[test]
fn a_revoked_token_is_refused_by_the_api_the_control_channel_and_streams() {
    let engine = Engine::start();
    let minted = engine.token_json(&ALL);
    assert!(minted.json["exp"].as_u64().is_some_and(|exp| exp > unix_now()), "{}", minted.json);
    assert_eq!(engine.api("/api/tunnels", Some(&minted.token)).status, 200);
    smol::block_on(async {
        let live = FakeAgent::open(&engine, &minted.token).await.expect("valid before the revocation");
        live.open_tunnel(tunnel("doomed", false)).await.unwrap();

        let (code, _, err) = engine.token_cmd(&["revoke", &minted.jti]);
        assert_eq!(code, 0, "revoke failed: {err}");
        let list = engine.state_dir().join("revoked-tokens");
        assert!(std::fs::read_to_string(&list).unwrap().contains(&minted.jti));
        assert_eq!(mode(&list), 0o600);

        let api = engine.api("/api/tunnels", Some(&minted.token));
        assert_eq!(api.status, 401, "{api:?}");
        assert!(api.json()["error"].as_str().unwrap().contains("revoked"), "{api:?}");
        let refused = FakeAgent::open(&engine, &minted.token).await.err().expect("control channel refused");
        assert_eq!(refused.code(), rstream::proto::rstream::ErrorCode::Unauthorized, "{refused}");
        let (code, _, err) = dial(&engine, "rstrm://doomed", b"", &[(TOKEN_ENV, &minted.token)]);
        assert!(code != 0 && err.contains("UNAUTHORIZED"), "a stream with the revoked token: {err}");
        wait_until(DEADLINE, "the engine to close the revoked token's open control channel", || {
            live.is_closed().then_some(())
        });
    });
    assert_eq!(engine.api("/api/tunnels", Some(&engine.context_token())).status, 200, "other tokens still work");

    let before = std::fs::read(engine.state_dir().join("revoked-tokens")).unwrap();
    let (code, _, err) = engine.token_cmd(&["revoke", "not/a-jti"]);
    assert_ne!(code, 0);
    assert!(err.contains("not/a-jti"), "{err}");
    assert_eq!(engine.token_cmd(&["revoke", &minted.jti]).0, 0, "revoking twice is harmless");
    assert_eq!(std::fs::read(engine.state_dir().join("revoked-tokens")).unwrap(), before, "nothing changed");
}

#[test]
fn device_tokens_without_a_lifetime_draw_a_warning_and_every_token_shows_its_jti() {
    let engine = Engine::start();
    let (code, out, err) = engine.token_cmd(&["--permissions", "tunnels.tunnels.create-delete"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "stdout is the token alone: {out:?}");
    assert!(err.contains("warn") && err.contains("--ttl"), "{err}");
    assert!(err.contains("jti"), "{err}");

    let (code, _, err) = engine.token_cmd(&["--permissions", "tunnels.tunnels.create-delete", "--ttl", "30d"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warn"), "{err}");
    let (_, _, err) = engine.token_cmd(&["--permissions", "tunnels.resources.read-only"]);
    assert!(!err.contains("warn"), "an operator token cannot register tunnels: {err}");
}
