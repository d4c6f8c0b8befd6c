//! A tunnel name belongs to the token subject (`sub`) that registered it. Played by attackers against the real
//! binary: a second device with its own token trying to take an owned name while the owner is online and while
//! it reconnects; a raw rstrm/1 client asking for the name during the grace period; `DELETE /api/tunnels/…` by
//! someone else's token; a tunnel named like another tunnel's id; two tokens minted without `--sub`.

mod common;

use std::time::{Duration, Instant};

use common::fake_agent::{tunnel, FakeAgent};
use common::tokens::{ADMIN, TOKEN_ENV};
use common::tunnel::{banner_origin, dial, Forward};
use common::{wait_until, wait_until_or, Engine, DEVICE};
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{opt_str, ErrorCode, TunnelProperties};

const READ: &str = "tunnels.resources.read-only";
const REGISTER: &str = "tunnels.tunnels.create-delete";
const ONLINE: Duration = Duration::from_secs(20);

/// What `rstream dial rstrm://<name>` (the operator's context token) receives.
fn reached(engine: &Engine, name: &str) -> String {
    let (code, out, err) = dial(engine, &format!("rstrm://{name}"), b"", &[]);
    assert_eq!(code, 0, "dial rstrm://{name} failed: {err}");
    String::from_utf8_lossy(&out).into_owned()
}

fn listed(engine: &Engine, name: &str) -> bool {
    engine.tunnel_names().iter().any(|n| n == name)
}

fn id(p: &TunnelProperties) -> String {
    opt_str(&p.id).expect("tunnel id").to_owned()
}

/// `forward` flags; `--retry` keeps it racing through name refusals (without it, a name in use ends `forward`).
fn forward_args(name: &str) -> Vec<&str> {
    vec!["--name", name, "--no-publish", "-o", "json", "--retry-interval", "200", "--retry"]
}

#[test]
fn a_second_device_cannot_take_a_name_while_its_owner_is_online_or_reconnecting() {
    let engine = Engine::start();
    let owner = engine.token_for("device-a", &DEVICE);
    let intruder = engine.token_for("device-b", &DEVICE);
    let (origin_a, origin_b) = (banner_origin("device-a").target(), banner_origin("device-b").target());
    let mut a = Forward::start(&engine, &origin_a, &forward_args("shell"), &[(TOKEN_ENV, &owner)]);
    a.wait_online(1, ONLINE);

    let b = Forward::start(&engine, &origin_b, &forward_args("shell"), &[(TOKEN_ENV, &intruder)]);
    let refusals =
        || b.statuses().iter().filter(|s| s["status"].as_str().is_some_and(|t| t.contains("INVALID_REQUEST"))).count();
    let refused_again = |before: usize| {
        wait_until_or(
            ONLINE,
            || format!("the second device to be refused (INVALID_REQUEST) again: {:#?}", b.statuses()),
            || (refusals() > before || b.statuses().iter().any(|s| s["status"] == "online")).then_some(()),
        )
    };
    refused_again(0);
    assert_eq!(reached(&engine, "shell"), "device-a");

    // The owner drops off (a reboot, a cut link): the name stays reserved for its subject while the second device
    // keeps retrying every 200 ms, and the owner gets it back when it returns.
    a.kill();
    let owners_tunnel_gone = || {
        let tunnels = engine.tunnels();
        let owned = tunnels.iter().any(|t| t["name"] == "shell" && t["user_id"] == "device-a");
        (!owned).then_some(())
    };
    wait_until(ONLINE, "the owner's tunnel to leave the inventory", owners_tunnel_gone);
    refused_again(refusals()); // the second device had its chance while the owner was away
    let not_stolen = || {
        let stolen: Vec<_> = b.statuses().into_iter().filter(|s| s["status"] == "online").collect();
        assert!(stolen.is_empty(), "the second device got the name: {stolen:#?}");
    };
    not_stolen();
    let back = Forward::start(&engine, &origin_a, &forward_args("shell"), &[(TOKEN_ENV, &owner)]);
    back.wait_online(1, ONLINE);
    assert_eq!(reached(&engine, "shell"), "device-a", "the operator still reaches the owner");
    not_stolen();
}

#[test]
fn a_raw_client_is_refused_an_owned_name_until_the_grace_period_has_passed() {
    let grace = Duration::from_secs(3);
    let engine = Engine::start_with(&["--name-grace", "3s"]);
    smol::block_on(async {
        let owner = FakeAgent::open(&engine, &engine.token_for("owner", &DEVICE)).await.unwrap();
        owner.open_tunnel(tunnel("lab", true)).await.expect("the owner registers lab");
        let raw = FakeAgent::open(&engine, &engine.token_for("raw-intruder", &DEVICE)).await.unwrap();
        for name in ["lab", "LAB"] {
            let refused = raw.open_tunnel(tunnel(name, true)).await.expect_err("an owned name");
            assert_eq!(refused.code(), ErrorCode::InvalidRequest, "{name}: {refused}");
        }

        drop(owner);
        wait_until(ONLINE, "the owner's tunnel to leave", || (!listed(&engine, "lab")).then_some(()));
        let dropped = Instant::now();
        raw.claim_after_reservation(&engine, "lab", dropped, grace, ONLINE).await;
    });
}

#[test]
fn only_the_owner_or_an_admin_may_delete_a_tunnel() {
    let engine = Engine::start();
    smol::block_on(async {
        let device = FakeAgent::open(&engine, &engine.token_for("pi", &DEVICE)).await.unwrap();
        let victim = device.open_tunnel(tunnel("victim", false)).await.unwrap();
        let delete = |target: &str, token: &str| {
            engine.curl_host("localhost", &format!("/api/tunnels/{target}"), Some(token), &["-X", "DELETE"])
        };
        let intruder = engine.token_for("intruder", &[READ, REGISTER]);
        for target in ["victim".to_owned(), id(&victim)] {
            let refused = delete(&target, &intruder);
            assert_eq!(refused.status, 403, "{target}: {refused:?}");
            assert!(refused.json()["error"].as_str().unwrap().contains(ADMIN), "{refused:?}");
        }
        let still = engine.api("/api/tunnels/victim", Some(&engine.context_token()));
        assert_eq!((still.status, still.json()["id"].as_str()), (200, Some(id(&victim).as_str())), "nothing changed");

        let owner = engine.token_for("pi", &[READ, REGISTER]);
        assert_eq!(delete("victim", &owner).status, 200, "the owner may");
        match device.next().await {
            Payload::CloseTunnelRsp(rsp) => assert_eq!(rsp.tunnel_id, id(&victim)),
            other => panic!("expected CloseTunnelRsp, got {other:?}"),
        }

        let again = device.open_tunnel(tunnel("victim", false)).await.expect("released by its owner");
        let admin = engine.token_for("root", &[READ, ADMIN]);
        let evicted = delete(&id(&again), &admin);
        assert_eq!(evicted.status, 200, "an admin may: {evicted:?}");
        assert!(!listed(&engine, "victim"));
        let operator = engine.claims(&engine.context_token());
        assert!(operator["permissions"].as_array().unwrap().iter().any(|p| p == ADMIN), "{operator}");
    });
}

#[test]
fn a_tunnel_cannot_be_named_like_another_tunnels_id() {
    let engine = Engine::start();
    smol::block_on(async {
        let a = FakeAgent::open(&engine, &engine.token_for("a", &DEVICE)).await.unwrap();
        let unnamed = a.open_tunnel(tunnel("", false)).await.expect("an unnamed tunnel");
        let b = FakeAgent::open(&engine, &engine.token_for("b", &DEVICE)).await.unwrap();
        for name in [id(&unnamed), id(&unnamed).to_ascii_uppercase(), "0123456789abcdef".to_owned()] {
            let refused = b.open_tunnel(tunnel(&name, false)).await.expect_err("an id-shaped name");
            assert_eq!(refused.code(), ErrorCode::InvalidRequest, "{name}: {refused}");
        }
        let found = engine.api(&format!("/api/tunnels/{}", id(&unnamed)), Some(&engine.context_token()));
        assert_eq!(found.json()["client_id"], a.client_id.as_str(), "the id still means the unnamed tunnel");
    });
}

#[test]
fn every_minted_token_gets_its_own_subject_unless_one_is_given() {
    let engine = Engine::start();
    let sub = |token: &str| engine.claims(token)["sub"].as_str().unwrap().to_owned();
    let (one, two) = (engine.token(&DEVICE, None), engine.token(&DEVICE, None));
    assert_ne!(sub(&one), sub(&two), "two devices are two subjects");
    assert_eq!(sub(&engine.token_for("pi-1", &DEVICE)), "pi-1");
}
