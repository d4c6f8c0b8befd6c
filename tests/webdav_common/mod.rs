//! Shared fixtures for the WebDAV tests: a temp tree with a sentinel outside the served root, a loopback server
//! running the real handler on its own thread, and a small blocking HTTP client built on `rstream::http`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rstream::http::{ClientConn, RequestHead, ResponseHead};
use rstream::webdav::{FsConfig, WebDav};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh empty directory under the system temp dir.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "rstream-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The tree every test serves: `root/` (served) and `outside/sentinel.txt` next to it, plus symlinks inside
/// the root pointing in and out.
pub struct Tree {
    pub base: TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
}

pub const SENTINEL: &[u8] = b"sentinel: must never change\n";

impl Tree {
    pub fn new() -> Self {
        let base = TempDir::new("webdav");
        let root = base.0.join("root");
        let outside = base.0.join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("sentinel.txt"), SENTINEL).unwrap();
        std::fs::write(root.join("hello.txt"), b"hello world\n").unwrap();
        std::fs::write(root.join("sub/inner.txt"), b"inner\n").unwrap();
        let link = |target: &str, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        link("/etc", "to_etc");
        link("../outside", "to_outside");
        link("../outside/sentinel.txt", "sentinel_link");
        link("loop", "loop");
        link("sub/inner.txt", "inner_link");
        link("sub", "sub_link");
        Self { base, root, outside }
    }

    /// Asserts the outside directory still holds exactly the sentinel, unchanged.
    pub fn assert_outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.outside).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["sentinel.txt"], "outside directory changed");
        assert_eq!(std::fs::read(self.outside.join("sentinel.txt")).unwrap(), SENTINEL, "sentinel changed");
    }
}

/// Every file, directory and symlink below `dir` with its content or link target (for byte-identity checks).
pub fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let value = if meta.file_type().is_symlink() {
                format!("link:{}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path);
                "dir".to_string()
            } else {
                format!("file:{:?}", std::fs::read(&path).unwrap())
            };
            out.insert(key, value);
        }
    }
    out
}

/// The handler served on 127.0.0.1 by a thread of its own; stopped on drop.
pub struct DavServer {
    pub addr: SocketAddr,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DavServer {
    /// Serves `config` on an ephemeral loopback port.
    pub fn start(config: FsConfig) -> Self {
        let dav = Arc::new(WebDav::new(config).unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let ex = smol::LocalExecutor::new();
            smol::block_on(ex.run(async {
                let listener = async_net::TcpListener::try_from(listener).unwrap();
                loop {
                    let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
                        let _ = stopped.recv().await;
                        None
                    })
                    .await;
                    let Some(Ok((stream, _))) = accepted else { break };
                    let dav = dav.clone();
                    ex.spawn(async move {
                        let _ = dav.serve_connection(stream).await;
                    })
                    .detach();
                }
            }));
        });
        Self { addr, stop: Some(stop), thread: Some(thread) }
    }

    /// Serves `root` read-write at `/fs`.
    pub fn serve(root: &Path) -> Self {
        Self::start(FsConfig::new(root))
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends one request on a fresh connection and reads the whole answer.
    pub fn send(&self, head: RequestHead, body: &[u8]) -> Reply {
        smol::block_on(async {
            let stream = async_net::TcpStream::connect(self.addr).await.unwrap();
            let mut client = ClientConn::new(stream, self.addr.to_string());
            let resp = client.request(&head, body).await.unwrap();
            let body = client.read_body_to_vec(64 << 20).await.unwrap();
            Reply { head: resp, body }
        })
    }

    /// Shorthand: a request without extra headers.
    pub fn call(&self, method: &str, target: &str, body: &[u8]) -> Reply {
        self.send(RequestHead::new(method, target), body)
    }
}

impl Drop for DavServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.try_send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A complete answer.
pub struct Reply {
    pub head: ResponseHead,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.headers.get(name)
    }
}

/// Polls `check` until it holds or `limit` passes (no fixed sleeps).
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    check()
}

/// Names in `dir` that look like upload temp files.
pub fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(rstream::webdav::TEMP_PREFIX))
        .collect()
}
