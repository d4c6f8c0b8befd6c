//! A tunnel name stays with its owner across an engine restart. Played by attackers against the real binary: the
//! owner device is online, the engine is killed and started again on the same state dir, and a second device with
//! another subject races to register the name first — as a raw rstrm/1 client the moment the engine listens, and as
//! a real `rstream forward` retrying every 200 ms. It is refused (`INVALID_REQUEST`, 409 before protocol 1.4) while the owner reconnects and gets its name
//! back; only after the grace period, with the owner gone, may the other subject take it. A damaged bindings file
//! is set aside with a warning, and the engine still starts.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::fake_agent::{tunnel, FakeAgent};
use common::tokens::TOKEN_ENV;
use common::tunnel::{banner_origin, dial, Forward};
use common::{wait_until, wait_until_or, Engine, DEVICE};
use rstream::proto::rstream::{opt_str, ErrorCode};

const ONLINE: Duration = Duration::from_secs(20);
/// How long the engine may take to put a new binding on disk (it debounces its writes).
const PERSISTED: Duration = Duration::from_secs(5);

fn forward_args(name: &str) -> Vec<&str> {
    vec!["--name", name, "--no-publish", "-o", "json", "--retry-interval", "200"]
}

fn names_file(engine: &Engine) -> PathBuf {
    engine.state_dir().join("tunnel-names")
}

/// Waits (briefly) until the engine's bindings file names `name` and `owner`, so killing the engine cannot beat
/// the debounced write. Not an assertion: the attack below is what must hold.
fn wait_persisted(engine: &Engine, name: &str, owner: &str) {
    let end = Instant::now() + PERSISTED;
    while Instant::now() < end {
        let text = std::fs::read_to_string(names_file(engine)).unwrap_or_default();
        if text.contains(&format!("\"{name}\"")) && text.contains(&format!("\"{owner}\"")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn after_an_engine_restart_the_owner_gets_its_name_back_before_a_faster_device() {
    let mut engine = Engine::start();
    let owner = engine.token_for("device-a", &DEVICE);
    let intruder = engine.token_for("device-b", &DEVICE);
    let (origin_a, origin_b) = (banner_origin("device-a").target(), banner_origin("device-b").target());
    let mut a = Forward::start(&engine, &origin_a, &forward_args("shell"), &[(TOKEN_ENV, &owner)]);
    a.wait_online(1, ONLINE);
    wait_persisted(&engine, "shell", "device-a");

    // The engine dies with the owner online; the owner is slower to come back than the intruder.
    a.kill();
    engine.restart();
    smol::block_on(async {
        let raw = FakeAgent::open(&engine, &intruder).await.expect("the intruder's control channel");
        for name in ["shell", "SHELL"] {
            let refused = raw.open_tunnel(tunnel(name, false)).await.expect_err("the owner's name after a restart");
            assert_eq!(refused.code(), ErrorCode::InvalidRequest, "{name}: {refused}");
            assert!(opt_str(&refused.message).unwrap_or("").contains("reserved"), "{refused}");
        }
    });
    // A real device retrying every 200 ms (`--retry`: it keeps racing through name refusals).
    let racing = [forward_args("shell"), vec!["--retry"]].concat();
    let b = Forward::start(&engine, &origin_b, &racing, &[(TOKEN_ENV, &intruder)]);
    let refusals =
        || b.statuses().iter().filter(|s| s["status"].as_str().is_some_and(|t| t.contains("INVALID_REQUEST"))).count();
    let refused_again = |before: usize| {
        wait_until_or(
            ONLINE,
            || format!("the racing device to be refused (INVALID_REQUEST) again: {:#?}", b.statuses()),
            || (refusals() > before || b.statuses().iter().any(|s| s["status"] == "online")).then_some(()),
        )
    };
    refused_again(0);
    let not_stolen = || {
        let stolen: Vec<_> = b.statuses().into_iter().filter(|s| s["status"] == "online").collect();
        assert!(stolen.is_empty(), "the racing device got the name: {stolen:#?}");
    };
    not_stolen();

    let back = Forward::start(&engine, &origin_a, &forward_args("shell"), &[(TOKEN_ENV, &owner)]);
    back.wait_online(1, ONLINE);
    let (code, out, err) = dial(&engine, "rstrm://shell", b"", &[]);
    assert_eq!((code, String::from_utf8_lossy(&out).as_ref()), (0, "device-a"), "the operator reaches: {err}");
    refused_again(refusals()); // still racing, still refused
    not_stolen();
}

#[test]
fn after_the_grace_an_owner_that_stays_away_loses_its_name() {
    let grace = Duration::from_secs(3);
    let mut engine = Engine::start_with(&["--name-grace", "3s"]);
    let intruder = engine.token_for("raw-intruder", &DEVICE);
    smol::block_on(async {
        let owner = FakeAgent::open(&engine, &engine.token_for("owner", &DEVICE)).await.unwrap();
        owner.open_tunnel(tunnel("lab", true)).await.expect("the owner registers lab");
        wait_persisted(&engine, "lab", "owner");
    });
    engine.restart();
    let started = Instant::now();
    smol::block_on(async {
        let raw = FakeAgent::open(&engine, &intruder).await.unwrap();
        raw.claim_after_reservation(&engine, "lab", started, grace, ONLINE).await;
    });
    wait_persisted(&engine, "lab", "raw-intruder");
    let text = std::fs::read_to_string(names_file(&engine)).unwrap();
    assert!(!text.contains("\"owner\":\"owner\""), "the old owner is still on disk: {text}");
}

#[test]
fn a_damaged_bindings_file_is_set_aside_with_a_warning_and_the_engine_still_starts() {
    let mut engine = Engine::start();
    let file = names_file(&engine);
    let bad = file.with_file_name("tunnel-names.bad");
    let oversize = format!("{{\"version\":1,\"names\":[{}]}}", " ".repeat(5 * 1024 * 1024));
    for (what, content) in [("malformed", "{\"version\":1,\"names\":[{\"name\":".to_owned()), ("oversize", oversize)] {
        let warnings =
            |e: &Engine| e.logs().lines().filter(|l| l.contains("tunnel-names") && l.contains(".bad")).count();
        let before = warnings(&engine);
        engine.kill();
        std::fs::write(&file, &content).unwrap();
        engine.restart();
        wait_until_or(
            PERSISTED,
            || format!("{what}: a startup warning naming the file and its .bad copy:\n{}", engine.logs()),
            || (warnings(&engine) > before).then_some(()),
        );
        assert_eq!(std::fs::read_to_string(&bad).unwrap(), content, "{what}: the .bad copy keeps the file");
        smol::block_on(async {
            let agent = FakeAgent::open(&engine, &engine.token_for("pi", &DEVICE)).await.unwrap();
            agent.open_tunnel(tunnel(what, false)).await.expect("the engine serves");
        });
        wait_until(PERSISTED, "the new binding on disk", || {
            let text = std::fs::read_to_string(&file).ok()?;
            text.contains(&format!("\"{what}\"")).then_some(())
        });
    }
}
