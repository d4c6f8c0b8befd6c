//! Shared pieces of the emulated-device tests (`tests/cross_*.rs`): the cross-built image and its emulator,
//! host-side commands, and an emulated child process whose output is collected line by line.
//!
//! `make test-cross` (cross/test-cross.sh) builds the static device image for each architecture and runs the
//! `cross_*` tests with:
//! - `RSTREAM_CROSS_BIN`: the image (e.g. built for `aarch64-unknown-linux-musl`, `--features device`);
//! - `RSTREAM_CROSS_RUNNER`: how to start it, e.g. `qemu-aarch64-static` or `qemu-arm-static -cpu cortex-a7`
//!   (binfmt_misc is not registered on the build machines, so qemu is always named explicitly);
//! - `RSTREAM_CROSS_ARCH`: the `std::env::consts::ARCH` the image was built for (`aarch64`, `arm`).
//!
//! The host binary under test (`CARGO_BIN_EXE_rstream`, all features) plays the engine and the operator. Under
//! qemu-user only the device process is emulated: programs it spawns run natively on the host.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an emulated process may take to get going (qemu start-up on a loaded 2-core machine).
pub const EMULATED_START: Duration = Duration::from_secs(45);

/// The cross-built device image and the emulator that runs it.
pub struct CrossDevice {
    /// The static image.
    pub bin: PathBuf,
    /// Emulator and its flags.
    pub runner: Vec<String>,
    /// `std::env::consts::ARCH` of the image.
    pub arch: String,
}

impl CrossDevice {
    /// Reads the image description from the environment `make test-cross` sets.
    pub fn from_env() -> CrossDevice {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run `make test-cross`"));
        let bin = PathBuf::from(var("RSTREAM_CROSS_BIN"));
        assert!(bin.is_file(), "RSTREAM_CROSS_BIN does not name a file: {}", bin.display());
        let runner: Vec<String> = var("RSTREAM_CROSS_RUNNER").split_whitespace().map(str::to_owned).collect();
        assert!(!runner.is_empty(), "RSTREAM_CROSS_RUNNER is empty");
        CrossDevice { bin, runner, arch: var("RSTREAM_CROSS_ARCH") }
    }

    /// `rstream <args>` on the emulated CPU, with `RSTREAM_CONFIG=config`.
    pub fn command(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.runner[0]);
        cmd.args(&self.runner[1..]).arg(&self.bin).args(args);
        isolate(&mut cmd, config);
        cmd
    }

    /// The emulator's file name (`qemu-aarch64-static`): the parent of every program a session runs.
    pub fn emulator(&self) -> &str {
        Path::new(&self.runner[0]).file_name().and_then(|n| n.to_str()).unwrap_or_default()
    }

    /// The Go-style architecture name the image advertises in its WebTTY labels.
    pub fn go_arch(&self) -> &str {
        match self.arch.as_str() {
            "aarch64" => "arm64",
            "x86_64" => "amd64",
            other => other,
        }
    }
}

/// `rstream <args>` built for this host, with `RSTREAM_CONFIG=config`.
pub fn host(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rstream"));
    cmd.args(args);
    isolate(&mut cmd, config);
    cmd
}

fn isolate(cmd: &mut Command, config: &Path) {
    cmd.env("RSTREAM_CONFIG", config)
        .env_remove("RSTREAM_CONTEXT")
        .env_remove("RSTREAM_ENGINE")
        .env_remove("RSTREAM_AUTHENTICATION_TOKEN")
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null());
}

/// Runs `cmd` and returns its stdout, failing the test with both streams if it did not succeed.
pub fn success(mut cmd: Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{}\n{}", out.status, text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// Runs `cmd` and parses its stdout as JSON, whatever its exit code (`webtty exec` mirrors the remote code).
pub fn json_output(mut cmd: Command) -> serde_json::Value {
    let out = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("bad json ({e}): {text:?}; stderr {}", String::from_utf8_lossy(&out.stderr)))
}

/// A long-running emulated `rstream` whose stdout and stderr lines are collected; killed on drop.
pub struct EmulatedProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl EmulatedProcess {
    /// Spawns `cmd` (from [`CrossDevice::command`]) with both output streams collected.
    pub fn spawn(mut cmd: Command) -> EmulatedProcess {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn emulated rstream");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for stream in [Box::new(out) as Box<dyn std::io::Read + Send>, Box::new(err)] {
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        EmulatedProcess { child, lines }
    }

    /// Polls the output until a line satisfies `pick` (which returns what the caller wants from it); fails the
    /// test with everything printed so far after [`EMULATED_START`] or if the process exits.
    pub fn wait_line<T>(&mut self, what: &str, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let end = Instant::now() + EMULATED_START;
        loop {
            if let Some(v) = self.lines.lock().unwrap().iter().find_map(|l| pick(l)) {
                return v;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= end {
                panic!("emulated rstream never printed {what} ({exited:?}):\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for EmulatedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("rstream-cross-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
