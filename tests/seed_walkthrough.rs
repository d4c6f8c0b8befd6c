//! The seed's walkthrough, line by line **as a new user types it**, through the real binary.
//!
//! Each line is handed to `bash -c` verbatim, with the binary on `PATH` as `rstream` and `HOME`,
//! `RSTREAM_CONFIG` and `XDG_STATE_HOME` in a temp dir; only the placeholders a user fills in (`--fs-root DIR`,
//! `forward PORT`) are shell variables. Everything runs inside a network namespace the test creates
//! (`unshare -rn`, its own loopback), so `rstream engine serve` takes its default 127.0.0.1:8443 without racing
//! any other test on the host; nothing else leaves that namespace's loopback.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_until_or, ChildGuard, TempDir, BIN};

/// How long a background line may take to get ready (engine up, server or tunnel listed).
const READY: Duration = Duration::from_secs(30);

/// Environment a user's shell might carry that would point the walkthrough elsewhere.
const FOREIGN_ENV: [&str; 7] = [
    "RSTREAM_CONTEXT",
    "RSTREAM_ENGINE",
    "RSTREAM_AUTHENTICATION_TOKEN",
    "RSTREAM_WEBTTY_AUTH_TOKEN",
    "RSTREAM_API_URL",
    "CODEX_HOME",
    "XDG_CONFIG_HOME",
];

/// A network namespace of our own (loopback up), held by a sleeping process that is killed on drop.
struct Netns {
    holder: ChildGuard,
}

impl Netns {
    /// Creates the namespace; panics (never skips) when it cannot.
    fn create() -> Netns {
        let mut child = Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep 3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run unshare (util-linux) for the walkthrough's namespace: {e}"));
        let mut first = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut first);
        if first.trim() != "up" {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            let _ = child.kill();
            panic!("cannot create a network namespace (unshare --user --net, ip link set lo up): {err}");
        }
        Netns { holder: ChildGuard(child) }
    }
}

/// Output collected from a background line.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<String>>);

impl Log {
    fn collect(&self, from: impl Read + Send + 'static) {
        let log = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                log.0.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// A background line (engine, device agent, forward, origin): killed on drop.
struct Background {
    line: String,
    log: Log,
    _child: ChildGuard,
}

/// The user's machine: a namespace, a home directory, `rstream` on `PATH`.
struct Walkthrough {
    ns: Netns,
    home: TempDir,
    bin_dir: PathBuf,
    background: Vec<Background>,
}

impl Walkthrough {
    fn new() -> Walkthrough {
        let home = TempDir::new("seed-home");
        let bin_dir = home.path().join("bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::os::unix::fs::symlink(BIN, bin_dir.join("rstream")).unwrap();
        Walkthrough { ns: Netns::create(), home, bin_dir, background: Vec::new() }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// `bash -c LINE` inside the namespace, in the user's environment plus `vars`.
    fn shell(&self, line: &str, vars: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("nsenter");
        let holder = self.ns.holder.0.id().to_string();
        cmd.args(["--target", &holder, "--user", "--net", "--preserve-credentials", "bash", "-c", line]);
        let path = format!("{}:{}", self.bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        for k in FOREIGN_ENV {
            cmd.env_remove(k);
        }
        cmd.env("PATH", path)
            .env("REAL_HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("HOME", self.home())
            .env("RSTREAM_CONFIG", self.home().join(".rstream/config.yaml"))
            .env("XDG_STATE_HOME", self.home().join(".local/state"))
            .current_dir(self.home())
            .stdin(Stdio::null());
        cmd.envs(vars.iter().copied());
        cmd
    }

    /// Runs `line` to completion: (exit code, stdout, stderr).
    fn run(&self, line: &str, vars: &[(&str, &str)]) -> (i32, String, String) {
        let out = self.shell(line, vars).output().expect("run nsenter");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    /// Runs `line`, which must succeed; returns its stdout.
    fn ok(&self, line: &str, vars: &[(&str, &str)]) -> String {
        let (code, out, err) = self.run(line, vars);
        assert_eq!(code, 0, "`{line}` exited {code}\nstdout: {out}\nstderr: {err}\n{}", self.logs());
        out
    }

    /// Starts `line` in the background (`exec`ed, so the guard kills the command itself); returns its index.
    fn spawn(&mut self, line: &str, vars: &[(&str, &str)]) -> usize {
        let mut child = self
            .shell(&format!("exec {line}"), vars)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nsenter");
        let log = Log::default();
        log.collect(child.stdout.take().unwrap());
        log.collect(child.stderr.take().unwrap());
        self.background.push(Background { line: line.to_owned(), log, _child: ChildGuard(child) });
        self.background.len() - 1
    }

    /// Waits until `probe` holds, naming `what` and showing every background log if it never does.
    fn wait<T>(&self, what: &str, probe: impl FnMut() -> Option<T>) -> T {
        wait_until_or(READY, || format!("{what}\n{}", self.logs()), probe)
    }

    /// Every background line with its output so far.
    fn logs(&self) -> String {
        self.background.iter().map(|b| format!("--- {}\n{}", b.line, b.log.text())).collect()
    }

    fn log(&self, index: usize) -> String {
        self.background[index].log.text()
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn the_seed_walkthrough_works_as_written() {
    let mut w = Walkthrough::new();
    let fs_root = w.home().join("device-files");
    std::fs::create_dir_all(&fs_root).unwrap();
    std::fs::write(fs_root.join("README.md"), "# homelab-macmini\nfiles below --fs-root\n").unwrap();
    let site = w.home().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("hello.txt"), "hello from port 3000\n").unwrap();
    let dir = fs_root.to_str().unwrap();

    // The relay: the local default, and a context for everything below.
    let engine = w.spawn("rstream engine serve", &[]);
    w.wait("`rstream engine serve` to listen", || w.log(engine).contains("listen:").then_some(()));

    let doctor = json(&w.ok("rstream doctor -o json", &[]));
    assert_eq!(doctor["summary"]["fail"], 0, "{doctor:#}");
    assert_eq!(doctor["contextName"], "local", "{doctor:#}");

    // The device.
    w.spawn(
        r#"rstream webtty server --rstream --name homelab-macmini --label role=codex --fs-root "$DIR""#,
        &[("DIR", dir)],
    );
    let list_line = "rstream webtty list --filter 'labels.rstream.webtty.label.role=codex' -o json";
    let server = w.wait("homelab-macmini listed online", || {
        let list = json(&w.ok(list_line, &[]));
        list.as_array()?.iter().find(|s| s["target"] == "homelab-macmini" && s["status"] == "online").cloned()
    });
    assert_eq!(server["rstream_url"], "rstrm://homelab-macmini", "{server:#}");
    assert_eq!(server["capabilities"], serde_json::json!(["exec", "fs"]), "{server:#}");
    assert_eq!(server["labels"]["role"], "codex", "{server:#}");

    // The operator.
    let exec = json(&w.ok("rstream webtty exec --url rstrm://homelab-macmini -- uname -a", &[]));
    assert_eq!(exec["exit_code"], 0, "{exec:#}");
    assert!(exec["stdout"].as_str().is_some_and(|s| s.starts_with("Linux ")), "{exec:#}");
    let ls = w.ok("rstream webtty fs ls --url rstrm://homelab-macmini /", &[]);
    assert!(ls.starts_with("PATH") && ls.contains("/README.md"), "{ls}");
    let readme = w.ok("rstream webtty fs read --url rstrm://homelab-macmini /README.md", &[]);
    assert_eq!(readme, "# homelab-macmini\nfiles below --fs-root\n");

    // A local web service, published and private.
    let site_dir = site.to_str().unwrap();
    w.spawn(
        r#"env HOME="$REAL_HOME" python3 -m http.server --bind 127.0.0.1 --directory "$SITE" "$PORT""#,
        &[("SITE", site_dir), ("PORT", "3000")],
    );
    let published = w.spawn(r#"rstream forward "$PORT" --name homelab-web --label role=web"#, &[("PORT", "3000")]);
    let url = w.wait("the published forward online", || {
        let log = w.log(published);
        let online = log.lines().any(|l| l.trim() == "status     : online");
        let url =
            log.lines().find_map(|l| l.trim().strip_prefix("forwarding : ").filter(|u| u.starts_with("https://")));
        let url = url?.to_owned();
        online.then_some(url)
    });
    let host = url.trim_start_matches("https://").split(':').next().unwrap().to_owned();
    assert_eq!(host, "homelab-web.t.localhost", "{url}");
    let ca = w.home().join(".local/state/rstream/engine/ca.pem");
    let fetched = w.wait("the published URL to serve the origin", || {
        let line = r#"curl -sS --max-time 10 --cacert "$CA" --resolve "$HOST:8443:127.0.0.1" "$URL/hello.txt""#;
        let (code, out, _) = w.run(line, &[("CA", ca.to_str().unwrap()), ("HOST", &host), ("URL", &url)]);
        // Until python's server listens, the agent refuses the stream and the engine answers 502: retry, as a
        // person would.
        (code == 0 && !out.contains("502 Bad Gateway")).then_some(out)
    });
    assert_eq!(fetched, "hello from port 3000\n");

    w.spawn(r#"rstream forward "$PORT" --name homelab-web-private --label role=web --no-publish"#, &[("PORT", "3000")]);
    let private = w.wait("the private forward listed", || {
        let tunnels = json(&w.ok("rstream tunnels list -o json", &[]));
        tunnels.as_array()?.iter().find(|t| t["name"] == "homelab-web-private").cloned()
    });
    assert_eq!(private["publish"], false, "{private:#}");
    assert_eq!(private["labels"]["role"], "web", "{private:#}");
    let reply = w.ok(r#"printf 'GET /hello.txt HTTP/1.0\r\n\r\n' | rstream dial rstrm://homelab-web-private"#, &[]);
    assert!(reply.starts_with("HTTP/1.0 200") && reply.ends_with("hello from port 3000\n"), "{reply}");

    // The agent.
    w.ok("rstream codex setup", &[]);
    let codex = std::fs::read_to_string(w.home().join(".codex/config.toml")).expect("codex setup wrote no config");
    assert!(codex.contains("[mcp_servers.rstream]") && codex.contains("\"mcp\", \"serve\""), "{codex}");
}

/// The seed's last line.
#[test]
fn the_seed_version_line_works_as_written() {
    let w = Walkthrough::new();
    for line in ["rstream --version", "rstream -V"] {
        let out = w.ok(line, &[]);
        assert!(out.starts_with(&format!("rstream {}", env!("CARGO_PKG_VERSION"))), "`{line}`: {out}");
    }
}
