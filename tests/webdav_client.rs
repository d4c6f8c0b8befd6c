//! The operator's WebDAV client against the device handler over loopback TCP: every operation, streaming in
//! both directions, and upstream-shaped errors.

mod webdav_common;

use futures_lite::io::Cursor;
use rstream::webdav::{DavClient, DavClientError, EntryKind, FsConfig};
use webdav_common::{DavServer, Tree};

async fn connect(server: &DavServer) -> DavClient<async_net::TcpStream> {
    let stream = async_net::TcpStream::connect(server.addr).await.unwrap();
    DavClient::new(stream, server.addr.to_string(), "/fs")
}

#[test]
fn client_lists_stats_reads_writes_and_reorganises() {
    let tree = Tree::new();
    let server = DavServer::serve(&tree.root);
    smol::block_on(async {
        let mut fs = connect(&server).await;
        let mut listing = fs.list("/").await.unwrap();
        listing.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<&str> = listing.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/hello.txt", "/inner_link", "/sub", "/sub_link"]);
        assert_eq!((listing[0].kind, listing[0].size), (EntryKind::File, Some(12)));
        assert!(listing[0].modified.as_deref().is_some_and(|m| m.ends_with('Z')));
        assert_eq!(listing[2].kind, EntryKind::Directory);

        fs.mkdir("/data dir").await.unwrap();
        fs.mkdir("/data dir").await.unwrap(); // 405 on an existing directory is fine
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        fs.write("/data dir/big.bin", Cursor::new(big.clone()), None).await.unwrap();
        fs.write("/data dir/sized.txt", Cursor::new(b"exact"), Some(5)).await.unwrap();
        assert_eq!(std::fs::read(tree.root.join("data dir/big.bin")).unwrap(), big);

        let mut back = Vec::new();
        assert_eq!(fs.read("/data dir/big.bin", &mut back).await.unwrap(), big.len() as u64);
        assert_eq!(back, big);
        let stat = fs.stat("/data dir/sized.txt").await.unwrap();
        assert_eq!((stat.path.as_str(), stat.size), ("/data dir/sized.txt", Some(5)));
        assert_eq!(fs.stat("/data dir").await.unwrap().kind, EntryKind::Directory);

        fs.rename("/data dir/sized.txt", "/renamed.txt", false).await.unwrap();
        assert!(tree.root.join("renamed.txt").is_file());
        let refused = fs.rename("/hello.txt", "/renamed.txt", false).await.unwrap_err();
        assert_eq!(refused.status(), Some(412));
        fs.copy("/data dir", "/copy of data", false).await.unwrap();
        assert_eq!(std::fs::read(tree.root.join("copy of data/big.bin")).unwrap(), big);
        fs.delete("/data dir").await.unwrap();
        assert!(!tree.root.join("data dir").exists());
        assert!(fs.is_reusable(), "one connection carried every operation");
    });
}

#[test]
fn client_errors_quote_the_server_answer() {
    let tree = Tree::new();
    let server = DavServer::start(FsConfig { read_only: true, ..FsConfig::new(&tree.root) });
    smol::block_on(async {
        let mut fs = connect(&server).await;
        let missing = fs.read("/nope.txt", Vec::new()).await.unwrap_err();
        assert_eq!(missing.status(), Some(404));
        let text = missing.to_string();
        assert!(text.starts_with("webtty filesystem request failed with status 404 Not Found: "), "{text}");
        assert!(text.contains("/nope.txt"), "{text}");
        let refused = fs.write("/x.txt", Cursor::new(b"x"), Some(1)).await;
        assert!(matches!(refused, Err(DavClientError::Status { status: 403, .. })), "{refused:?}");
        assert!(fs.delete("/hello.txt").await.unwrap_err().to_string().contains("read-only"));
        // `..` cannot climb above the root: it is normalised away before the request.
        let mut out = Vec::new();
        fs.read("/../../hello.txt", &mut out).await.unwrap();
        assert_eq!(out, b"hello world\n");
    });
}
