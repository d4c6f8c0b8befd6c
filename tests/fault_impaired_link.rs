//! Fault: the device sits behind a slow, long link. The agent (`webtty server --rstream --fs-root`) runs in its
//! own network namespace, joined to ours by a veth pair shaped to 2 Mbit/s each way (`tbf`; this kernel has no
//! `netem`), and reaches the engine through a userspace relay adding 50 ms each way with bounded buffers. Exec
//! output and a 1 MiB WebDAV upload and download cross that link intact.
//!
//! Needs root, `ip netns` and `tc`, so it is `#[ignore]`d: `make test` runs it with `--ignored` when run as root,
//! `make test-netns` always; without them it fails saying why (it never passes without having run). The namespace
//! (and with it the veth pair) is removed on drop, also when the test panics; names and the 10.213.x.0/30 subnet
//! derive from the pid.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::tunnel::{wait_for_context, WebttyAgent};
use common::{Engine, TempDir, BIN, DEVICE};

/// Link rate each way.
const RATE_MBIT: u64 = 2;
/// Delay the relay adds each way.
const DELAY: Duration = Duration::from_millis(50);
/// Size of the file sent up and back.
const FILE_LEN: usize = 1 << 20;
/// Chunks the relay holds per direction (16 KiB each): its whole buffer.
const RELAY_CHUNKS: usize = 32;

/// A network namespace joined to ours by a veth pair; removed (with the pair) on drop.
struct Netns {
    name: String,
    host_if: String,
    /// Our side of the pair.
    host_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn must(result: Result<(), String>) {
    if let Err(e) = result {
        panic!("{e}");
    }
}

impl Netns {
    /// Creates `rsf-<pid>` with a veth pair on a free 10.213.x.0/30; `Err` says why it cannot (not root, no
    /// `ip netns`).
    fn create() -> Result<Netns, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        let pid = std::process::id();
        let used = Command::new("ip").args(["-4", "-o", "addr", "show"]).output().map(|o| o.stdout).unwrap_or_default();
        let used = String::from_utf8_lossy(&used);
        let subnet = (0..250u32)
            .map(|i| (pid + i) % 250)
            .find(|x| !used.contains(&format!("10.213.{x}.")))
            .ok_or("no free 10.213.x.0/30")?;
        let name = format!("rsf-{pid}");
        ip(&["netns", "add", &name]).map_err(|e| format!("ip netns unavailable: {e}"))?;
        let ns = Netns { host_if: format!("rsf{pid}h"), host_ip: format!("10.213.{subnet}.1"), name };
        let ns_if = format!("rsf{pid}n");
        let ns_ip = format!("10.213.{subnet}.2/30");
        must(ip(&["link", "add", &ns.host_if, "type", "veth", "peer", "name", &ns_if, "netns", &ns.name]));
        must(ip(&["addr", "add", &format!("{}/30", ns.host_ip), "dev", &ns.host_if]));
        must(ip(&["link", "set", &ns.host_if, "up"]));
        must(ip(&["-n", &ns.name, "addr", "add", &ns_ip, "dev", &ns_if]));
        must(ip(&["-n", &ns.name, "link", "set", &ns_if, "up"]));
        must(ip(&["-n", &ns.name, "link", "set", "lo", "up"]));
        let rate = format!("{RATE_MBIT}mbit");
        for (mut tc, dev) in [(Command::new("tc"), &ns.host_if), (ns.command("tc"), &ns_if)] {
            let shape =
                ["qdisc", "add", "dev", dev, "root", "tbf", "rate", &rate, "burst", "32kbit", "latency", "400ms"];
            let out = tc.args(shape).output().expect("run tc");
            assert!(out.status.success(), "tc tbf on {dev}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(ns)
    }

    /// `ip netns exec <name> <program>`: runs `program` inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]); // takes the veth pair with it
        let _ = ip(&["link", "del", &self.host_if]);
    }
}

/// A TCP relay adding [`DELAY`] each way with at most [`RELAY_CHUNKS`] chunks in flight per direction.
fn delay_relay(listen: &str, target: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("bind relay on {listen}: {e}"));
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for near in listener.incoming().map_while(Result::ok) {
            let Ok(far) = TcpStream::connect(target) else { continue };
            let _ = (near.set_nodelay(true), far.set_nodelay(true));
            let (near2, far2) = (near.try_clone().unwrap(), far.try_clone().unwrap());
            std::thread::spawn(move || delayed_copy(near, far));
            std::thread::spawn(move || delayed_copy(far2, near2));
        }
    });
    addr
}

/// Copies `from` to `to`, each chunk released [`DELAY`] after it was read; passes on the end of stream.
fn delayed_copy(mut from: TcpStream, mut to: TcpStream) {
    let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(RELAY_CHUNKS);
    let writer = {
        let mut to = to.try_clone().unwrap();
        std::thread::spawn(move || {
            for (due, chunk) in rx {
                // The delay is the impairment itself, not a synchronisation.
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                if chunk.is_empty() || to.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).unwrap_or(0);
        if tx.send((Instant::now() + DELAY, buf[..n].to_vec())).is_err() || n == 0 {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
    let _ = (from.shutdown(Shutdown::Read), to.flush());
}

/// An operator command (`rstream webtty …`) against the engine's own context.
fn operator(engine: &Engine, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RSTREAM_CONFIG", engine.config_path())
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run rstream")
}

fn ok(what: &str, out: &Output) {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
#[ignore = "needs root, ip netns and tc: `make test` runs it when root, `make test-netns` always"]
fn exec_and_a_one_mib_round_trip_cross_a_slow_delayed_link_intact() {
    let ns =
        Netns::create().unwrap_or_else(|why| panic!("cannot build the impaired link: {why} (needs root and ip netns)"));
    let engine = Engine::start();
    wait_for_context(&engine);
    let engine_addr: SocketAddr = engine.addr().parse().unwrap();
    let relay = delay_relay(&format!("{}:0", ns.host_ip), engine_addr);

    // The agent's context: the engine through the relay, verified as `localhost`.
    let dir = TempDir::new("impaired");
    let config = dir.path().join("agent.yaml");
    let yaml = format!(
        "version: 1\ndefaults:\n  context:\n    name: device\ncontexts:\n- name: device\n  engine: {relay}\n  auth:\n    \
         token:\n      storage:\n        kind: inline\n        value: {}\n  transport:\n    tls:\n      caFile: {}\n      \
         serverName: localhost\n",
        engine.token(&DEVICE, None),
        engine.ca_path().display()
    );
    std::fs::write(&config, yaml).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut cmd = ns.command(BIN);
    cmd.args(["webtty", "server", "--rstream", "--name", "faraway", "--no-publish", "--retry-interval", "500"])
        .arg("--fs-root")
        .arg(&root)
        .env("RSTREAM_CONFIG", &config);
    let agent = WebttyAgent::spawn(cmd);

    let started = Instant::now();
    let out =
        operator(&engine, &["webtty", "exec", "--url", "rstrm://faraway", "-o", "text", "--", "seq", "1", "50000"]);
    ok("exec", &out);
    let expected: String = (1..=50000).map(|i| format!("{i}\n")).collect();
    assert!(out.stdout == expected.as_bytes(), "exec output differs ({} bytes)", out.stdout.len());
    eprintln!("exec: {} bytes in {:?}", out.stdout.len(), started.elapsed());

    let data: Vec<u8> = (0..FILE_LEN as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let (up, back) = (dir.path().join("up.bin"), dir.path().join("back.bin"));
    std::fs::write(&up, &data).unwrap();
    let fs = |args: &[&str]| operator(&engine, &[&["webtty", "fs", "--url", "rstrm://faraway"], args].concat());
    let started = Instant::now();
    ok("upload", &fs(&["upload", up.to_str().unwrap(), "/up.bin"]));
    let upload = started.elapsed();
    assert!(std::fs::read(root.join("up.bin")).unwrap() == data, "the upload arrived corrupted");
    let started = Instant::now();
    ok("download", &fs(&["download", "/up.bin", back.to_str().unwrap()]));
    let download = started.elapsed();
    assert!(std::fs::read(&back).unwrap() == data, "the download arrived corrupted");
    eprintln!("1 MiB over {RATE_MBIT} Mbit/s + {DELAY:?} each way: upload {upload:?}, download {download:?}");

    // The link really was that slow: 1 MiB cannot cross 2 Mbit/s faster than this.
    let floor = Duration::from_secs_f64(FILE_LEN as f64 * 8.0 / (RATE_MBIT as f64 * 1e6) * 0.9);
    assert!(upload >= floor && download >= floor, "faster than the shaped link allows ({floor:?}): is tbf in place?");
    drop(agent);
}
