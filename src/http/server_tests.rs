//! Server-side behaviour over in-memory streams: keep-alive, pipelining, body boundaries, 100-continue,
//! refusal of malformed and ambiguous requests, timeouts, HEAD, upgrades and replays.

use std::time::{Duration, Instant};

use futures_lite::future::zip;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::testio::{duplex, read_all, run, run_within, Duplex};
use super::{HttpError, ResponseHead, ServerConn};

/// Serves every request on `conn`: echoes method, path and body length; returns the number served.
async fn echo_server(mut conn: ServerConn<Duplex>) -> usize {
    let mut served = 0;
    while let Ok(Some(req)) = conn.next_request().await {
        let body = conn.read_body_to_vec(1 << 20).await.unwrap();
        let reply = format!("{} {} {}", req.method, req.path(), String::from_utf8_lossy(&body));
        conn.respond(ResponseHead::new(200), reply.as_bytes()).await.unwrap();
        served += 1;
    }
    served
}

/// Sends `raw` from a client, closes its write side, and returns everything the server answered.
fn exchange(raw: &[u8]) -> (String, usize) {
    run(async {
        let (mut client, server) = duplex(1024);
        let client_side = async {
            client.write_all(raw).await.unwrap();
            client.close().await.unwrap();
            read_all(&mut client).await
        };
        zip(client_side, echo_server(ServerConn::new(server))).await
    })
}

#[test]
fn pipelined_keep_alive_requests_are_answered_in_order() {
    let (out, served) = exchange(
        b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n\
          POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
          PUT /three HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n\
          GET /four HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(served, 4);
    let bodies: Vec<&str> =
        out.split("HTTP/1.1 200 OK\r\n").skip(1).map(|r| r.split("\r\n\r\n").nth(1).unwrap()).collect();
    assert_eq!(bodies, ["GET /one ", "POST /two hello", "PUT /three abc", "GET /four "]);
    assert_eq!(out.matches("Connection: close").count(), 1, "{out}");
    assert!(out.contains("Date: "), "{out}");
}

#[test]
fn a_body_ends_exactly_where_its_length_says() {
    // Body bytes that look like a request must never be parsed as one.
    let inner = "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
    let raw = format!(
        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{inner}GET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        inner.len()
    );
    let (out, served) = exchange(raw.as_bytes());
    assert_eq!(served, 2, "{out}");
    assert!(out.contains(&format!("POST /a {inner}")), "{out}");
    assert!(out.ends_with("GET /b "), "{out}");
}

#[test]
fn oversize_heads_get_431_and_garbage_gets_400() {
    let mut huge = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', crate::limits::MAX_HTTP_HEAD_LEN));
    huge.extend_from_slice(b"\r\n\r\n");
    let (out, served) = exchange(&huge);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    assert_eq!(served, 0);

    let many: String = (0..crate::limits::MAX_HTTP_HEADERS + 1).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: h\r\n{many}\r\n");
    let (out, _) = exchange(many.as_bytes());
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");

    let (out, _) = exchange(b"\x16\x03\x01\x02\x00 not http\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    assert!(out.contains("Connection: close"), "{out}");
}

#[test]
fn smuggling_shapes_are_answered_400_and_close() {
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
    ] {
        let (out, served) = run(async {
            let (mut client, server) = duplex(1024);
            let client_side = async {
                client.write_all(raw).await.unwrap();
                client.close().await.unwrap();
                read_all(&mut client).await
            };
            let server_side = async {
                let mut conn = ServerConn::new(server);
                let mut served = 0;
                loop {
                    match conn.next_request().await {
                        Ok(Some(_)) => match conn.read_body_to_vec(1024).await {
                            Ok(_) => {
                                conn.respond(ResponseHead::new(200), b"").await.unwrap();
                                served += 1;
                            }
                            Err(e) => {
                                assert_eq!(e.status(), 400, "{e}");
                                conn.respond(ResponseHead::new(e.status()), b"").await.unwrap();
                            }
                        },
                        Ok(None) | Err(_) => return served,
                    }
                }
            };
            zip(client_side, server_side).await
        });
        assert!(out.starts_with("HTTP/1.1 400 "), "{}: {out}", String::from_utf8_lossy(raw));
        assert!(out.contains("Connection: close"), "{out}");
        assert_eq!(served, 0);
    }
}

#[test]
fn expect_100_continue_is_sent_only_when_the_body_is_wanted() {
    run(async {
        let (mut client, server) = duplex(4096);
        let client_side = async {
            client
                .write_all(b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
                .await
                .unwrap();
            let mut interim = [0u8; 25];
            client.read_exact(&mut interim).await.unwrap();
            assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
            client.write_all(b"data").await.unwrap();
            client
                .write_all(b"PUT /g HTTP/1.1\r\nHost: h\r\nContent-Length: 99999\r\nExpect: 100-continue\r\n\r\n")
                .await
                .unwrap();
            client.close().await.unwrap();
            read_all(&mut client).await
        };
        let server_side = async {
            let mut conn = ServerConn::new(server);
            conn.next_request().await.unwrap().unwrap();
            assert_eq!(conn.read_body_to_vec(16).await.unwrap(), b"data");
            conn.respond(ResponseHead::new(201), b"").await.unwrap();
            conn.next_request().await.unwrap().unwrap();
            let err = conn.read_body_to_vec(16).await.unwrap_err();
            assert!(matches!(err, HttpError::BodyTooLarge { limit: 16 }));
            conn.respond(ResponseHead::new(413), b"too big").await.unwrap();
            assert!(conn.next_request().await.unwrap().is_none());
        };
        let (out, ()) = zip(client_side, server_side).await;
        assert!(out.starts_with("HTTP/1.1 201 Created\r\n"), "{out}");
        let second = out.split("HTTP/1.1 413").nth(1).expect("413 answer");
        assert!(second.contains("Connection: close"), "{out}");
        assert!(!out.contains("100 Continue"), "no 100 for the refused body: {out}");
    });
}

#[test]
fn small_unread_bodies_are_drained_and_large_ones_close_the_connection() {
    let big = format!("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", 1 << 20);
    run(async {
        let (mut client, server) = duplex(64 * 1024);
        let client_side = async {
            client.write_all(b"POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc").await.unwrap();
            client.write_all(big.as_bytes()).await.unwrap();
            // The server gives up draining and closes; it lingers long enough to read some of the body.
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..16 {
                if client.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            client.close().await.unwrap();
            read_all(&mut client).await
        };
        let server_side = async {
            let mut conn = ServerConn::new(server);
            let mut seen = Vec::new();
            while let Some(req) = conn.next_request().await.unwrap() {
                seen.push(req.path().to_string());
                conn.respond(ResponseHead::new(403), b"no").await.unwrap();
            }
            seen
        };
        let (out, seen) = zip(client_side, server_side).await;
        assert_eq!(seen, ["/small", "/big"]);
        assert_eq!(out.matches("HTTP/1.1 403").count(), 2, "{out}");
        assert_eq!(out.matches("Connection: close").count(), 1, "{out}");
    });
}

#[test]
fn slow_heads_and_stalled_bodies_time_out() {
    run_within(Duration::from_secs(10), async {
        let (mut client, server) = duplex(1024);
        client.write_all(b"GET / HTTP/1.1\r\nHost").await.unwrap();
        let started = Instant::now();
        let mut conn = ServerConn::with_timeouts(server, Duration::from_millis(100), Duration::from_secs(30));
        let err = conn.next_request().await.unwrap_err();
        assert!(matches!(err, HttpError::TimedOut("request head")), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(100));
        let out = read_all(&mut client).await;
        assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    });
    run_within(Duration::from_secs(10), async {
        let (mut client, server) = duplex(1024);
        client.write_all(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc").await.unwrap();
        let mut conn = ServerConn::with_timeouts(server, Duration::from_secs(30), Duration::from_millis(100));
        conn.next_request().await.unwrap().unwrap();
        let err = conn.read_body_to_vec(100).await.unwrap_err();
        assert!(matches!(err, HttpError::TimedOut("idle")), "{err}");
        drop(client);
    });
}

#[test]
fn head_requests_get_headers_without_a_body() {
    let (out, _) = run(async {
        let (mut client, server) = duplex(4096);
        let client_side = async {
            client.write_all(b"HEAD /f HTTP/1.1\r\nHost: h\r\n\r\nHEAD /g HTTP/1.1\r\nHost: h\r\n\r\n").await.unwrap();
            client.close().await.unwrap();
            read_all(&mut client).await
        };
        let server_side = async {
            let mut conn = ServerConn::new(server);
            conn.next_request().await.unwrap().unwrap();
            conn.respond(ResponseHead::new(200), b"0123456789").await.unwrap();
            conn.next_request().await.unwrap().unwrap();
            let mut w = conn.respond_stream(ResponseHead::new(200), Some(5)).await.unwrap();
            assert!(w.is_discarding());
            w.write_all(b"abcde").await.unwrap();
            w.finish().await.unwrap();
            assert!(conn.next_request().await.unwrap().is_none());
        };
        zip(client_side, server_side).await
    });
    assert_eq!(out.matches("Content-Length: 10\r\n").count(), 1, "{out}");
    assert_eq!(out.matches("Content-Length: 5\r\n").count(), 1, "{out}");
    assert!(out.ends_with("\r\n\r\n") && !out.contains("0123") && !out.contains("abcde"), "{out}");
}

#[test]
fn chunked_responses_and_http10_clients() {
    let (out, _) = run(async {
        let (mut client, server) = duplex(4096);
        let client_side = async {
            client.write_all(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.0\r\n\r\n").await.unwrap();
            read_all(&mut client).await
        };
        let server_side = async {
            let mut conn = ServerConn::new(server);
            conn.next_request().await.unwrap().unwrap();
            let mut w = conn.respond_stream(ResponseHead::new(200), None).await.unwrap();
            w.write_all(b"hello ").await.unwrap();
            w.write_all(b"world").await.unwrap();
            w.finish().await.unwrap();
            conn.next_request().await.unwrap().unwrap();
            let mut w = conn.respond_stream(ResponseHead::new(200), None).await.unwrap();
            w.write_all(b"raw until close").await.unwrap();
            w.finish().await.unwrap();
            assert!(conn.next_request().await.unwrap().is_none());
        };
        zip(client_side, server_side).await
    });
    assert!(out.contains("Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"), "{out}");
    assert!(out.ends_with("Connection: close\r\n\r\nraw until close"), "{out}");
}

#[test]
fn upgrade_and_replay_keep_every_byte_already_read() {
    run(async {
        let (mut client, server) = duplex(4096);
        client.write_all(b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\nFRAME").await.unwrap();
        let mut conn = ServerConn::new(server);
        conn.next_request().await.unwrap().unwrap();
        let switching = ResponseHead::new(101).header("Upgrade", "websocket").header("Connection", "Upgrade");
        let mut raw = conn.upgrade(switching).await.unwrap();
        assert_eq!(raw.prefix(), b"FRAME");
        let mut head = [0u8; 12];
        client.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        raw.write_all(b"pong").await.unwrap();
        let mut five = [0u8; 5];
        raw.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"FRAME");
    });
    run(async {
        let (mut client, server) = duplex(4096);
        let sent = b"GET /x HTTP/1.1\r\nHost: app.t.localhost\r\n\r\nGET /y HTTP/1.1\r\nHost: app.t.localhost\r\n\r\n";
        client.write_all(sent).await.unwrap();
        client.close().await.unwrap();
        let mut conn = ServerConn::new(server);
        let req = conn.next_request().await.unwrap().unwrap();
        assert_eq!(req.headers.get("host"), Some("app.t.localhost"));
        let mut raw = conn.into_replay().ok().expect("replayable");
        let mut replayed = Vec::new();
        raw.read_to_end(&mut replayed).await.unwrap();
        assert_eq!(replayed, sent);
    });
}

#[test]
fn an_unwritable_response_head_closes_the_connection() {
    run(async {
        let (mut client, server) = duplex(4096);
        client.write_all(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n").await.unwrap();
        let mut conn = ServerConn::new(server);
        conn.next_request().await.unwrap().unwrap();
        let injected = ResponseHead::new(200).header("X-Bad", "a\r\nSet-Cookie: evil=1");
        assert!(conn.respond(injected, b"").await.is_err());
        assert!(conn.next_request().await.unwrap().is_none(), "the unanswered client must not wait forever");
        assert!(!read_all(&mut client).await.contains("evil"));
    });
}

#[test]
fn a_raw_request_gives_its_head_apart_and_finds_where_its_body_ends() {
    let cases: [(&[u8], &[u8]); 3] = [
        (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", b""),
        (b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", b"hello"),
        (b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", b"3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n"),
    ];
    for (head, body) in cases {
        run(async {
            let (mut client, server) = duplex(4096);
            let next = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
            client.write_all(&[head, body, next].concat()).await.unwrap();
            client.close().await.unwrap();
            let mut conn = ServerConn::new(server);
            conn.next_request().await.unwrap().unwrap();
            let mut raw = conn.into_raw_request().ok().expect("untouched request");
            assert_eq!(raw.head, head);
            let mut rest = Vec::new();
            raw.stream.read_to_end(&mut rest).await.unwrap();
            // Fed one byte at a time, the boundary still stops exactly at the end of the body.
            let mut used = 0;
            for byte in rest.chunks(1) {
                used += raw.body.scan(byte).unwrap();
            }
            assert!(raw.body.is_done());
            assert_eq!(&rest[..used], body, "{}", String::from_utf8_lossy(head));
            assert_eq!(&rest[used..], next);
        });
    }
}

#[test]
fn a_broken_chunked_body_fails_its_boundary() {
    run(async {
        let (mut client, server) = duplex(4096);
        client.write_all(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").await.unwrap();
        let mut conn = ServerConn::new(server);
        conn.next_request().await.unwrap().unwrap();
        let mut raw = conn.into_raw_request().ok().expect("untouched request");
        assert!(raw.body.scan(b"zz\r\n").is_err());
        assert!(raw.body.scan(b"0\r\n\r\n").is_err(), "stays failed");
    });
}
