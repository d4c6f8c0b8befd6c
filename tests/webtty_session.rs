//! The WebTTY protocol spoken by a test client against the real server binary: backpressure (a client that
//! stops reading stalls the child and the server's memory stays flat), PTY login shells, resizes, and
//! protocol errors.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use std::time::Duration;

use futures_lite::future::block_on;
use rstream::proto::webtty::message::Payload;
use rstream::proto::webtty::{data, parameter, Config, Data, DataType, Open, Options, Parameter, TerminalSize};
use rstream::webtty::client::{connect, ClientWs, ConnectOptions, Target};
use rstream::webtty::wire::{encode, next_payload};
use webtty_support::*;

fn open_session(server: &LocalServer, config: Config) -> ClientWs {
    block_on(async {
        let target = Target::parse(&server.url(), None).unwrap();
        let opts = ConnectOptions { auth_token: Some(server.token.as_str().into()), ..ConnectOptions::default() };
        let mut ws = connect(&target, &opts).await.unwrap();
        ws.send(encode(Payload::Open(Open { config: Some(config) }))).await.unwrap();
        match next_payload(&mut ws).await.unwrap() {
            Some(Payload::Ack(_)) => ws,
            other => panic!("expected Ack, got {other:?}"),
        }
    })
}

fn config(argv: &[&str], interactive: bool, tty: bool) -> Config {
    Config {
        options: Some(Options { interactive, allocate_tty: tty, send_heartbeat: false }),
        cmd_args: argv.iter().map(|s| s.to_string()).collect(),
        ..Config::default()
    }
}

/// Reads until `pred(stdout so far)` holds or a `Close` arrives; returns (stdout, close code).
fn read_until(ws: &mut ClientWs, mut pred: impl FnMut(&str) -> bool) -> (String, Option<i32>) {
    block_on(async {
        let mut out = String::new();
        loop {
            let next = rstream::webtty::timeout(Duration::from_secs(10), next_payload(ws)).await;
            match next.expect("server went quiet").unwrap() {
                Some(Payload::Data(Data { payload: Some(data::Payload::Data(b)), .. })) => {
                    out.push_str(&String::from_utf8_lossy(&b));
                    if pred(&out) {
                        return (out, None);
                    }
                }
                Some(Payload::Close(c)) => return (out, Some(c.return_code)),
                Some(_) => {}
                None => panic!("connection closed; output so far: {out:?}"),
            }
        }
    })
}

fn stdin(ws: &mut ClientWs, text: &str) {
    block_on(ws.send(encode(Payload::Data(Data::bytes(DataType::Stdin, text.as_bytes().to_vec()))))).unwrap();
}

fn proc_field(pid: i32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[test]
fn slow_reader_stalls_the_child_and_server_memory_stays_flat() {
    let server = LocalServer::start(&[]);
    let pidfile = server.dir.join("pid");
    let script = format!("echo $$ > {}; exec yes 0123456789abcdefghijklmnopqrstuvwxyz", pidfile.display());
    let mut ws = open_session(&server, config(&["sh", "-c", &script], false, false));
    let pid = read_pid(&pidfile);
    let server_pid = server.child.id() as i32;

    // Not reading: `yes` fills the pipe and the socket buffers, then blocks.
    let mut last = 0;
    let stalled = poll(Duration::from_secs(20), || {
        let written = proc_field(pid, "io", "wchar:")?;
        let stable = written == last && written > 0;
        last = written;
        std::thread::sleep(Duration::from_millis(300));
        stable.then_some(written)
    });
    let written = stalled.expect("the child never stalled");
    assert!(written < 64 << 20, "child wrote {written} bytes while nobody read");
    let rss_kib = proc_field(server_pid, "status", "VmRSS:").unwrap();
    assert!(rss_kib < 64 * 1024, "server RSS {rss_kib} KiB while a client is not reading");
    eprintln!("stalled after the child wrote {written} bytes; server RSS {rss_kib} KiB");

    // Reading again lets the child continue.
    let (out, _) = read_until(&mut ws, |out| out.len() > 1 << 20);
    assert!(out.starts_with("0123456789abcdefghijklmnopqrstuvwxyz\n"));
    drop(ws);
    let gone = poll(Duration::from_secs(5), || (!alive(pid)).then_some(()));
    assert!(gone.is_some(), "yes survived the closed connection");
}

#[test]
fn pty_session_without_command_runs_a_login_shell_that_sees_resizes() {
    let server = LocalServer::start(&[]);
    let mut ws = open_session(&server, config(&[], true, true));
    let size = |row, col| {
        Payload::Parameter(Parameter {
            kind: Some(parameter::Kind::TerminalSize(TerminalSize { row, col, xpixel: 0, ypixel: 0 })),
        })
    };
    block_on(ws.send(encode(size(33, 101)))).unwrap();
    stdin(&mut ws, "echo shell=$0; stty size; tty\n");
    let (out, _) = read_until(&mut ws, |o| o.contains("33 101") && o.contains("/dev/pts/"));
    assert!(out.contains("shell=-") || out.contains("shell=/"), "login shell expected: {out:?}");
    block_on(ws.send(encode(size(50, 160)))).unwrap();
    stdin(&mut ws, "stty size\n");
    read_until(&mut ws, |o| o.contains("50 160"));
    stdin(&mut ws, "exit 7\n");
    let (_, code) = read_until(&mut ws, |_| false);
    assert_eq!(code, Some(7));
}

#[test]
fn a_second_open_is_a_protocol_error_that_ends_the_session() {
    let server = LocalServer::start(&[]);
    let mut ws = open_session(&server, config(&["sleep", "30"], false, false));
    block_on(ws.send(encode(Payload::Open(Open::default())))).unwrap();
    let msg = block_on(async {
        loop {
            match next_payload(&mut ws).await.unwrap() {
                Some(Payload::Error(e)) => break e.msg,
                Some(_) => {}
                None => panic!("closed without an Error"),
            }
        }
    });
    assert!(msg.contains("unexpected Open"), "{msg}");
}

#[test]
fn stdin_eos_closes_the_childs_input() {
    let server = LocalServer::start(&[]);
    let mut ws = open_session(&server, config(&["wc", "-c"], true, false));
    stdin(&mut ws, "12345");
    block_on(ws.send(encode(Payload::Data(Data::eos(DataType::Stdin))))).unwrap();
    let (out, code) = read_until(&mut ws, |_| false);
    assert_eq!((out.trim(), code), ("5", Some(0)));
}
