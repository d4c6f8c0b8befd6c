//! The operator's terminal is not the device's to drive: a device registers a tunnel whose labels carry terminal
//! control sequences (an OSC title change ended by BEL, carriage returns that overwrite a line, C1 CSI, DEL), and
//! `tunnels list` / `webtty list` print them as visible escapes, while `-o json` keeps the exact values.

mod common;

use std::collections::BTreeMap;

use common::fake_agent::{tunnel, FakeAgent};
use common::tunnel::wait_for_context;
use common::{run, Engine, DEVICE};

/// The labels a hostile device registers.
fn hostile_labels() -> BTreeMap<String, String> {
    [
        ("0-role", "\x1b]0;pwned\x07"),
        ("0-note\r", "ok\rFAKE"),
        ("application-protocol", "rstream.webtty"),
        ("rstream.webtty.hostname", "\x1b[2Jhost"),
        ("rstream.webtty.server_name", "box\x1b[8m"),
        ("rstream.webtty.label.tag", "\x1b]0;pwned\x07"),
        ("rstream.webtty.label.c1", "\u{9b}31mred\x7f"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Panics when `output` holds a control character other than the table's own newlines.
fn assert_printable(what: &str, output: &str) {
    let raw: Vec<char> = output.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(raw.is_empty(), "{what} printed raw control characters {raw:?}:\n{output:?}");
}

#[test]
fn tables_escape_control_characters_from_device_labels_and_json_keeps_them() {
    let engine = Engine::start();
    wait_for_context(&engine);
    let device = engine.token(&DEVICE, Some("1h"));
    let agent = smol::block_on(async {
        let agent = FakeAgent::open(&engine, &device).await.expect("control channel");
        let refused = agent.open_tunnel(tunnel("evil\x1b]0;pwned\x07", false)).await;
        assert_eq!(
            refused.expect_err("a name with control characters is refused").code(),
            rstream::proto::rstream::ErrorCode::InvalidRequest
        );
        let mut props = tunnel("evil", false);
        props.labels = hostile_labels();
        agent.open_tunnel(props).await.expect("tunnel registered");
        agent
    });
    let env = [("RSTREAM_CONFIG", engine.config_path())];
    let env: Vec<(&str, &std::path::Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();

    let (code, table, err) = run(&["tunnels", "list"], &env);
    assert_eq!(code, 0, "{err}");
    assert_printable("tunnels list", &table);
    assert!(table.contains("0-note\\r=ok\\rFAKE,0-role=\\x1b]0;pwned\\x07"), "{table}");

    let (code, table, err) = run(&["webtty", "list"], &env);
    assert_eq!(code, 0, "{err}");
    assert_printable("webtty list", &table);
    assert!(table.contains("box\\x1b[8m") && table.contains("\\x1b[2Jhost"), "{table}");
    assert!(table.contains("c1=\\x9b31mred\\x7f,tag=\\x1b]0;pwned\\x07"), "{table}");

    let (code, json, err) = run(&["tunnels", "list", "-o", "json"], &env);
    assert_eq!(code, 0, "{err}");
    let tunnels: serde_json::Value = serde_json::from_str(&json).expect("exact JSON");
    let evil = tunnels.as_array().unwrap().iter().find(|t| t["name"] == "evil").expect("evil listed");
    let labels: BTreeMap<String, String> = serde_json::from_value(evil["labels"].clone()).unwrap();
    assert_eq!(labels, hostile_labels());
    let (code, json, err) = run(&["webtty", "list", "-o", "json"], &env);
    assert_eq!(code, 0, "{err}");
    let servers: serde_json::Value = serde_json::from_str(&json).expect("exact JSON");
    assert_eq!(servers[0]["target"], "box\x1b[8m");
    assert_eq!(servers[0]["labels"]["tag"], "\x1b]0;pwned\x07");
    drop(agent);
}
