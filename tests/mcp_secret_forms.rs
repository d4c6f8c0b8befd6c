//! The MCP server's last line of defence, against a device that holds the operator's secrets in disguise: a real
//! `rstream mcp serve` reads and runs on a real local `rstream webtty server --listen --fs-root DIR` whose files
//! contain the context token plainly, as base64 and base64url (padded or not), inside the base64 of larger blobs
//! at each of the three byte offsets, wrapped at 76 columns, and cut by `max_bytes` or the exec output cap in the
//! middle; and copies of the engine's HS256 secret and private keys (the default state dir and the one next to a
//! context's CA file). No result may carry any of them.

mod mcp_common;
mod webtty_support;

use std::path::PathBuf;

use mcp_common::{scratch, wire, Mcp};
use rstream::encoding::Base64;
use serde_json::{json, Value};
use webtty_support::LocalServer;

/// Shortest run of a secret's characters a result may never contain.
const WINDOW: usize = 12;

/// A realistic context token (HS256 JWT shape).
fn context_token() -> String {
    let header = Base64::UrlSafeNoPad.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = Base64::UrlSafeNoPad
        .encode(br#"{"iat":1700000000,"sub":"scrub-test","permissions":["tunnels.streams.create-delete"]}"#);
    let signature: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
    format!("{header}.{claims}.{}", Base64::UrlSafeNoPad.encode(&signature))
}

/// A PEM private key of random-looking bytes, wrapped at 64 columns.
fn fake_key_pem(seed: u8) -> String {
    let der: Vec<u8> = (0..138u8).map(|i| i.wrapping_mul(seed).wrapping_add(seed / 2)).collect();
    let body = Base64::Standard.encode(&der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

/// Whether `output` contains any [`WINDOW`]-character run of `needle`.
fn leaks(output: &str, needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    chars.windows(WINDOW.min(chars.len())).map(|w| w.iter().collect::<String>()).find(|w| output.contains(w.as_str()))
}

/// Characters of the base64 of `blob` that encode only bytes of `blob[at..at + len]` (whole 3-byte groups).
fn encoded_core(blob: &[u8], at: usize, len: usize) -> String {
    let text = Base64::Standard.encode(blob);
    text[at.div_ceil(3) * 4..(at + len) / 3 * 4].to_owned()
}

/// Everything an attacker could hope to find of `secret` in `output`: the secret, its base64 and base64url
/// forms, and windows of any of them.
fn assert_clean(what: &str, output: &str, secret: &str) {
    let std = Base64::Standard.encode(secret.as_bytes());
    let url = Base64::UrlSafeNoPad.encode(secret.as_bytes());
    for form in [secret, std.as_str(), url.as_str()] {
        if let Some(w) = leaks(output, form) {
            panic!("{what} leaks {w:?} of {form:?}:\n{output}");
        }
    }
}

struct Setup {
    server: LocalServer,
    files: PathBuf,
    token: String,
    engine_secret: String,
    context_state_secret: String,
    key_pem: String,
    mcp: Mcp,
}

async fn setup(tag: &str) -> Setup {
    let dir = scratch(tag);
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let server = LocalServer::start(&["--fs-root", files.to_str().unwrap()]);
    let token = context_token();
    // The default engine state dir (XDG_STATE_HOME) and another one found next to a context's CA file.
    let default_state = dir.join("xdg/rstream/engine");
    std::fs::create_dir_all(&default_state).unwrap();
    let engine_secret = "5f1e0c9a7b3d2e4f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f".to_owned();
    std::fs::write(default_state.join("jwt-secret"), format!("{engine_secret}\n")).unwrap();
    let key_pem = fake_key_pem(29);
    std::fs::write(default_state.join("key.pem"), &key_pem).unwrap();
    std::fs::write(default_state.join("ca-key.pem"), fake_key_pem(53)).unwrap();
    let context_state = dir.join("other-engine");
    std::fs::create_dir_all(&context_state).unwrap();
    let context_state_secret = "0123456789abcdef-second-engine-secret".to_owned();
    std::fs::write(context_state.join("jwt-secret"), &context_state_secret).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\ndefaults:\n  context:\n    name: lab\ncontexts:\n\
             - name: lab\n  engine: 127.0.0.1:9\n  auth:\n    token:\n      storage:\n        kind: inline\n        value: {token}\n\
             - name: other\n  engine: 127.0.0.1:9\n  transport:\n    tls:\n      caFile: {}\n",
            context_state.join("ca.pem").display()
        ),
    )
    .unwrap();
    let xdg = dir.join("xdg");
    let env = [("RSTREAM_WEBTTY_AUTH_TOKEN", server.token.as_str()), ("XDG_STATE_HOME", xdg.to_str().unwrap())];
    let mcp = Mcp::start(&config, &env, None).await;
    Setup { server, files, token, engine_secret, context_state_secret, key_pem, mcp }
}

impl Setup {
    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.files.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn read(&self, name: &str, extra: Value) -> Value {
        let mut args = json!({"url": self.server.url(), "path": format!("/{name}")});
        args.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::to_value(self.mcp.call("rstream_webtty_fs_read", args).await).unwrap()
    }

    async fn exec(&self, script: &str) -> String {
        let args = json!({"url": self.server.url(), "command": ["sh", "-c", script]});
        wire(&self.mcp.call("rstream_webtty_exec", args).await)
    }
}

/// Whether `shown` ends with a prefix (one byte or more) of `secret`.
fn ends_with_prefix(shown: &[u8], secret: &str) -> bool {
    (1..=secret.len()).any(|n| shown.ends_with(&secret.as_bytes()[..n]))
}

/// Blobs holding `secret` at byte offsets 0, 1 and 2 modulo 3, and where its bytes start.
fn blobs(secret: &str) -> Vec<(Vec<u8>, usize)> {
    (0..3)
        .map(|k| {
            let mut blob: Vec<u8> = b"\x89PNG\r\n\x1a\n binary header ".to_vec();
            blob.extend(std::iter::repeat_n(b'#', k));
            let at = blob.len();
            blob.extend_from_slice(secret.as_bytes());
            blob.extend_from_slice(b" trailing bytes \x00\x01\x02");
            (blob, at)
        })
        .collect()
}

#[tokio::test]
async fn encoded_forms_of_the_token_are_scrubbed_from_reads_and_exec_output() {
    let s = setup("forms").await;
    let t = s.token.clone();
    let std = Base64::Standard.encode(t.as_bytes());
    let url = Base64::UrlSafeNoPad.encode(t.as_bytes());
    s.file(
        "forms.txt",
        format!("plain {t}\nstd {std}\nstd-nopad {}\nurl {url}\nurl-pad {url}==\n", std.trim_end_matches('=')),
    );
    let read = s.read("forms.txt", json!({})).await.to_string();
    assert_clean("read of forms.txt", &read, &t);
    assert!(read.contains("[redacted]"), "{read}");
    let exec = s.exec(&format!("cat {0}; base64 {0}; base64 -w0 {0}", s.files.join("forms.txt").display())).await;
    assert_clean("exec cat/base64 of forms.txt", &exec, &t);

    for (k, (blob, at)) in blobs(&t).into_iter().enumerate() {
        let core = encoded_core(&blob, at, t.len());
        let name = format!("blob{k}.bin");
        s.file(&name, &blob);
        let read = s.read(&name, json!({"encoding": "base64"})).await.to_string();
        assert!(leaks(&read, &core).is_none(), "base64 read of a blob at offset {k} leaks the token:\n{read}");
        let b64 = s.file(&format!("blob{k}.b64"), Base64::Standard.encode(&blob));
        let read = s.read(&format!("blob{k}.b64"), json!({})).await.to_string();
        assert!(leaks(&read, &core).is_none(), "text read of base64 at offset {k} leaks the token:\n{read}");
        let url_core = core.replace('+', "-").replace('/', "_");
        let exec = s.exec(&format!("cat {}; base64 -w0 {}", b64.display(), s.files.join(&name).display())).await;
        assert!(leaks(&exec, &core).is_none(), "exec output at offset {k} leaks the token:\n{exec}");
        let url_blob = s.file(&format!("blob{k}.url"), Base64::UrlSafeNoPad.encode(&blob));
        let exec = s.exec(&format!("cat {}", url_blob.display())).await;
        assert!(leaks(&exec, &url_core).is_none(), "base64url at offset {k} leaks the token:\n{exec}");
    }
}

#[tokio::test]
async fn truncation_never_leaves_a_prefix_of_the_token() {
    let s = setup("cut").await;
    let t = s.token.clone();
    let lead = "x".repeat(100);
    let after = " and more text after the token\n";
    s.file("cut.txt", format!("{lead}{t}{after}"));
    let whole = format!("{lead}[redacted]{after}");
    for into in [1, 5, WINDOW, t.len() / 2, t.len() - 1] {
        let max = lead.len() + into;
        let read = s.read("cut.txt", json!({"max_bytes": max})).await;
        let content = read["structuredContent"]["content"].as_str().unwrap();
        // The token is scrubbed before the cut: when what is left fits, the whole file is shown.
        assert_eq!(read["structuredContent"]["truncated"], json!(content != whole), "{read}");
        let text = read["content"][0]["text"].as_str().unwrap();
        for shown in [content, text.split("\n[truncated").next().unwrap()] {
            assert!(shown.len() <= max && shown.starts_with(&lead), "{shown:?}");
            assert!(!ends_with_prefix(shown.as_bytes(), &t), "cut {into} bytes into the token: {shown:?}");
        }

        let read = s.read("cut.txt", json!({"max_bytes": max, "encoding": "base64"})).await;
        let content = read["structuredContent"]["content"].as_str().unwrap();
        let bytes = Base64::Standard.decode(content).expect("no secret inside, so the base64 stays intact");
        assert!(bytes.len() <= max && bytes.starts_with(lead.as_bytes()), "{content}");
        assert!(!ends_with_prefix(&bytes, &t), "base64 read cut {into} bytes into the token: {content}");
    }

    // The exec output cap (4 MiB of stdout+stderr) falls 20 bytes into the token.
    let pad = 4 * 1024 * 1024 - 20;
    let out = s.exec(&format!("head -c {pad} /dev/zero | tr '\\0' x; cat {}", s.files.join("cut.txt").display())).await;
    let result: Value = serde_json::from_str(&out).unwrap();
    let stdout = result["structuredContent"]["stdout"].as_str().unwrap();
    let tail = &stdout[stdout.len().saturating_sub(200)..];
    assert_eq!(result["structuredContent"]["truncated"], true, "{tail}");
    assert!(stdout.len() <= 4 * 1024 * 1024 && stdout.starts_with("xxx"), "{tail}");
    assert!(!ends_with_prefix(stdout.as_bytes(), &t), "the exec cap leaves a prefix of the token: {tail}");
}

#[tokio::test]
async fn the_engine_secret_and_private_keys_are_scrubbed_when_readable() {
    let s = setup("engine").await;
    s.file("jwt-secret", format!("{}\n", s.engine_secret));
    s.file("key.pem", &s.key_pem);
    s.file("notes.txt", format!("second engine: {}\n", s.context_state_secret));
    let key_body: Vec<&str> = s.key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for name in ["jwt-secret", "key.pem", "notes.txt"] {
        let read = s.read(name, json!({})).await.to_string();
        let exec = s.exec(&format!("cat {0}; base64 -w0 {0}", s.files.join(name).display())).await;
        for output in [read, exec] {
            assert_clean(name, &output, &s.engine_secret);
            assert_clean(name, &output, &s.context_state_secret);
            for line in &key_body {
                assert!(leaks(&output, line).is_none(), "{name}: a line of the private key leaks:\n{output}");
            }
        }
    }
}
