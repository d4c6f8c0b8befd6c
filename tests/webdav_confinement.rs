//! Path confinement and read-only mode: hostile paths are refused and nothing outside the root (or, read-only,
//! anything at all) changes.

mod webdav_common;

use std::io::{Read, Write};
use std::time::Duration;

use rstream::http::RequestHead;
use rstream::webdav::FsConfig;
use webdav_common::{snapshot, DavServer, Tree};

/// Sends raw request bytes (targets a client library would normalise) and returns the status code.
fn raw_status(server: &DavServer, request: &str) -> u16 {
    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[test]
fn hostile_paths_are_refused_and_nothing_outside_changes() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    let host = server.addr.to_string();
    let dest = |d: &str| format!("\r\nDestination: {d}");
    let cases: Vec<(&str, String, String)> = vec![
        ("GET", "/fs/../outside/sentinel.txt".into(), String::new()),
        ("GET", "/fs/%2e%2e/outside/sentinel.txt".into(), String::new()),
        ("GET", "/fs/%2E%2E%2Foutside%2Fsentinel.txt".into(), String::new()),
        ("GET", "/fs/sub/..%2f..%2foutside/sentinel.txt".into(), String::new()),
        ("GET", "/fs/hello.txt%00.png".into(), String::new()),
        ("GET", "/fs/..\\outside\\sentinel.txt".into(), String::new()),
        ("GET", "/fs/%5c..%5coutside".into(), String::new()),
        ("GET", "/fs/to_etc/passwd".into(), String::new()),
        ("GET", "/fs/sentinel_link".into(), String::new()),
        ("GET", "/fs/to_outside/sentinel.txt".into(), String::new()),
        ("GET", "/fs/loop".into(), String::new()),
        ("GET", "/fs/loop/x".into(), String::new()),
        ("PUT", "/fs/../outside/sentinel.txt".into(), String::new()),
        ("PUT", "/fs/to_outside/sentinel.txt".into(), String::new()),
        ("PUT", "/fs/sentinel_link".into(), String::new()),
        ("PUT", "/fs/to_outside/new.txt".into(), String::new()),
        ("DELETE", "/fs/to_outside/sentinel.txt".into(), String::new()),
        ("MKCOL", "/fs/to_outside/newdir".into(), String::new()),
        ("PROPFIND", "/fs/to_etc".into(), "\r\nDepth: 1".into()),
        ("PROPFIND", "/fs/to_outside/".into(), "\r\nDepth: 1".into()),
        ("COPY", "/fs/hello.txt".into(), dest("/fs/../outside/copied.txt")),
        ("COPY", "/fs/hello.txt".into(), dest("/fs/to_outside/copied.txt")),
        ("COPY", "/fs/hello.txt".into(), dest("/outside/copied.txt")),
        ("COPY", "/fs/hello.txt".into(), dest("http://evil.example/fs/copied.txt")),
        ("COPY", "/fs/hello.txt".into(), dest("/fs/sentinel_link")),
        ("MOVE", "/fs/hello.txt".into(), dest("/fs/%2e%2e/outside/moved.txt")),
        ("MOVE", "/fs/hello.txt".into(), dest(&format!("http://{host}/fs/to_outside/moved.txt"))),
        ("COPY", "/fs/sentinel_link".into(), dest("/fs/stolen.txt")),
        ("COPY", "/fs/to_outside".into(), dest("/fs/stolen-dir")),
        ("PROPPATCH", "/fs/sentinel_link".into(), String::new()),
        ("LOCK", "/fs/to_outside/sentinel.txt".into(), String::new()),
        ("GET", "/fs/%zz".into(), String::new()),
        ("GET", "/fs/.rstream-upload-x.tmp".into(), String::new()),
    ];
    assert!(cases.len() >= 20);
    for (method, target, extra) in &cases {
        let body = "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\"/>";
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {host}{extra}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let status = raw_status(&server, &request);
        assert!(matches!(status, 400 | 403 | 404 | 409 | 502), "{method} {target} {extra:?} was not refused: {status}");
        assert_ne!(status, 404, "{method} {target}: refused as missing instead of forbidden");
        tree.assert_outside_untouched();
    }
    assert!(!tree.root.join("stolen.txt").exists() && !tree.root.join("stolen-dir").exists());
    assert_eq!(std::fs::read(tree.root.join("hello.txt")).unwrap(), b"hello world\n");
}

#[test]
fn read_only_refuses_every_write_and_changes_nothing() {
    let tree = Tree::new();
    let before = snapshot(&tree.root);
    let server = DavServer::start(FsConfig { read_only: true, ..FsConfig::new(&tree.root) });
    let lockinfo = r#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
    let writes: Vec<(RequestHead, &[u8])> = vec![
        (RequestHead::new("PUT", "/fs/hello.txt"), b"changed"),
        (RequestHead::new("PUT", "/fs/new.txt"), b"new"),
        (RequestHead::new("DELETE", "/fs/hello.txt"), b""),
        (RequestHead::new("DELETE", "/fs/sub"), b""),
        (RequestHead::new("MKCOL", "/fs/newdir"), b""),
        (RequestHead::new("COPY", "/fs/hello.txt").header("Destination", "/fs/copy.txt"), b""),
        (RequestHead::new("MOVE", "/fs/hello.txt").header("Destination", "/fs/moved.txt"), b""),
        (RequestHead::new("PROPPATCH", "/fs/hello.txt"), b"<D:propertyupdate xmlns:D=\"DAV:\"/>"),
        (RequestHead::new("LOCK", "/fs/hello.txt"), lockinfo.as_bytes()),
        (RequestHead::new("LOCK", "/fs/unmapped.txt"), lockinfo.as_bytes()),
        (RequestHead::new("UNLOCK", "/fs/hello.txt").header("Lock-Token", "<urn:uuid:x>"), b""),
    ];
    for (head, body) in writes {
        let what = format!("{} {}", head.method, head.target);
        let reply = server.send(head, body);
        assert_eq!(reply.status(), 403, "{what}");
        assert!(reply.text().contains("read-only"), "{what}: {}", reply.text());
    }
    assert_eq!(server.call("GET", "/fs/hello.txt", b"").body, b"hello world\n");
    assert_eq!(server.send(RequestHead::new("PROPFIND", "/fs/").header("Depth", "1"), b"").status(), 207);
    let options = server.call("OPTIONS", "/fs/", b"");
    assert_eq!(options.header("allow"), Some("OPTIONS, GET, HEAD, PROPFIND"));
    assert_eq!(snapshot(&tree.root), before, "tree changed in read-only mode");
    tree.assert_outside_untouched();
}
