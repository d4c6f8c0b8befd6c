//! `rstream webtty fs` as a user types it, against a real `webtty server --listen … --fs-root`: connection flags
//! before or after the verb, every verb's help, uploads from pipes, FIFOs and process substitution, directories
//! refused by `read` and `download`, `-` as stdout, and downloads that never write through a planted symlink.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use webtty_support::*;

/// The nine verbs of `rstream webtty fs`.
const VERBS: [&str; 9] = ["ls", "stat", "read", "write", "upload", "download", "mkdir", "rm", "mv"];

/// `rstream webtty fs <args…>` with nothing on stdin.
fn fs(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["webtty", "fs"])
        .args(args)
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `rstream webtty fs --url <server> --auth-token-file <its token> <args…>`.
fn fs_on(server: &LocalServer, args: &[&str]) -> Output {
    let url = format!("http://{}", server.addr);
    fs(&[&["--url", &url, "--auth-token-file", server.token_file.to_str().unwrap()], args].concat())
}

/// Runs a bash script with `$RSTREAM` set to the binary and `$URL`/`$TOKEN` naming the server.
fn bash(server: &LocalServer, script: &str) -> Output {
    Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env("RSTREAM", BIN)
        .env("URL", format!("http://{}", server.addr))
        .env("TOKEN", &server.token_file)
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed ({:?}): {}", out.status, text(&out.stderr));
    text(&out.stdout)
}

fn served(root: &Path) -> LocalServer {
    LocalServer::start(&["--fs-root", root.to_str().unwrap()])
}

#[test]
fn connection_flags_work_before_and_after_the_verb() {
    let root = TempDir::new("fscli-flags");
    std::fs::write(root.join("README.md"), "# device\n").unwrap();
    let server = served(&root.0);
    let url = format!("http://{}", server.addr);
    let token = server.token_file.to_str().unwrap();

    let before = ok(fs(&["--url", &url, "--auth-token-file", token, "ls", "/"]));
    assert!(before.contains("/README.md"), "{before}");
    assert_eq!(ok(fs(&["ls", "--url", &url, "--auth-token-file", token, "/"])), before);
    assert_eq!(ok(fs(&["ls", "/", "--url", &url, "--auth-token-file", token])), before);
    assert_eq!(ok(fs(&["--url", &url, "ls", "--auth-token-file", token, "/"])), before);

    let json: serde_json::Value =
        serde_json::from_str(&ok(fs(&["ls", "--url", &url, "/", "-o", "json", "--auth-token-file", token]))).unwrap();
    assert_eq!(json[0]["path"], "/README.md", "{json}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(fs(&["-o", "json", "--url", &url, "--auth-token-file", token, "stat", "/README.md"])))
            .unwrap();
    assert_eq!((json["kind"].as_str(), json["size"].as_u64()), (Some("file"), Some(9)), "{json}");
    assert_eq!(ok(fs(&["read", "--url", &url, "--auth-token-file", token, "/README.md"])), "# device\n");

    // A flag the group does not know is still refused, wherever it is.
    let out = fs(&["ls", "--url", &url, "--auth-token-file", token, "--colour", "/"]);
    assert!(!out.status.success() && text(&out.stderr).contains("--colour"), "{}", text(&out.stderr));
    // -o on a verb whose stdout is the file itself is refused, not ignored.
    let out = fs(&["read", "--url", &url, "--auth-token-file", token, "-o", "json", "/README.md"]);
    assert!(!out.status.success() && text(&out.stderr).contains("-o"), "{}", text(&out.stderr));
}

#[test]
fn every_verb_help_shows_the_connection_flags_and_an_example() {
    for verb in VERBS {
        let help = ok(fs(&[verb, "--help"]));
        for flag in ["--url", "--auth-token-file", "--fs-path", "--tls-ca-file", "-o, --output"] {
            assert!(help.contains(flag), "`fs {verb} --help` lacks {flag}:\n{help}");
        }
        assert!(help.contains("Examples:") && help.contains(&format!("fs {verb}")), "`fs {verb} --help`:\n{help}");
    }
    let group = ok(fs(&["--help"]));
    assert!(group.contains("--url") && VERBS.iter().all(|v| group.contains(v)), "{group}");
}

#[test]
fn uploads_from_a_pipe_a_fifo_process_substitution_and_a_here_string_send_every_byte() {
    let root = TempDir::new("fscli-pipes");
    let server = served(&root.0);
    let fifo = root.0.parent().unwrap().join(format!("rstream-fscli-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let script = format!(
        r#"
        echo hi | "$RSTREAM" webtty fs --url "$URL" --auth-token-file "$TOKEN" upload /dev/stdin /pipe.txt
        "$RSTREAM" webtty fs --url "$URL" --auth-token-file "$TOKEN" upload <(printf 'from a substitution') /subst.txt
        "$RSTREAM" webtty fs --url "$URL" --auth-token-file "$TOKEN" upload /dev/stdin /here.txt <<< 'here string'
        mkfifo '{fifo}'
        (printf 'through a fifo' > '{fifo}') &
        "$RSTREAM" webtty fs --url "$URL" --auth-token-file "$TOKEN" upload '{fifo}' /fifo.txt
        wait
        rm '{fifo}'
        "#,
        fifo = fifo.display()
    );
    ok(bash(&server, &script));
    let got = |name: &str| std::fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got("pipe.txt"), "hi\n");
    assert_eq!(got("subst.txt"), "from a substitution");
    assert_eq!(got("here.txt"), "here string\n");
    assert_eq!(got("fifo.txt"), "through a fifo");

    // `-` is stdin.
    ok(bash(
        &server,
        r#"printf 'from stdin' | "$RSTREAM" webtty fs --url "$URL" --auth-token-file "$TOKEN" upload - /dash.txt"#,
    ));
    assert_eq!(got("dash.txt"), "from stdin");
}

#[test]
fn directories_are_refused_by_read_download_and_upload() {
    let root = TempDir::new("fscli-dirs");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    std::fs::write(root.join("logs/app.log"), "line\n").unwrap();
    let server = served(&root.0);
    let local = TempDir::new("fscli-dirs-local");
    let target = local.join("logs-copy");

    let out = fs_on(&server, &["download", "/logs", target.to_str().unwrap()]);
    assert!(!out.status.success(), "downloading a directory succeeded");
    assert!(text(&out.stderr).contains("/logs is a directory"), "{}", text(&out.stderr));
    assert!(!target.exists(), "a refused download left {}", target.display());
    assert_eq!(std::fs::read_dir(&local.0).unwrap().count(), 0, "a refused download left a file");

    let out = fs_on(&server, &["read", "/logs"]);
    assert!(!out.status.success(), "reading a directory succeeded: {:?}", text(&out.stdout));
    assert!(text(&out.stderr).contains("/logs is a directory"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "read printed {:?}", text(&out.stdout));

    let out = fs_on(&server, &["upload", local.0.to_str().unwrap(), "/dir"]);
    assert!(!out.status.success() && text(&out.stderr).contains("is a directory"), "{}", text(&out.stderr));
    assert!(!root.join("dir").exists());
}

#[test]
fn download_to_dash_writes_to_stdout_as_the_help_example_says() {
    let root = TempDir::new("fscli-dash");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    let log: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    std::fs::write(root.join("logs/app.log"), &log).unwrap();
    let server = served(&root.0);
    let out = ok(bash(
        &server,
        r#""$RSTREAM" webtty fs --url "$URL" --auth-token-file "$TOKEN" download /logs/app.log - | tail"#,
    ));
    let tail: String = (21..=30).map(|i| format!("line {i}\n")).collect();
    assert_eq!(out, tail);
    let whole = ok(fs(&[
        "download",
        "/logs/app.log",
        "-",
        "--url",
        &format!("http://{}", server.addr),
        "--auth-token-file",
        server.token_file.to_str().unwrap(),
    ]));
    assert_eq!(whole, log);
}

/// The process state letter of `pid` (`T` when stopped), from `/proc/<pid>/stat`.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().next()?.chars().next()
}

#[test]
fn download_never_writes_through_a_planted_symlink() {
    let root = TempDir::new("fscli-symlink");
    std::fs::write(root.join("secret.txt"), "from the device\n").unwrap();
    let server = served(&root.0);
    let local = TempDir::new("fscli-symlink-local");
    let victim = TempDir::new("fscli-symlink-victim");
    let victim_file = victim.join("victim.txt");
    std::fs::write(&victim_file, "victim\n").unwrap();
    let dest = local.join("out.txt");

    // The attacker shares the destination directory. It stops the download before it starts (so it knows the pid
    // the old writer put in its temp name), plants a symlink to the victim at that name, then lets it run.
    let child = Command::new("sh")
        .args(["-c", r#"kill -STOP $$; exec "$@""#, "sh", BIN, "webtty", "fs", "--url"])
        .arg(format!("http://{}", server.addr))
        .arg("--auth-token-file")
        .arg(&server.token_file)
        .args(["download", "/secret.txt"])
        .arg(&dest)
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    poll(Duration::from_secs(10), || (state(pid) == Some('T')).then_some(())).expect("the download never stopped");
    let predictable = local.join(&format!(".out.txt.rstream-download-{pid}.tmp"));
    std::os::unix::fs::symlink(&victim_file, &predictable).unwrap();
    let status = Command::new("kill").args(["-CONT", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "download failed: {}", text(&out.stderr));

    assert_eq!(std::fs::read_to_string(&victim_file).unwrap(), "victim\n", "the download wrote through the symlink");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "from the device\n");
    assert!(!std::fs::symlink_metadata(&dest).unwrap().file_type().is_symlink(), "the destination is a symlink");
    let mut names: Vec<String> =
        std::fs::read_dir(&local.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, [format!(".out.txt.rstream-download-{pid}.tmp"), "out.txt".to_owned()], "temp files left");

    // A symlink planted at the destination itself is replaced, never followed.
    std::fs::remove_file(&dest).unwrap();
    std::os::unix::fs::symlink(&victim_file, &dest).unwrap();
    ok(fs_on(&server, &["download", "/secret.txt", dest.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&victim_file).unwrap(), "victim\n", "the download followed the destination");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "from the device\n");

    // Nor does a symlink to a directory redirect the file into it (unless the user wrote the trailing `/`).
    let redirect = local.join("into");
    std::os::unix::fs::symlink(&victim.0, &redirect).unwrap();
    let out = fs_on(&server, &["download", "/secret.txt", redirect.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out.stderr).contains("symlink to a directory"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(&victim.0).unwrap().count(), 1, "the download landed in the linked directory");
}

#[test]
fn a_streamed_upload_over_the_servers_size_cap_fails_and_leaves_nothing() {
    let root = TempDir::new("fscli-cap");
    let server = LocalServer::start(&["--fs-root", root.0.to_str().unwrap(), "--fs-max-upload-size", "100000"]);
    let out = bash(
        &server,
        r#"head -c 300000 /dev/zero | "$RSTREAM" webtty fs upload --url "$URL" --auth-token-file "$TOKEN" - /big"#,
    );
    assert!(!out.status.success(), "an oversize streamed upload succeeded");
    assert!(text(&out.stderr).contains("413"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(&root.0).unwrap().count(), 0, "the refused upload left a file");
    let out = bash(
        &server,
        r#"head -c 100000 /dev/zero | "$RSTREAM" webtty fs upload --url "$URL" --auth-token-file "$TOKEN" - /fits"#,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::metadata(root.join("fits")).unwrap().len(), 100_000);
}
