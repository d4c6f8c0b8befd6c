//! The WebDAV sidecar of the real binary (`rstream webtty server --listen … --fs-root`), driven by our own CLI,
//! raw sockets and an independent client (rclone): big transfers keep the server's memory flat, an interrupted
//! or oversize (`--fs-max-upload-size`) upload changes nothing, hostile paths never reach outside the root.

#![cfg(all(feature = "device", feature = "operator"))]

mod webtty_support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use webtty_support::proc::memory_kib;
use webtty_support::*;

fn fs_cli(server: &LocalServer, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["webtty", "fs", "--url", &format!("http://{}", server.addr), "--auth-token-file"])
        .arg(&server.token_file)
        .args(args)
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: std::process::Output) {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn fifty_mib_up_and_down_keep_the_server_memory_flat() {
    let root = TempDir::new("fsroot-big");
    let local = TempDir::new("fslocal-big");
    let server = LocalServer::start(&["--fs-root", root.0.to_str().unwrap()]);
    let data: Vec<u8> = (0..50 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 23) as u8).collect();
    let src = local.join("big.bin");
    std::fs::write(&src, &data).unwrap();
    ok(fs_cli(&server, &["ls", "/"])); // warm up: first request, allocator arenas
    let (_, before) = memory_kib(server.child.id());

    ok(fs_cli(&server, &["upload", src.to_str().unwrap(), "/big.bin"]));
    assert!(std::fs::read(root.join("big.bin")).unwrap() == data, "upload corrupted");
    let back = local.join("back.bin");
    ok(fs_cli(&server, &["download", "/big.bin", back.to_str().unwrap()]));
    assert!(std::fs::read(&back).unwrap() == data, "download corrupted");

    let (peak, now) = memory_kib(server.child.id());
    // 50 MiB went each way; the server may use a few buffers, never a share of the file.
    assert!(peak.saturating_sub(before) < 8 * 1024, "server peak grew from {before} KiB to {peak} KiB");
    eprintln!("server RSS before {before} KiB, peak {peak} KiB, after {now} KiB for 2 × 50 MiB");
}

#[test]
fn an_interrupted_upload_leaves_the_previous_file_and_no_temp_file() {
    let root = TempDir::new("fsroot-cut");
    std::fs::write(root.join("doc.txt"), "version 1\n").unwrap();
    let server = LocalServer::start(&["--fs-root", root.0.to_str().unwrap()]);
    let mut tcp = std::net::TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "PUT /fs/doc.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        server.token,
        10 * 1024 * 1024
    );
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(&vec![b'x'; 1024 * 1024]).unwrap();
    // The temp file exists while the body streams in…
    poll(Duration::from_secs(10), || root_has_temp(&root.0).then_some(())).expect("upload never started");
    drop(tcp); // …and the client dies mid-body.
    poll(Duration::from_secs(10), || (!root_has_temp(&root.0)).then_some(())).expect("temp file left behind");
    assert_eq!(std::fs::read_to_string(root.join("doc.txt")).unwrap(), "version 1\n");
    // The server is still fine.
    let out = fs_cli(&server, &["read", "/doc.txt"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "version 1\n");
}

fn root_has_temp(root: &Path) -> bool {
    std::fs::read_dir(root).unwrap().filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
}

/// Sends an authorized `PUT /fs/<path>` with `headers` (each ending in CRLF) and the raw `body` bytes (already
/// framed as the headers say) on a keep-alive connection; returns the status and the response body.
fn raw_put(server: &LocalServer, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
    let mut tcp = std::net::TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!("PUT /fs/{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{headers}\r\n", server.token);
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(body).unwrap();
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = tcp.read(&mut buf).expect("read the response");
        assert!(n > 0, "connection closed before a response: {:?}", String::from_utf8_lossy(&resp));
        resp.extend_from_slice(&buf[..n]);
        if let Some(at) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&resp[..end]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .map_or(0, |(_, v)| v.trim().parse().unwrap());
    while resp.len() < end + len {
        let n = tcp.read(&mut buf).expect("read the response body");
        assert!(n > 0, "response body cut short: {head}");
        resp.extend_from_slice(&buf[..n]);
    }
    (status, String::from_utf8_lossy(&resp[end..end + len]).into_owned())
}

/// `body` as one chunk of at most `chunk` bytes after another, then the last chunk.
fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn uploads_over_fs_max_upload_size_are_413_and_leave_the_old_file_and_no_temp_file() {
    const LIMIT: usize = 1000;
    let root = TempDir::new("fsroot-limit");
    std::fs::write(root.join("doc.txt"), "version 1\n").unwrap();
    let server = LocalServer::start(&["--fs-root", root.0.to_str().unwrap(), "--fs-max-upload-size", "1000"]);
    let big = vec![b'x'; LIMIT + 1];

    // Declared too large: refused before a byte of the body is taken, with the limit in the message.
    let (status, body) = raw_put(&server, "doc.txt", &format!("Content-Length: {}\r\n", big.len()), &big);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("upload larger than the 1000-byte limit"), "{body}");
    assert_eq!(std::fs::read_to_string(root.join("doc.txt")).unwrap(), "version 1\n");
    assert!(!root_has_temp(&root.0), "a refused upload left a temp file");

    // Chunked, so the size is only known on the way: refused once the limit is passed, the temp file removed.
    let (status, body) = raw_put(&server, "doc.txt", "Transfer-Encoding: chunked\r\n", &chunked(&big, 300));
    assert_eq!(status, 413, "{body}");
    assert_eq!(std::fs::read_to_string(root.join("doc.txt")).unwrap(), "version 1\n");
    assert!(!root_has_temp(&root.0), "an oversize chunked upload left a temp file");

    // Exactly at the limit, either way, is fine.
    let exact = vec![b'y'; LIMIT];
    let (status, body) = raw_put(&server, "doc.txt", &format!("Content-Length: {LIMIT}\r\n"), &exact);
    assert_eq!(status, 204, "replacing an existing file: {body}");
    assert!(std::fs::read(root.join("doc.txt")).unwrap() == exact);
    let (status, body) = raw_put(&server, "new.txt", "Transfer-Encoding: chunked\r\n", &chunked(&exact, 300));
    assert_eq!(status, 201, "creating a file: {body}");
    assert!(std::fs::read(root.join("new.txt")).unwrap() == exact);
    assert!(!root_has_temp(&root.0));
}

/// Sends a raw request line (the path exactly as given) and returns the status code.
fn raw_status(server: &LocalServer, request_line: &str, extra: &str) -> u16 {
    let mut tcp = std::net::TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{request_line} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{extra}Content-Length: 4\r\nConnection: close\r\n\r\nevil",
        server.token
    );
    tcp.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = tcp.read_to_string(&mut resp);
    resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn hostile_paths_through_the_binary_never_leave_the_root() {
    let base = TempDir::new("fs-hostile");
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("sentinel.txt"), "keep me\n").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    let server = LocalServer::start(&["--fs-root", root.to_str().unwrap()]);
    let cases = [
        ("GET /fs/../outside/sentinel.txt", ""),
        ("GET /fs/%2e%2e/outside/sentinel.txt", ""),
        ("GET /fs/..%2foutside%2fsentinel.txt", ""),
        ("GET /fs/escape/sentinel.txt", ""),
        ("GET /fs/etc/passwd", ""),
        ("PUT /fs/escape/sentinel.txt", ""),
        ("PUT /fs/%2e%2e/outside/sentinel.txt", ""),
        ("PUT /fs/a%00b", ""),
        ("DELETE /fs/escape/sentinel.txt", ""),
        ("MKCOL /fs/escape/newdir", ""),
        ("COPY /fs/", "Destination: /fs/../outside/copied\r\n"),
        ("MOVE /fs/etc", "Destination: /fs/moved\r\n"),
    ];
    for (line, extra) in cases {
        let status = raw_status(&server, line, extra);
        assert!(matches!(status, 400 | 403 | 404 | 409), "{line} {extra:?} → {status}");
    }
    assert_eq!(std::fs::read_to_string(outside.join("sentinel.txt")).unwrap(), "keep me\n");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "something was created outside the root");
}

#[test]
fn rclone_works_against_the_real_sidecar() {
    let root = TempDir::new("fsroot-rclone");
    let local = TempDir::new("fslocal-rclone");
    std::fs::write(local.join("a.txt"), "alpha\n").unwrap();
    std::fs::create_dir_all(local.join("sub")).unwrap();
    std::fs::write(local.join("sub/b.txt"), "beta\n").unwrap();
    let server = LocalServer::start(&["--fs-root", root.0.to_str().unwrap()]);
    let remote = format!(":webdav,url='http://{}/fs',vendor=other,bearer_token='{}':", server.addr, server.token);
    let rclone = |args: &[&str]| {
        let out = Command::new("rclone")
            .args(args)
            .env("RCLONE_CONFIG", local.join("rclone.conf"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run rclone ({e}): install it with `make deps`"));
        assert!(out.status.success(), "rclone {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    rclone(&["copy", local.0.to_str().unwrap(), &format!("{remote}data")]);
    assert_eq!(std::fs::read_to_string(root.join("data/sub/b.txt")).unwrap(), "beta\n");
    let listing = rclone(&["lsf", "-R", &format!("{remote}data")]);
    assert!(listing.contains("a.txt") && listing.contains("sub/b.txt"), "{listing}");
    rclone(&["delete", &format!("{remote}data/a.txt")]);
    assert!(!root.join("data/a.txt").exists());
}
