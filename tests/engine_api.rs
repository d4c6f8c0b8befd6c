//! The engine's REST API through `curl --cacert` against the real binary: bearer tokens and least privilege,
//! inventory JSON with engine-side filters (labels included), clients, metrics, the context written by
//! `engine serve`, and tunnels leaving the inventory when their agent goes silent.

mod common;

use std::time::{Duration, Instant};

use common::fake_agent::{tunnel, FakeAgent};
use common::{wait_until, Engine, DEVICE, OPERATOR};
use rstream::http::percent::encode_component;

fn params(json: &str) -> String {
    format!("/api/tunnels?params={}", encode_component(json))
}

#[test]
fn api_requires_a_bearer_token_with_the_read_permission() {
    let engine = Engine::start();
    let none = engine.api("/api/tunnels", None);
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"], "token required");
    assert!(none.header("www-authenticate").is_some());
    assert!(none.header("date").is_some(), "every response carries Date");

    let bad = engine.api("/api/tunnels", Some("eyJhbGciOiJub25lIn0.e30."));
    assert_eq!(bad.status, 401);
    assert!(bad.json()["error"].as_str().unwrap().contains("\"none\" refused"), "{}", bad.body);

    let device = engine.token(&DEVICE, None);
    let forbidden = engine.api("/api/tunnels", Some(&device));
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.json()["error"].as_str().unwrap().contains("tunnels.resources.read-only"));
    assert_eq!(engine.api("/api/auth", Some(&device)).status, 200, "a device token is still a valid token");

    let operator = engine.token(&OPERATOR, None);
    let auth = engine.api("/api/auth", Some(&operator));
    assert_eq!(auth.status, 200);
    assert_eq!(auth.json()["permissions"][1], "tunnels.streams.create-delete");
    let empty = engine.api("/api/tunnels", Some(&operator));
    assert_eq!((empty.status, empty.json()), (200, serde_json::json!([])));
    assert_eq!(engine.api("/api/nothing", Some(&operator)).status, 404);
}

#[test]
fn tunnels_are_listed_as_inventory_and_filtered_by_the_engine() {
    let engine = Engine::start();
    let token = engine.token(&OPERATOR, None);
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        let mut pi = tunnel("pi", false);
        pi.labels.insert("application-protocol".into(), "rstream.webtty".into());
        pi.labels.insert("rstream.webtty.label.role".into(), "codex".into());
        agent.open_tunnel(pi).await.unwrap();
        let mut web = tunnel("web", true);
        web.labels.insert("application-protocol".into(), "http".into());
        agent.open_tunnel(web).await.unwrap();

        let all = engine.api("/api/tunnels", Some(&token)).json();
        assert_eq!(all.as_array().unwrap().len(), 2);
        let pi = all.as_array().unwrap().iter().find(|t| t["name"] == "pi").unwrap();
        assert_eq!(pi["status"], "online");
        assert_eq!(pi["client_id"], agent.client_id.as_str());
        assert_eq!(pi["publish"], false);
        assert_eq!(pi["type"], "bytestream");
        assert!(pi.get("host").is_none(), "private tunnels have no public host");
        assert!(pi["creation_date"].as_str().unwrap().ends_with('Z'));

        let role = engine.api(&params(r#"{"filters":{"labels":{"rstream.webtty.label.role":"codex"}}}"#), Some(&token));
        assert_eq!(role.json().as_array().unwrap().len(), 1);
        assert_eq!(role.json()[0]["name"], "pi");
        let has_app = engine.api(&params(r#"{"filters":{"labels":{"application-protocol":null}}}"#), Some(&token));
        assert_eq!(has_app.json().as_array().unwrap().len(), 2, "null = label key exists");
        let published = engine.api(&params(r#"{"filters":{"publish":true,"status":"online"}}"#), Some(&token));
        let published = published.json();
        assert_eq!(published[0]["name"], "web");
        assert_eq!(published[0]["hostname"], "web.t.localhost");
        assert_eq!(published[0]["port"], engine.port());
        let limited = engine.api(&params(r#"{"limit":1}"#), Some(&token));
        assert_eq!(limited.json().as_array().unwrap().len(), 1);
        assert_eq!(engine.api(&params("{oops"), Some(&token)).status, 400);

        let one = engine.api("/api/tunnels/web", Some(&token));
        assert_eq!((one.status, one.json()["name"].as_str()), (200, Some("web")));
        let id = one.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(engine.api(&format!("/api/tunnels/{id}"), Some(&token)).json()["name"], "web");
        assert_eq!(engine.api("/api/tunnels/missing", Some(&token)).status, 404);

        let clients = engine.api("/api/clients", Some(&token)).json();
        assert_eq!(clients[0]["id"], agent.client_id.as_str());
        assert_eq!(clients[0]["status"], "online");
        assert_eq!(clients[0]["agent"], "rstream-rs");
        let none = engine
            .api(&format!("/api/clients?params={}", encode_component(r#"{"filters":{"os":"plan9"}}"#)), Some(&token));
        assert_eq!(none.json(), serde_json::json!([]));

        let metrics = engine.api("/metrics", Some(&token));
        assert_eq!(metrics.status, 200);
        assert!(metrics.body.contains("rstream_engine_tunnels 2\n"), "{}", metrics.body);
        assert!(metrics.body.contains("rstream_engine_clients 1\n"));
    });
}

#[test]
fn serve_writes_a_default_context_that_reaches_the_api() {
    let engine = Engine::start();
    let cfg = rstream::config::ConfigFile::load(&engine.config_path()).expect("config written");
    assert_eq!(cfg.default_context_name(), Some("local"));
    let ctx = cfg.context("local").unwrap();
    assert_eq!(ctx.engine.as_deref(), Some(format!("localhost:{}", engine.port()).as_str()));
    let ca = ctx.tls().and_then(|t| t.ca_file.clone()).expect("caFile");
    assert_eq!(std::fs::read(&ca).unwrap(), std::fs::read(engine.ca_path()).unwrap());
    let token = ctx.inline_token().unwrap().expect("inline token").expose().to_owned();
    let auth = engine.api("/api/auth", Some(&token));
    assert_eq!(auth.status, 200);
    let permissions = auth.json()["permissions"].as_array().unwrap().clone();
    assert_eq!(permissions.len(), 4, "the operator context has every permission: {permissions:?}");
    assert!(permissions.iter().any(|p| p == common::tokens::ADMIN), "the engine's owner may evict: {permissions:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(engine.config_path()).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn tunnels_of_a_silent_agent_leave_the_inventory_within_three_heartbeats() {
    let engine = Engine::start();
    let token = engine.token(&OPERATOR, None);
    let listed = |name: &str| {
        let answer = engine.api(&params(&format!(r#"{{"filters":{{"name":"{name}"}}}}"#)), Some(&token)).json();
        !answer.as_array().unwrap().is_empty()
    };
    smol::block_on(async {
        let silent = FakeAgent::open_with(&engine, &engine.token(&DEVICE, None), false).await.unwrap();
        let live = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        silent.open_tunnel(tunnel("mute", false)).await.unwrap();
        live.open_tunnel(tunnel("chatty", false)).await.unwrap();
        let started = Instant::now();
        assert!(listed("mute"));
        wait_until(Duration::from_secs(20), "silent agent's tunnel to leave the inventory", || {
            (!listed("mute")).then_some(())
        });
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_secs(13), "dropped before 3 heartbeats: {elapsed:?}");
        assert!(listed("chatty"), "an agent sending heartbeats stays");
        wait_until(Duration::from_secs(5), "engine to close the silent channel", || silent.is_closed().then_some(()));
    });
}

#[test]
fn evicting_a_tunnel_through_the_api_tells_its_agent() {
    let engine = Engine::start();
    smol::block_on(async {
        let agent = FakeAgent::open(&engine, &engine.token(&DEVICE, None)).await.unwrap();
        let t = agent.open_tunnel(tunnel("stale", false)).await.unwrap();
        let delete = |token: &str| engine.curl_host("localhost", "/api/tunnels/stale", Some(token), &["-X", "DELETE"]);
        assert_eq!(delete(&engine.token(&DEVICE, None)).status, 403, "a device cannot evict tunnels");
        assert_eq!(delete(&engine.token(&OPERATOR, None)).status, 403, "nor can a list-and-dial operator");
        assert_eq!(delete(&engine.operator_token()).status, 403, "nor another subject's register token");
        let evicted = delete(&engine.context_token());
        assert_eq!(evicted.status, 200, "{evicted:?}");
        assert_eq!(evicted.json()["name"], "stale");
        match agent.next().await {
            rstream::proto::rstream::message::Payload::CloseTunnelRsp(rsp) => {
                assert_eq!(Some(rsp.tunnel_id.as_str()), rstream::proto::rstream::opt_str(&t.id))
            }
            other => panic!("expected an engine-initiated CloseTunnelRsp, got {other:?}"),
        }
        assert_eq!(engine.api("/api/tunnels/stale", Some(&engine.operator_token())).status, 404);
        agent.open_tunnel(tunnel("stale", false)).await.expect("the name is free again");
    });
}
