//! The WebDAV sidecar never serves the agent's own secrets, even when they lie under `--fs-root`: a real
//! `rstream webtty server --listen --fs-root $HOME` whose config (`~/.rstream/config.yaml`), bearer token file
//! and engine state directory (`~/.local/state/rstream/engine`) sit inside the served tree. Every method on
//! them — by name, through symlinks, a hard link, an encoded name, a symlinked parent — gets 403, listings
//! leave them out, nothing can be planted where they belong, and the rest of the tree is still served.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use std::path::Path;
use std::process::Command;

use webtty_support::*;

const CONFIG_SECRET: &str = "SECRET-CONFIG-TOKEN";
const JWT_SECRET: &str = "SECRET-ENGINE-HS256";

/// A server whose HOME and --fs-root are its temp dir, with a config, a state dir and decoys inside.
/// `xdg_state`: set `XDG_STATE_HOME` to this directory below the root (else it is unset).
fn server_with_secrets(xdg_state: Option<&str>) -> LocalServer {
    LocalServer::start_with(&[], |cmd: &mut Command, dir: &Path| {
        std::fs::create_dir_all(dir.join(".rstream")).unwrap();
        std::fs::write(dir.join(".rstream/config.yaml"), format!("contexts: []\n# {CONFIG_SECRET}\n")).unwrap();
        std::fs::create_dir_all(dir.join(".local/state/rstream/engine")).unwrap();
        std::fs::write(dir.join(".local/state/rstream/engine/jwt-secret"), JWT_SECRET).unwrap();
        std::fs::write(dir.join("public.txt"), "public\n").unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink(dir.join(".rstream/config.yaml"), dir.join("link-config")).unwrap();
        std::os::unix::fs::symlink(dir.join(".local/state/rstream/engine"), dir.join("link-state")).unwrap();
        std::os::unix::fs::symlink("..", dir.join("sub/up")).unwrap();
        cmd.arg("--fs-root").arg(dir).env("HOME", dir).env_remove("RSTREAM_CONFIG");
        match xdg_state {
            Some(state) => cmd.env("XDG_STATE_HOME", dir.join(state)),
            None => cmd.env_remove("XDG_STATE_HOME"),
        };
    })
}

fn status(resp: &str) -> &str {
    resp.get(9..12).unwrap_or(resp)
}

#[test]
fn secrets_under_the_root_are_refused_by_every_method_and_every_alias() {
    let server = server_with_secrets(None);
    std::fs::hard_link(&server.token_file, server.dir.join("hard")).unwrap();
    let dav = |method: &str, path: &str, extra: &str, body: &str| {
        http_request(&server.addr, method, path, Some(&server.token), extra, body)
    };
    let secrets = [
        "/fs/.rstream/config.yaml",
        "/fs/.rstream",
        "/fs/.rstream/",
        "/fs/token",
        "/fs/hard",
        "/fs/link-config",
        "/fs/link-state/jwt-secret",
        "/fs/.local/state/rstream/engine",
        "/fs/.local/state/rstream/engine/jwt-secret",
        "/fs/sub/up/token",
        "/fs/sub/up/.rstream/config.yaml",
        "/fs/%2erstream/config%2Eyaml",
        "/fs//./.rstream//config.yaml",
    ];
    for path in secrets {
        let get = dav("GET", path, "", "");
        assert_eq!(status(&get), "403", "GET {path}: {get}");
        assert!(!get.contains(CONFIG_SECRET) && !get.contains(JWT_SECRET) && !get.contains(&server.token));
        let propfind = dav("PROPFIND", path, "Depth: 0\r\n", "");
        assert_eq!(status(&propfind), "403", "PROPFIND {path}: {propfind}");
        for (method, extra) in [("LOCK", ""), ("PROPPATCH", ""), ("DELETE", "")] {
            let body = match method {
                "LOCK" => "<?xml version=\"1.0\"?><D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>",
                "PROPPATCH" => "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><x:y xmlns:x=\"urn:x\">1</x:y></D:prop></D:set></D:propertyupdate>",
                _ => "",
            };
            let resp = dav(method, path, extra, body);
            assert_eq!(status(&resp), "403", "{method} {path}: {resp}");
        }
        let copy = dav("COPY", path, "Destination: /fs/stolen\r\n", "");
        assert_eq!(status(&copy), "403", "COPY {path}: {copy}");
        assert!(!server.dir.join("stolen").exists(), "COPY {path} wrote a copy");
        let moved = dav("MOVE", path, "Destination: /fs/moved\r\n", "");
        assert_eq!(status(&moved), "403", "MOVE {path}: {moved}");
    }
    for path in ["/fs/.rstream/config.yaml", "/fs/token", "/fs/hard", "/fs/link-config", "/fs/link-state/new"] {
        let put = dav("PUT", path, "", "attacker content");
        assert_eq!(status(&put), "403", "PUT {path}: {put}");
    }
    // Directories holding secrets cannot be taken along, and nothing can replace a secret.
    for (method, path, extra) in [
        ("DELETE", "/fs/.local", ""),
        ("COPY", "/fs/.local", "Destination: /fs/local-copy\r\n"),
        ("MOVE", "/fs/.local/state", "Destination: /fs/state-moved\r\n"),
        ("COPY", "/fs/public.txt", "Destination: /fs/token\r\n"),
        ("MOVE", "/fs/public.txt", "Destination: /fs/.rstream/config.yaml\r\n"),
        ("COPY", "/fs/sub", "Destination: /fs/.local/state/rstream/engine\r\n"),
    ] {
        let resp = dav(method, path, extra, "");
        assert_eq!(status(&resp), "403", "{method} {path} {extra}: {resp}");
    }
    assert!(!server.dir.join("local-copy").exists() && !server.dir.join("state-moved").exists());
    let config = std::fs::read_to_string(server.dir.join(".rstream/config.yaml")).unwrap();
    assert!(config.contains(CONFIG_SECRET), "config changed: {config}");
    assert_eq!(std::fs::read_to_string(server.dir.join(".local/state/rstream/engine/jwt-secret")).unwrap(), JWT_SECRET);
    assert_eq!(std::fs::read_to_string(&server.token_file).unwrap().trim(), server.token);
    assert!(server.dir.join("public.txt").exists());

    // The rest of the tree is served.
    let public = dav("GET", "/fs/public.txt", "", "");
    assert!(public.starts_with("HTTP/1.1 200") && public.ends_with("public\n"), "{public}");
    assert_eq!(status(&dav("GET", "/fs/sub/up/public.txt", "", "")), "200");
    assert_eq!(status(&dav("PUT", "/fs/sub/new.txt", "", "new")), "201");
    assert_eq!(status(&dav("COPY", "/fs/sub/new.txt", "Destination: /fs/copied.txt\r\n", "")), "201");
    assert_eq!(status(&dav("DELETE", "/fs/copied.txt", "", "")), "204");
}

#[test]
fn listings_leave_the_secrets_out() {
    let server = server_with_secrets(None);
    std::fs::hard_link(&server.token_file, server.dir.join("hard")).unwrap();
    let dav = |method: &str, path: &str, extra: &str| {
        http_request(&server.addr, method, path, Some(&server.token), extra, "")
    };
    let root = dav("PROPFIND", "/fs/", "Depth: 1\r\n");
    assert_eq!(status(&root), "207", "{root}");
    assert!(root.contains("/fs/public.txt") && root.contains("/fs/sub/") && root.contains("/fs/.local/"), "{root}");
    for hidden in ["/fs/.rstream", "/fs/token", "/fs/hard", "/fs/link-config", "/fs/link-state"] {
        assert!(!root.contains(&format!("<D:href>{hidden}")), "{hidden} listed: {root}");
    }
    let state = dav("PROPFIND", "/fs/.local/state/rstream/", "Depth: 1\r\n");
    assert_eq!(status(&state), "207", "{state}");
    assert!(!state.contains("engine"), "state dir listed: {state}");
    let text = dav("GET", "/fs/", "");
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("public.txt\n"), "{text}");
    for hidden in [".rstream/", "token\n", "hard\n", "link-config\n", "link-state\n"] {
        assert!(!text.contains(&format!("\n{hidden}")), "{hidden:?} listed: {text}");
    }
}

#[test]
fn nothing_can_be_planted_where_a_missing_secret_belongs() {
    // The engine state dir does not exist yet: it would be created at $XDG_STATE_HOME/rstream/engine.
    let server = server_with_secrets(Some("xdg"));
    let dav = |method: &str, path: &str, extra: &str, body: &str| {
        http_request(&server.addr, method, path, Some(&server.token), extra, body)
    };
    assert_eq!(status(&dav("MKCOL", "/fs/xdg", "", "")), "201");
    assert_eq!(status(&dav("MKCOL", "/fs/xdg/rstream", "", "")), "201");
    let mkcol = dav("MKCOL", "/fs/xdg/rstream/engine", "", "");
    assert_eq!(status(&mkcol), "403", "{mkcol}");
    assert_eq!(status(&dav("MKCOL", "/fs/decoy", "", "")), "201");
    assert_eq!(status(&dav("PUT", "/fs/decoy/jwt-secret", "", "attacker key")), "201");
    let moved = dav("MOVE", "/fs/decoy", "Destination: /fs/xdg/rstream/engine\r\n", "");
    assert_eq!(status(&moved), "403", "{moved}");
    assert!(!server.dir.join("xdg/rstream/engine").exists(), "a state dir was planted");
}

#[test]
fn webtty_fs_read_of_a_secret_fails_and_of_the_rest_works() {
    let server = server_with_secrets(None);
    let fs = |path: &str| {
        Command::new(BIN)
            .args(["webtty", "fs", "--url", &format!("http://{}", server.addr), "--auth-token-file"])
            .arg(&server.token_file)
            .args(["read", path])
            .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
            .output()
            .unwrap()
    };
    for secret in ["/.rstream/config.yaml", "/link-config", "/token", "/.local/state/rstream/engine/jwt-secret"] {
        let out = fs(secret);
        assert!(!out.status.success(), "read {secret} succeeded");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains(CONFIG_SECRET) && !stdout.contains(JWT_SECRET), "{stdout}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("403"), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = fs("/public.txt");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "public\n");
}
