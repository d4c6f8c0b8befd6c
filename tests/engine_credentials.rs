//! The caller's engine token never travels onward: a `token_auth` tunnel published by `rstream forward
//! --token-auth` in front of an origin that records every request head it receives. The token is sent in the
//! `Authorization` header, in the `rstream.token` query parameter (between other, oddly encoded parameters), on
//! a kept-alive connection with a second pipelined request, and over the plain-HTTP listener; the origin must
//! never see it, and must see everything else byte for byte.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::tls::{connect_to, within, IO_DEADLINE};
use common::tunnel::Forward;
use common::{curl, Engine, OPERATOR};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

const ONLINE: Duration = Duration::from_secs(20);
const HOST: &str = "rec.t.localhost";

/// An HTTP/1.1 origin that records each request (head and body, as received) and answers `200 ok`, keeping
/// the connection open unless the request asked to close it.
#[derive(Clone, Default)]
struct RecordingOrigin {
    seen: Arc<Mutex<Vec<String>>>,
}

impl RecordingOrigin {
    /// Starts it on 127.0.0.1; returns it and its address.
    fn start() -> (RecordingOrigin, String) {
        let origin = RecordingOrigin::default();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = listener.local_addr().unwrap().to_string();
        let recorder = origin.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let recorder = recorder.clone();
                std::thread::spawn(move || recorder.serve(conn));
            }
        });
        (origin, addr)
    }

    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut conn = conn;
        loop {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let lower = head.to_ascii_lowercase();
            let mut body = Vec::new();
            if let Some(len) = lower.lines().find_map(|l| l.strip_prefix("content-length:")) {
                body.resize(len.trim().parse().expect("content-length"), 0);
                reader.read_exact(&mut body).expect("body");
            } else if lower.contains("transfer-encoding: chunked") {
                while !body.ends_with(b"\r\n0\r\n\r\n") && !body.starts_with(b"0\r\n\r\n") {
                    let mut byte = [0u8];
                    reader.read_exact(&mut byte).expect("chunked body");
                    body.push(byte[0]);
                }
            }
            self.seen.lock().unwrap().push(format!("{head}{}", String::from_utf8_lossy(&body)));
            let close = lower.contains("connection: close");
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{}\r\nok",
                if close { "Connection: close\r\n" } else { "" }
            );
            if conn.write_all(answer.as_bytes()).is_err() || close {
                return;
            }
        }
    }

    /// Every request received so far, head and body as text.
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Asserts no recorded request contains `secret` anywhere.
    fn assert_never_saw(&self, secret: &str) {
        for req in self.seen() {
            assert!(!req.contains(secret), "the origin received the caller's token:\n{req}");
        }
    }
}

/// An engine (with `extra` flags), a recording origin and `forward --token-auth` publishing it as `rec`.
fn published(extra: &[&str]) -> (Engine, RecordingOrigin, Forward) {
    let engine = Engine::start_with(extra);
    let (origin, addr) = RecordingOrigin::start();
    let args = ["--name", "rec", "--token-auth", "--label", "role=recorder", "-o", "json"];
    let forward = Forward::start(&engine, &addr, &args, &[]);
    forward.wait_online(1, ONLINE);
    (engine, origin, forward)
}

/// Sends `request` raw over TLS to the tunnel's public host; returns what the engine answered until it closed
/// the connection or, unless `to_eof`, until the first `ok` answer is complete.
fn raw_request(engine: &Engine, request: &[u8], to_eof: bool) -> String {
    smol::block_on(async {
        let mut conn = connect_to(&engine.addr(), &engine.ca_path(), HOST, Some("http/1.1")).await.expect("connect");
        conn.write_all(request).await.expect("send request");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while to_eof || !answer.ends_with(b"\r\n\r\nok") {
            match within(IO_DEADLINE, "the engine's answer", conn.read(&mut buf)).await.expect("read answer") {
                0 => break,
                n => answer.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
}

#[test]
fn the_token_is_stripped_from_the_header_and_the_query_and_the_rest_arrives_byte_exact() {
    let (engine, origin, _forward) = published(&[]);
    let token = engine.token(&OPERATOR, None);
    let request = format!(
        "GET /q?a=%2F&b=1&rstream.token={token}&c&d=x+y%26&e=%F0%9F%99%82 HTTP/1.1\r\nHost: {HOST}\r\n\
         X-Case: MiXeD  value;q=\"1\"\r\nauthorization: Bearer {token}\r\nAccept: */*\r\n\r\n"
    );
    let answer = raw_request(&engine, request.as_bytes(), false);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let expected = format!(
        "GET /q?a=%2F&b=1&c&d=x+y%26&e=%F0%9F%99%82 HTTP/1.1\r\nHost: {HOST}\r\nX-Case: MiXeD  value;q=\"1\"\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(origin.seen(), [expected]);

    let by_header = engine.curl_host(HOST, "/h?x=1", Some(&token), &["-H", "X-Keep: yes"]);
    assert_eq!(by_header.status, 200, "{by_header:?}");
    let by_query = engine.curl_host(HOST, &format!("/only?rstream.token={token}"), None, &[]);
    assert_eq!(by_query.status, 200, "{by_query:?}");
    let post = engine.curl_host(HOST, "/post", Some(&token), &["--data-binary", "a=1&rstream.token=body-stays"]);
    assert_eq!(post.status, 200, "{post:?}");
    let chunked = ["-H", "Transfer-Encoding: chunked", "--data-binary", "chunked body"];
    assert_eq!(engine.curl_host(HOST, "/chunked", Some(&token), &chunked).status, 200);
    origin.assert_never_saw(&token);
    let seen = origin.seen();
    assert!(seen[1].starts_with("GET /h?x=1 HTTP/1.1\r\n") && seen[1].contains("\r\nX-Keep: yes\r\n"), "{seen:#?}");
    assert!(seen[2].starts_with("GET /only HTTP/1.1\r\n"), "{seen:#?}");
    assert!(seen[3].ends_with("\r\n\r\na=1&rstream.token=body-stays"), "bodies are not touched: {seen:#?}");
    assert!(seen[4].contains("chunked body"), "{seen:#?}");
}

#[test]
fn a_second_request_on_the_same_connection_never_reaches_the_device_with_the_token() {
    let (engine, origin, _forward) = published(&[]);
    let token = engine.token(&OPERATOR, None);
    let one = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n{extra}\r\n")
    };
    let pipelined = format!("{}{}", one("/first", ""), one("/second", "Connection: close\r\n"));
    let answer = raw_request(&engine, pipelined.as_bytes(), true);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    origin.assert_never_saw(&token);
    let seen = origin.seen();
    assert!(seen[0].starts_with("GET /first ") && seen[0].contains("\r\nConnection: close\r\n"), "{seen:#?}");
    assert_eq!(seen.len(), 1, "one checked request per connection: {seen:#?}");
}

#[test]
fn the_plain_listener_redirects_token_auth_tunnels_to_https_without_using_the_token() {
    let (engine, origin, _forward) = published(&["--http-listen", "127.0.0.1:0"]);
    let token = engine.token(&OPERATOR, None);
    let port = engine.http_port().expect("plain listener reported");
    let url = format!("http://127.0.0.1:{port}/x?a=1&rstream.token={token}&b");
    let bearer = format!("Authorization: Bearer {token}");
    for args in
        [vec!["-H", "Host: rec.t.localhost", url.as_str()], vec!["-H", "Host: rec.t.localhost", "-H", &bearer, &url]]
    {
        let reply = curl(&args);
        assert_eq!(reply.status, 308, "{reply:?}");
        let want = format!("https://rec.t.localhost:{}/x?a=1&b", engine.port());
        assert_eq!(reply.header("location"), Some(want.as_str()), "{reply:?}");
        assert!(!reply.head.contains(&token) && !reply.body.contains(&token), "the token is not echoed: {reply:?}");
    }
    assert!(origin.seen().is_empty(), "the origin saw a clear-text request: {:#?}", origin.seen());
}
