//! The device half of the end-to-end flow on an emulated CPU: a host engine on loopback, the cross-built device
//! image under qemu-user dialing it with a device-only token, and the host operator reaching the device through
//! the engine — `webtty exec` and `webtty fs read` via `rstrm://`, inventory labels, and `forward` (published
//! by host name, private via `dial`). Run by `make test-cross`; see `cross_support` for the setup.

#![cfg(all(feature = "operator", feature = "engine"))]

mod common;
mod cross_support;

use std::path::PathBuf;

use common::tunnel::{dial, http_origin, https_get, wait_for_context, HELLO};
use common::{Engine, DEVICE};
use cross_support::{host, json_output, success, CrossDevice, EmulatedProcess, Scratch};

/// A device config (written by the emulated image itself) pointing at `engine` with a device-only token.
fn device_config(device: &CrossDevice, engine: &Engine, scratch: &Scratch) -> PathBuf {
    wait_for_context(engine);
    let shown = success(host(&engine.config_path(), &["context", "show", "local", "-o", "json"]));
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("context show json");
    let address = shown["engine"].as_str().expect("engine address in the local context").to_owned();
    let token = scratch.join("device-token");
    std::fs::write(&token, engine.token(&DEVICE, None)).unwrap();
    let config = scratch.join("device.yaml");
    let ca = engine.ca_path();
    let args = ["context", "create", "edge", "--engine", &address, "--token-file", token.to_str().unwrap()];
    let mut cmd = device.command(&config, &args);
    cmd.args(["--engine-tls-ca-file", ca.to_str().unwrap(), "--default"]);
    success(cmd);
    config
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_webtty_server_is_reached_through_the_host_engine_for_exec_fs_and_inventory() {
    let device = CrossDevice::from_env();
    let engine = Engine::start();
    let scratch = Scratch::new("engine-webtty");
    let config = device_config(&device, &engine, &scratch);
    let root = scratch.join("files");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    std::fs::write(root.join("logs").join("boot.txt"), "booted on an emulated cpu\n").unwrap();

    let args = ["webtty", "server", "--rstream", "--no-publish", "--name", "emu", "--label", "role=cross"];
    let mut cmd = device.command(&config, &args);
    cmd.args(["--retry-interval", "200", "--fs-root", root.to_str().unwrap()]);
    let mut server = EmulatedProcess::spawn(cmd);
    server.wait_line("that it is online", |l| l.contains("webtty server online as rstrm://emu").then_some(()));

    let operator = engine.config_path();
    let listed = json_output(host(&operator, &["webtty", "list", "-o", "json"]));
    let emu = listed.as_array().and_then(|a| a.iter().find(|s| s["tunnel_name"] == "emu")).cloned();
    let emu = emu.unwrap_or_else(|| panic!("rstrm://emu not in the inventory: {listed}"));
    assert_eq!(emu["arch"], device.go_arch(), "{emu}");
    assert_eq!(emu["status"], "online", "{emu}");
    assert_eq!(emu["labels"]["role"], "cross", "{emu}");
    assert_eq!(emu["capabilities"], serde_json::json!(["exec", "fs"]), "{emu}");

    let script = "printf out; printf err >&2; readlink /proc/$PPID/exe; exit 5";
    let exec = ["webtty", "exec", "--url", "rstrm://emu", "-o", "json", "--", "sh", "-c", script];
    let result = json_output(host(&operator, &exec));
    assert_eq!(result["exit_code"], 5, "{result}");
    assert_eq!(result["stderr"], "err", "{result}");
    let stdout = result["stdout"].as_str().unwrap_or_default();
    assert!(stdout.trim_end().ends_with(device.emulator()), "not served under {}: {result}", device.emulator());

    let read = success(host(&operator, &["webtty", "fs", "--url", "rstrm://emu", "read", "/logs/boot.txt"]));
    assert_eq!(read, "booted on an emulated cpu\n");
    drop(server);
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_forward_is_published_by_host_name() {
    let device = CrossDevice::from_env();
    let engine = Engine::start();
    let scratch = Scratch::new("engine-published");
    let config = device_config(&device, &engine, &scratch);
    let origin = http_origin();

    let args = ["forward", &origin.target(), "--name", "web", "-o", "json"];
    let mut forward = EmulatedProcess::spawn(device.command(&config, &args));
    forward.wait_line("that the published tunnel is online", |l| l.contains(r#""status":"online""#).then_some(()));
    let (status, body) = https_get(&engine, "web.t.localhost", "/");
    assert_eq!((status, String::from_utf8_lossy(&body).into_owned()), (200, HELLO.to_owned()));
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_private_forward_is_reachable_with_dial_only() {
    let device = CrossDevice::from_env();
    let engine = Engine::start();
    let scratch = Scratch::new("engine-private");
    let config = device_config(&device, &engine, &scratch);
    let origin = http_origin();

    let args = ["forward", &origin.target(), "--name", "db", "--no-publish", "-o", "json"];
    let mut forward = EmulatedProcess::spawn(device.command(&config, &args));
    forward.wait_line("that the private tunnel is online", |l| l.contains(r#""status":"online""#).then_some(()));
    let (status, _) = https_get(&engine, "db.t.localhost", "/");
    assert_eq!(status, 404, "a private tunnel must not be routed by host name");

    let (code, reply, stderr) = dial(&engine, "rstrm://db", b"GET / HTTP/1.0\r\n\r\n", &[]);
    assert_eq!(code, 0, "dial failed: {stderr}");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with(HELLO), "{reply}");
}
