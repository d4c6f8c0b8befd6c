//! The WebDAV handler over real loopback TCP: every method, conditional and ranged GETs, gzip, atomic and
//! bounded uploads, locks and dead properties.

mod webdav_common;

use std::io::{Read, Write};
use std::time::Duration;

use rstream::http::RequestHead;
use rstream::webdav::FsConfig;
use webdav_common::{eventually, temp_files, DavServer, Tree};

fn req(method: &str, target: &str) -> RequestHead {
    RequestHead::new(method, target)
}

#[test]
fn options_advertises_class_1_and_2() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    let reply = server.call("OPTIONS", "/fs/", b"");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.header("dav"), Some("1, 2"));
    assert!(reply.header("allow").unwrap().contains("PROPFIND"));
    assert_eq!(server.call("OPTIONS", "/elsewhere", b"").status(), 404);
}

#[test]
fn propfind_lists_depth_1_and_refuses_infinity() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    let listing = server.send(req("PROPFIND", "/fs/").header("Depth", "1"), b"");
    assert_eq!(listing.status(), 207);
    assert_eq!(listing.header("transfer-encoding"), Some("chunked"), "streamed");
    let xml = listing.text();
    for href in ["<D:href>/fs/</D:href>", "<D:href>/fs/hello.txt</D:href>", "<D:href>/fs/sub/</D:href>"] {
        assert!(xml.contains(href), "{href} missing in {xml}");
    }
    assert!(xml.contains("<D:getcontentlength>12</D:getcontentlength>"), "{xml}");
    assert!(xml.contains("<D:href>/fs/inner_link</D:href>"), "symlink inside the root is listed: {xml}");
    for hidden in ["to_etc", "to_outside", "sentinel_link", "loop"] {
        assert!(!xml.contains(hidden), "{hidden} must not be listed: {xml}");
    }
    let one = server.send(req("PROPFIND", "/fs/hello.txt").header("Depth", "0"), b"");
    assert_eq!(one.status(), 207);
    assert_eq!(one.text().matches("<D:response>").count(), 1);
    let named =
        br#"<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/><x:nope xmlns:x="urn:x"/></prop></propfind>"#;
    let named = server.send(req("PROPFIND", "/fs/hello.txt").header("Depth", "0"), named).text();
    assert!(named.contains("<D:getetag>") && named.contains("404 Not Found"), "{named}");
    let infinite = server.send(req("PROPFIND", "/fs/").header("Depth", "infinity"), b"");
    assert_eq!(infinite.status(), 403);
    assert!(infinite.text().contains("<D:propfind-finite-depth/>"));
    assert_eq!(server.send(req("PROPFIND", "/fs/missing").header("Depth", "0"), b"").status(), 404);
}

#[test]
fn get_serves_ranges_etags_and_conditionals() {
    let tree = Tree::new();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(tree.root.join("blob.bin"), &data).unwrap();
    let server = DavServer::serve(&tree.root);
    let full = server.call("GET", "/fs/blob.bin", b"");
    assert_eq!(full.status(), 200);
    assert_eq!(full.body, data);
    let etag = full.header("etag").unwrap().to_string();
    assert!(full.header("last-modified").is_some());

    let part = server.send(req("GET", "/fs/blob.bin").header("Range", "bytes=1000-1999"), b"");
    assert_eq!(part.status(), 206);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/100000"));
    assert_eq!(part.body, &data[1000..2000]);
    let tail = server.send(req("GET", "/fs/blob.bin").header("Range", "bytes=-10"), b"");
    assert_eq!(tail.body, &data[data.len() - 10..]);
    let beyond = server.send(req("GET", "/fs/blob.bin").header("Range", "bytes=200000-"), b"");
    assert_eq!(beyond.status(), 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */100000"));

    let cached = server.send(req("GET", "/fs/blob.bin").header("If-None-Match", etag.as_str()), b"");
    assert_eq!(cached.status(), 304);
    assert!(cached.body.is_empty());
    let stale = server.send(req("GET", "/fs/blob.bin").header("If-None-Match", "\"other\""), b"");
    assert_eq!(stale.status(), 200);
    let since = full.header("last-modified").unwrap().to_string();
    assert_eq!(server.send(req("GET", "/fs/blob.bin").header("If-Modified-Since", since.as_str()), b"").status(), 304);
    assert_eq!(server.send(req("GET", "/fs/blob.bin").header("If-Match", "\"nope\""), b"").status(), 412);

    let head = server.call("HEAD", "/fs/blob.bin", b"");
    assert_eq!(head.status(), 200);
    assert_eq!(head.header("content-length"), Some("100000"));
    assert!(head.body.is_empty());
    assert_eq!(server.call("GET", "/fs/inner_link", b"").body, b"inner\n");
    assert_eq!(server.call("GET", "/fs/nothing-here", b"").status(), 404);
    let dir = server.call("GET", "/fs/sub/", b"");
    assert_eq!((dir.status(), dir.text()), (200, "inner.txt\n".to_string()));
}

#[test]
fn gzip_is_used_when_accepted_and_never_for_ranges() {
    let tree = Tree::new();
    let text = "a line of very compressible text for the gzip round trip\n".repeat(2000);
    std::fs::write(tree.root.join("log.txt"), &text).unwrap();
    let server = DavServer::serve(&tree.root);
    let zipped = server.send(req("GET", "/fs/log.txt").header("Accept-Encoding", "gzip"), b"");
    assert_eq!(zipped.status(), 200);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert!(zipped.body.len() < text.len() / 10, "{} bytes", zipped.body.len());
    let body = &zipped.body;
    assert_eq!(&body[..3], &[0x1f, 0x8b, 8]);
    let inflated = miniz_oxide::inflate::decompress_to_vec(&body[10..body.len() - 8]).unwrap();
    assert_eq!(inflated, text.as_bytes());
    let trailer_len = u32::from_le_bytes(body[body.len() - 4..].try_into().unwrap());
    assert_eq!(trailer_len as usize, text.len());
    let gz_etag = zipped.header("etag").unwrap().to_string();
    assert_eq!(
        server
            .send(
                req("GET", "/fs/log.txt").header("Accept-Encoding", "gzip").header("If-None-Match", gz_etag.as_str()),
                b""
            )
            .status(),
        304
    );

    let ranged =
        server.send(req("GET", "/fs/log.txt").header("Accept-Encoding", "gzip").header("Range", "bytes=0-9"), b"");
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.header("content-encoding"), None);
    assert_eq!(ranged.body, &text.as_bytes()[..10]);
    let plain = server.call("GET", "/fs/log.txt", b"");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body, text.as_bytes());
}

#[test]
fn put_creates_replaces_and_streams_chunked_bodies() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    assert_eq!(server.call("PUT", "/fs/new.txt", b"first").status(), 201);
    assert_eq!(std::fs::read(tree.root.join("new.txt")).unwrap(), b"first");
    let replaced = server.call("PUT", "/fs/new.txt", b"second");
    assert_eq!(replaced.status(), 204);
    assert!(replaced.header("etag").is_some());
    assert_eq!(std::fs::read(tree.root.join("new.txt")).unwrap(), b"second");
    assert_eq!(server.call("PUT", "/fs/no/such/dir.txt", b"x").status(), 409);
    assert_eq!(server.call("PUT", "/fs/sub", b"x").status(), 405);
    assert_eq!(server.send(req("PUT", "/fs/new.txt").header("If-None-Match", "*"), b"x").status(), 412);

    // Chunked upload through the client's streaming path.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let status = smol::block_on(async {
        let stream = async_net::TcpStream::connect(server.addr).await.unwrap();
        let mut client = rstream::http::ClientConn::new(stream, server.addr.to_string());
        let head = req("PUT", "/fs/sub/chunked.bin");
        client.request_streaming(&head, futures_lite::io::Cursor::new(data.clone()), None).await.unwrap().status
    });
    assert_eq!(status, 201);
    assert_eq!(std::fs::read(tree.root.join("sub/chunked.bin")).unwrap(), data);
    // Writing through a symlink inside the root updates its target.
    assert_eq!(server.call("PUT", "/fs/inner_link", b"via link\n").status(), 204);
    assert_eq!(std::fs::read(tree.root.join("sub/inner.txt")).unwrap(), b"via link\n");
    assert!(std::fs::symlink_metadata(tree.root.join("inner_link")).unwrap().file_type().is_symlink());
    assert!(temp_files(&tree.root).is_empty() && temp_files(&tree.root.join("sub")).is_empty());
}

#[test]
fn oversize_uploads_get_413_and_leave_the_old_file() {
    let tree = Tree::new();
    let server = DavServer::start(FsConfig { max_upload: 1000, ..FsConfig::new(&tree.root) });
    let big = vec![b'x'; 5000];
    assert_eq!(server.call("PUT", "/fs/hello.txt", &big).status(), 413);
    let chunked = smol::block_on(async {
        let stream = async_net::TcpStream::connect(server.addr).await.unwrap();
        let mut client = rstream::http::ClientConn::new(stream, server.addr.to_string());
        let head = req("PUT", "/fs/hello.txt");
        client.request_streaming(&head, futures_lite::io::Cursor::new(big.clone()), None).await.unwrap().status
    });
    assert_eq!(chunked, 413);
    assert_eq!(std::fs::read(tree.root.join("hello.txt")).unwrap(), b"hello world\n");
    assert!(eventually(Duration::from_secs(5), || temp_files(&tree.root).is_empty()));
    assert_eq!(server.call("PUT", "/fs/small.txt", &big[..1000]).status(), 201);
}

#[test]
fn an_interrupted_upload_leaves_the_previous_content_and_no_temp_file() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.write_all(b"PUT /fs/hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n").unwrap();
    tcp.write_all(&[b'z'; 50_000]).unwrap();
    assert!(eventually(Duration::from_secs(5), || temp_files(&tree.root).len() == 1), "upload in progress");
    drop(tcp);
    assert!(eventually(Duration::from_secs(5), || temp_files(&tree.root).is_empty()), "temp file removed");
    assert_eq!(std::fs::read(tree.root.join("hello.txt")).unwrap(), b"hello world\n");
}

#[test]
fn mkcol_delete_copy_and_move() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    assert_eq!(server.call("MKCOL", "/fs/made", b"").status(), 201);
    assert!(tree.root.join("made").is_dir());
    assert_eq!(server.call("MKCOL", "/fs/made", b"").status(), 405);
    assert_eq!(server.call("MKCOL", "/fs/absent/child", b"").status(), 409);
    assert_eq!(server.call("MKCOL", "/fs/withbody", b"<x/>").status(), 415);

    let dest = |p: &str| format!("{}/fs/{p}", server.url());
    assert_eq!(server.send(req("COPY", "/fs/sub").header("Destination", dest("made/copy")), b"").status(), 201);
    assert_eq!(std::fs::read(tree.root.join("made/copy/inner.txt")).unwrap(), b"inner\n");
    let no_overwrite =
        req("COPY", "/fs/hello.txt").header("Destination", dest("made/copy/inner.txt")).header("Overwrite", "F");
    assert_eq!(server.send(no_overwrite, b"").status(), 412);
    let overwrite = req("COPY", "/fs/hello.txt").header("Destination", "/fs/made/copy/inner.txt");
    assert_eq!(server.send(overwrite, b"").status(), 204);
    assert_eq!(std::fs::read(tree.root.join("made/copy/inner.txt")).unwrap(), b"hello world\n");
    assert_eq!(server.send(req("COPY", "/fs/sub").header("Destination", dest("sub/inside")), b"").status(), 403);

    assert_eq!(server.send(req("MOVE", "/fs/made/copy").header("Destination", dest("moved")), b"").status(), 201);
    assert!(!tree.root.join("made/copy").exists());
    assert_eq!(std::fs::read(tree.root.join("moved/inner.txt")).unwrap(), b"hello world\n");
    assert_eq!(
        server.send(req("MOVE", "/fs/moved").header("Destination", dest("sub")).header("Overwrite", "F"), b"").status(),
        412
    );
    assert_eq!(server.send(req("MOVE", "/fs/inner_link").header("Destination", dest("link2")), b"").status(), 201);
    assert!(std::fs::symlink_metadata(tree.root.join("link2")).unwrap().file_type().is_symlink(), "moved as a link");

    assert_eq!(server.call("DELETE", "/fs/moved", b"").status(), 204);
    assert!(!tree.root.join("moved").exists());
    assert_eq!(server.call("DELETE", "/fs/moved", b"").status(), 404);
    assert_eq!(server.call("DELETE", "/fs/sub_link", b"").status(), 204);
    assert!(tree.root.join("sub/inner.txt").exists(), "deleting a link keeps its target");
    assert_eq!(server.call("DELETE", "/fs/", b"").status(), 403);
}

#[test]
fn locks_guard_writes_until_the_token_is_submitted() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    let lockinfo = br#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>tester</D:owner></D:lockinfo>"#;
    let locked =
        server.send(req("LOCK", "/fs/hello.txt").header("Timeout", "Second-60").header("Depth", "0"), lockinfo);
    assert_eq!(locked.status(), 200);
    let token = locked.header("lock-token").unwrap().trim_matches(|c| c == '<' || c == '>').to_string();
    assert!(locked.text().contains(&token) && locked.text().contains("Second-"), "{}", locked.text());

    let refused = server.call("PUT", "/fs/hello.txt", b"intruder");
    assert_eq!(refused.status(), 423);
    assert!(refused.text().contains("lock-token-submitted"));
    assert_eq!(server.call("DELETE", "/fs/hello.txt", b"").status(), 423);
    assert_eq!(server.send(req("MOVE", "/fs/hello.txt").header("Destination", "/fs/x.txt"), b"").status(), 423);
    assert_eq!(std::fs::read(tree.root.join("hello.txt")).unwrap(), b"hello world\n");
    assert_eq!(server.send(req("LOCK", "/fs/hello.txt"), lockinfo).status(), 423, "second exclusive lock");

    let with_token = req("PUT", "/fs/hello.txt").header("If", format!("(<{token}>)"));
    assert_eq!(server.send(with_token, b"owner").status(), 204);
    let wrong = req("PUT", "/fs/hello.txt").header("If", "(<urn:uuid:00000000-0000-4000-8000-000000000000>)");
    assert_eq!(server.send(wrong, b"x").status(), 412);
    let refresh = server.send(req("LOCK", "/fs/hello.txt").header("If", format!("(<{token}>)")), b"");
    assert_eq!(refresh.status(), 200);
    let discovery = server.send(req("PROPFIND", "/fs/hello.txt").header("Depth", "0"), b"").text();
    assert!(discovery.contains(&token), "{discovery}");

    assert_eq!(server.send(req("UNLOCK", "/fs/hello.txt").header("Lock-Token", "<urn:uuid:nope>"), b"").status(), 409);
    assert_eq!(
        server.send(req("UNLOCK", "/fs/hello.txt").header("Lock-Token", format!("<{token}>")), b"").status(),
        204
    );
    assert_eq!(server.call("PUT", "/fs/hello.txt", b"free").status(), 204);

    // A depth-infinity lock on a collection guards new members; locking an unmapped URL creates it.
    let dir_lock = server.send(req("LOCK", "/fs/sub").header("Depth", "infinity"), lockinfo);
    assert_eq!(dir_lock.status(), 200);
    assert_eq!(server.call("PUT", "/fs/sub/new.txt", b"x").status(), 423);
    assert_eq!(server.send(req("LOCK", "/fs/fresh.txt").header("Depth", "0"), lockinfo).status(), 201);
    assert!(tree.root.join("fresh.txt").is_file());
}

#[test]
fn proppatch_stores_dead_properties_and_refuses_live_ones() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    let set = br#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:color>blue &amp; green</Z:color></D:prop></D:set></D:propertyupdate>"#;
    let patched = server.send(req("PROPPATCH", "/fs/hello.txt"), set);
    assert_eq!(patched.status(), 207);
    assert!(patched.text().contains("HTTP/1.1 200 OK"), "{}", patched.text());
    let found = server.send(req("PROPFIND", "/fs/hello.txt").header("Depth", "0"), b"").text();
    assert!(found.contains("xmlns:z=\"urn:z\">blue &amp; green</z:color>"), "{found}");

    let live = br#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><D:getetag>x</D:getetag><Z:size>1</Z:size></D:prop></D:set></D:propertyupdate>"#;
    let refused = server.send(req("PROPPATCH", "/fs/hello.txt"), live).text();
    assert!(refused.contains("403 Forbidden") && refused.contains("424 Failed Dependency"), "{refused}");
    let after = server.send(req("PROPFIND", "/fs/hello.txt").header("Depth", "0"), b"").text();
    assert!(!after.contains("urn:z\">1<"), "atomic: nothing applied: {after}");

    let remove = br#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:remove><D:prop><Z:color/></D:prop></D:remove></D:propertyupdate>"#;
    assert_eq!(server.send(req("PROPPATCH", "/fs/hello.txt"), remove).status(), 207);
    assert!(!server.send(req("PROPFIND", "/fs/hello.txt").header("Depth", "0"), b"").text().contains("urn:z"));
    assert_eq!(server.send(req("PROPPATCH", "/fs/missing"), set).status(), 404);
}

#[test]
fn keep_alive_connections_serve_many_requests_with_raw_http() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /fs/hello.txt HTTP/1.1\r\nHost: t\r\n\r\nPUT /fs/k.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nokGET /fs/k.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = String::new();
    tcp.read_to_string(&mut all).unwrap();
    assert_eq!(all.matches("HTTP/1.1 ").count(), 3, "{all}");
    assert!(all.contains("hello world\n") && all.contains("201 Created") && all.ends_with("ok"), "{all}");
}
