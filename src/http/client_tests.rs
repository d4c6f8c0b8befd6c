//! Client-side behaviour against the server side over in-memory streams: keep-alive reuse, chunked and
//! streamed uploads, bodies until close, early answers to uploads, and body boundaries.

use std::time::Duration;

use futures_lite::future::zip;
use futures_lite::io::Cursor;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::testio::{duplex, run, Duplex};
use super::{ClientConn, HttpError, RequestHead, ResponseHead, ServerConn};

/// Echoes each request body back, chunked, with the method and path in `X-Seen`.
async fn echo_back(mut conn: ServerConn<Duplex>) {
    while let Ok(Some(req)) = conn.next_request().await {
        let mut body = Vec::new();
        if conn.body().await.unwrap().read_to_end(&mut body).await.is_err() {
            return; // The client gave up mid-body.
        }
        let head = ResponseHead::new(200).header("X-Seen", format!("{} {}", req.method, req.target));
        let mut w = conn.respond_stream(head, None).await.unwrap();
        for piece in body.chunks(7000) {
            w.write_all(piece).await.unwrap();
        }
        w.finish().await.unwrap();
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn keep_alive_connection_carries_many_requests() {
    run(async {
        let (a, b) = duplex(4096);
        let client_side = async {
            let mut client = ClientConn::new(a, "test");
            for i in 0..5 {
                let head = RequestHead::new("POST", format!("/n/{i}"));
                let resp = client.request(&head, format!("body {i}").as_bytes()).await.unwrap();
                assert_eq!(resp.status, 200);
                assert_eq!(resp.headers.get("x-seen"), Some(format!("POST /n/{i}").as_str()));
                assert_eq!(client.read_body_to_vec(100).await.unwrap(), format!("body {i}").as_bytes());
                assert!(client.is_reusable());
            }
            let resp = client.request(&RequestHead::new("GET", "/empty"), b"").await.unwrap();
            assert_eq!(resp.status, 200);
            assert!(client.read_body_to_vec(10).await.unwrap().is_empty());
        };
        zip(client_side, echo_back(ServerConn::new(b))).await;
    });
}

#[test]
fn streamed_uploads_round_trip_chunked_and_by_length() {
    run(async {
        let (a, b) = duplex(8192);
        let data = pattern(300_000);
        let client_side = async {
            let mut client = ClientConn::new(a, "test");
            for len in [None, Some(data.len() as u64)] {
                let head = RequestHead::new("PUT", "/big");
                let resp = client.request_streaming(&head, Cursor::new(data.clone()), len).await.unwrap();
                assert_eq!(resp.status, 200);
                let mut back = Vec::new();
                client.body().read_to_end(&mut back).await.unwrap();
                assert!(back == data, "echo differs for {len:?}");
            }
            let head = RequestHead::new("PUT", "/short");
            let short = client.request_streaming(&head, Cursor::new(b"abc"), Some(10)).await;
            assert!(matches!(short, Err(HttpError::Io(_))));
            assert!(!client.is_reusable());
        };
        zip(client_side, echo_back(ServerConn::new(b))).await;
    });
}

#[test]
fn response_until_close_and_connection_close_end_reuse() {
    run(async {
        let (a, mut b) = duplex(4096);
        let server_side = async {
            let mut req = [0u8; 64];
            let n = b.read(&mut req).await.unwrap();
            assert!(req[..n].starts_with(b"GET /old HTTP/1.1\r\nHost: test\r\n"));
            b.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it").await.unwrap();
            b.close().await.unwrap();
        };
        let client_side = async {
            let mut client = ClientConn::new(a, "test");
            client.request(&RequestHead::new("GET", "/old"), b"").await.unwrap();
            assert_eq!(client.read_body_to_vec(100).await.unwrap(), b"all of it");
            assert!(!client.is_reusable());
            assert!(client.request(&RequestHead::new("GET", "/again"), b"").await.is_err());
        };
        zip(server_side, client_side).await;
    });
}

#[test]
fn an_early_answer_to_an_upload_is_returned() {
    run(async {
        let (a, b) = duplex(4096);
        let server_side = async {
            let mut conn = ServerConn::new(b);
            conn.next_request().await.unwrap().unwrap();
            assert!(matches!(conn.read_body_to_vec(1000).await, Err(HttpError::BodyTooLarge { .. })));
            conn.respond(ResponseHead::new(413), b"too large").await.unwrap();
            assert!(conn.next_request().await.unwrap().is_none());
        };
        let client_side = async {
            let mut client = ClientConn::new(a, "test");
            let data = pattern(5 << 20);
            let head = RequestHead::new("PUT", "/f");
            let resp = client.request_streaming(&head, Cursor::new(data), Some(5 << 20)).await.unwrap();
            assert_eq!(resp.status, 413);
            assert!(!client.is_reusable());
        };
        zip(server_side, client_side).await;
    });
}

#[test]
fn interim_responses_are_skipped_and_unread_bodies_drained() {
    run(async {
        let (a, mut b) = duplex(4096);
        let server_side = async {
            let mut buf = [0u8; 256];
            b.read(&mut buf).await.unwrap();
            b.write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
                .await
                .unwrap();
            b.read(&mut buf).await.unwrap();
            b.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
        };
        let client_side = async {
            let mut client = ClientConn::with_timeouts(a, "t", Duration::from_secs(5), Duration::from_secs(5));
            let resp = client.request(&RequestHead::new("GET", "/1"), b"").await.unwrap();
            assert_eq!(resp.status, 200);
            // The body "first" is not read: the next request drains it.
            let resp = client.request(&RequestHead::new("GET", "/2"), b"").await.unwrap();
            assert_eq!(resp.status, 204);
            assert!(client.body().is_done());
        };
        zip(server_side, client_side).await;
    });
}

#[test]
fn malformed_chunked_responses_fail_the_body() {
    run(async {
        let (a, mut b) = duplex(4096);
        let server_side = async {
            let mut buf = [0u8; 256];
            b.read(&mut buf).await.unwrap();
            let long_ext = "x".repeat(crate::limits::MAX_HTTP_CHUNK_LINE_LEN + 1);
            let reply =
                format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;{long_ext}\r\nabc\r\n0\r\n\r\n");
            b.write_all(reply.as_bytes()).await.unwrap();
        };
        let client_side = async {
            let mut client = ClientConn::new(a, "test");
            client.request(&RequestHead::new("GET", "/"), b"").await.unwrap();
            let err = client.read_body_to_vec(100).await.unwrap_err();
            assert!(matches!(err, HttpError::Framing(ref why) if why.contains("too long")), "{err}");
            assert!(!client.is_reusable());
        };
        zip(server_side, client_side).await;
    });
}
