//! The WebDAV sidecar mounted at `/fs` of a local `rstream webtty server --fs-root`: behind the same bearer
//! token as the terminal, read-write or read-only, next to a working exec endpoint.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use webtty_support::*;

/// Sends one HTTP/1.1 request (with `Connection: close`) and returns the whole response as text.
fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> String {
    http_request(addr, method, path, token, "", body)
}

#[test]
fn fs_sidecar_serves_the_root_behind_the_token() {
    let root = TempDir::new("fsroot");
    std::fs::write(root.join("hello.txt"), "hi from the device\n").unwrap();
    let server = LocalServer::start(&["--fs-root", root.0.to_str().unwrap()]);
    let token = Some(server.token.as_str());

    assert!(http(&server.addr, "GET", "/fs/hello.txt", None, "").starts_with("HTTP/1.1 401"));
    let got = http(&server.addr, "GET", "/fs/hello.txt", token, "");
    assert!(got.starts_with("HTTP/1.1 200") && got.ends_with("hi from the device\n"), "{got}");

    let put = http(&server.addr, "PUT", "/fs/new.txt", token, "written remotely");
    assert!(put.starts_with("HTTP/1.1 201") || put.starts_with("HTTP/1.1 204"), "{put}");
    assert_eq!(std::fs::read_to_string(root.join("new.txt")).unwrap(), "written remotely");

    let listing = http_request(&server.addr, "PROPFIND", "/fs/", token, "Depth: 1\r\n", "");
    assert!(listing.starts_with("HTTP/1.1 207") && listing.contains("/fs/hello.txt"), "{listing}");

    let escape = http(&server.addr, "GET", "/fs/../../etc/passwd", token, "");
    assert!(!escape.starts_with("HTTP/1.1 200"), "{escape}");

    // The terminal endpoint still works next to the sidecar.
    let out = server.exec(&["--", "cat", root.join("new.txt").to_str().unwrap()]);
    assert_eq!(exec_json(&out)["stdout"], "written remotely");
}

#[test]
fn read_only_sidecar_refuses_writes() {
    let root = TempDir::new("fsroot-ro");
    let server = LocalServer::start(&["--fs-root", root.0.to_str().unwrap(), "--fs-read-only"]);
    let put = http(&server.addr, "PUT", "/fs/x.txt", Some(&server.token), "nope");
    assert!(put.starts_with("HTTP/1.1 403"), "{put}");
    assert!(!root.join("x.txt").exists());
}

#[test]
fn fs_flags_without_a_root_are_refused() {
    let out = std::process::Command::new(BIN)
        .args(["webtty", "server", "--listen", "127.0.0.1:0", "--allow-unauthenticated", "--fs-read-only"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("require --fs-root"));
}
