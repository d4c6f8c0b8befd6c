//! The device image built for another CPU, run under qemu-user next to host-built peers on loopback.
//!
//! `make test-cross` (cross/test-cross.sh) builds the static device image for each architecture and runs these
//! tests with:
//! - `RSTREAM_CROSS_BIN`: the image (e.g. built for `aarch64-unknown-linux-musl`, `--features device`);
//! - `RSTREAM_CROSS_RUNNER`: how to start it, e.g. `qemu-aarch64-static` or `qemu-arm-static -cpu cortex-a7`
//!   (binfmt_misc is not registered on the build machines, so qemu is always named explicitly);
//! - `RSTREAM_CROSS_ARCH`: the `std::env::consts::ARCH` the image was built for (`aarch64`, `arm`).
//!
//! The host binary under test (`CARGO_BIN_EXE_rstream`, all features) plays the engine and the operator. Plain
//! `cargo test` has no image, so the tests are ignored there. Under qemu-user only the agent itself is emulated:
//! programs it spawns run natively on the host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The cross-built device image and the emulator that runs it.
struct CrossDevice {
    bin: PathBuf,
    runner: Vec<String>,
    arch: String,
}

impl CrossDevice {
    /// Reads the image description from the environment `make test-cross` sets.
    fn from_env() -> CrossDevice {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run `make test-cross`"));
        let bin = PathBuf::from(var("RSTREAM_CROSS_BIN"));
        assert!(bin.is_file(), "RSTREAM_CROSS_BIN does not name a file: {}", bin.display());
        let runner: Vec<String> = var("RSTREAM_CROSS_RUNNER").split_whitespace().map(str::to_owned).collect();
        assert!(!runner.is_empty(), "RSTREAM_CROSS_RUNNER is empty");
        CrossDevice { bin, runner, arch: var("RSTREAM_CROSS_ARCH") }
    }

    /// `rstream <args>` on the emulated CPU, with `RSTREAM_CONFIG=config`.
    fn command(&self, config: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.runner[0]);
        cmd.args(&self.runner[1..]).arg(&self.bin).args(args);
        isolate(&mut cmd, config);
        cmd
    }
}

/// `rstream <args>` built for this host, with `RSTREAM_CONFIG=config`.
fn host(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rstream"));
    cmd.args(args);
    isolate(&mut cmd, config);
    cmd
}

fn isolate(cmd: &mut Command, config: &Path) {
    cmd.env("RSTREAM_CONFIG", config)
        .env_remove("RSTREAM_CONTEXT")
        .env_remove("RSTREAM_ENGINE")
        .env_remove("RSTREAM_AUTHENTICATION_TOKEN");
}

/// Runs `cmd` and returns its stdout, failing the test with both streams if it did not succeed.
fn success(mut cmd: Command) -> String {
    let out: Output = cmd.output().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{}\n{}", out.status, text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("rstream-cross-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_image_reports_its_target_arch_and_only_the_device_role() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("version");
    let out = success(device.command(&scratch.0.join("config.yaml"), &["version"]));
    assert!(out.contains(&format!("({})", device.arch)), "image does not report arch {}: {out}", device.arch);
    assert!(out.trim_end().ends_with("features: device"), "image is not a device-only build: {out}");
}

#[test]
#[ignore = "needs a cross-built device image: make test-cross"]
fn emulated_device_and_host_share_one_config_file() {
    let device = CrossDevice::from_env();
    let scratch = Scratch::new("config");
    let config = scratch.0.join("etc").join("config.yaml");
    let token = scratch.0.join("token");
    std::fs::write(&token, "device-token-value\n").unwrap();
    let t = token.to_str().unwrap();

    // Written on the host, read and extended on the emulated device, read back on the host.
    success(host(&config, &["context", "create", "lab", "--engine", "127.0.0.1:8443", "--token-file", t]));
    let listed = success(device.command(&config, &["context", "list", "-o", "json"]));
    assert!(listed.contains(r#""name":"lab","default":true,"engine":"127.0.0.1:8443""#), "{listed}");
    assert!(!listed.contains("device-token-value"), "the token leaked: {listed}");

    let args = ["context", "create", "pi", "--engine", "relay.example:443", "--token-file", t, "--default"];
    success(device.command(&config, &args));
    let shown = success(host(&config, &["context", "show", "-o", "json"]));
    assert!(shown.contains(r#""name":"pi","default":true,"engine":"relay.example:443""#), "{shown}");

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the emulated device wrote the config with mode {mode:o}");
}
