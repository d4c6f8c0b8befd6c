//! Fuzz target: HTTP/1.1 request heads as the server reads them (`rstream::http::ServerConn`, which parses with
//! `http::head`), over a connection that delivers the input in arbitrary chunks, pipelined requests included.
//!
//! Properties:
//! - every request the server accepts has an unambiguous body framing (the anti-smuggling rules of
//!   `http/head.rs`, checked here against an independent model): one `Host` on HTTP/1.1, never both
//!   `Content-Length` and `Transfer-Encoding`, `Transfer-Encoding` only as `chunked` on HTTP/1.1, agreeing
//!   all-digit `Content-Length` values, and `body_len` matching them;
//! - a body read to the end has exactly the declared length;
//! - a decodable path re-encodes to a path that decodes to the same text;
//! - everything the server writes back is a sequence of well-formed responses, one per request answered plus
//!   at most one refusal, with nothing after them.

#![no_main]

use futures_lite::future::block_on;
use libfuzzer_sys::fuzz_target;
use rstream::http::percent::{encode_path, percent_decode_utf8, query_pairs};
use rstream::http::{HttpError, RequestHead, ResponseHead, ServerConn, Version};
use rstream_fuzz::{split_chunking, ChunkedConn};

/// Body cap of the handler, small so that both reading and refusing a body are exercised.
const BODY_CAP: usize = 512;

fuzz_target!(|input: &[u8]| {
    let (chunk, bytes) = split_chunking(input);
    let mut peer = ChunkedConn::new(bytes, chunk);
    let exchange = block_on(serve(&mut peer));
    assert_responses_are_well_formed(peer.written(), &exchange);
});

/// What the handler saw: the methods it answered, in order, and whether the connection ended with a refusal.
struct Exchange {
    answered: Vec<String>,
    refused: bool,
}

/// A handler that reads each body up to [`BODY_CAP`] and answers every request.
async fn serve(peer: &mut ChunkedConn<'_>) -> Exchange {
    let mut conn = ServerConn::new(peer);
    let mut exchange = Exchange { answered: Vec::new(), refused: false };
    loop {
        let head = match conn.next_request().await {
            Ok(Some(head)) => head,
            Ok(None) => return exchange,
            Err(e) => {
                exchange.refused = !matches!(e, HttpError::Io(_) | HttpError::Closed);
                return exchange;
            }
        };
        let declared = conn.body_len();
        assert_framing_is_unambiguous(&head, declared);
        check_target(&head);
        let reply = match conn.read_body_to_vec(BODY_CAP).await {
            Ok(body) => {
                if let Some(len) = declared {
                    assert_eq!(body.len() as u64, len, "body length differs from its declared length");
                }
                ResponseHead::new(200).header("X-Method", head.method.clone())
            }
            Err(e) => ResponseHead::new(e.status()),
        };
        if conn.respond(reply, b"ok").await.is_err() {
            return exchange;
        }
        exchange.answered.push(head.method);
    }
}

/// The framing rules an accepted request must satisfy, restated independently of `http/head.rs`.
fn assert_framing_is_unambiguous(head: &RequestHead, body_len: Option<u64>) {
    let hosts = head.headers.get_all("host").count();
    match head.version {
        Version::Http11 => assert_eq!(hosts, 1, "HTTP/1.1 request accepted with {hosts} Host fields"),
        Version::Http10 => assert!(hosts <= 1, "HTTP/1.0 request accepted with {hosts} Host fields"),
    }
    let lengths: Vec<&str> = head.headers.get_all("content-length").flat_map(|v| v.split(',')).map(str::trim).collect();
    let chunked = head.headers.contains("transfer-encoding");
    assert!(!(chunked && !lengths.is_empty()), "accepted both Content-Length and Transfer-Encoding: {head:?}");
    if chunked {
        assert_eq!(head.version, Version::Http11, "Transfer-Encoding accepted on HTTP/1.0");
        let codings: Vec<&str> = head.headers.get_all("transfer-encoding").collect();
        assert!(
            matches!(codings.as_slice(), [only] if only.trim().eq_ignore_ascii_case("chunked")),
            "accepted Transfer-Encoding {codings:?}"
        );
        assert_eq!(body_len, None, "a chunked body must not have a declared length");
    } else if let Some(first) = lengths.first() {
        assert!(lengths.iter().all(|l| l == first), "accepted disagreeing Content-Length values {lengths:?}");
        assert!(!first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()), "accepted Content-Length {first:?}");
        assert_eq!(body_len, first.parse::<u64>().ok(), "body_len differs from Content-Length {first:?}");
    } else {
        assert_eq!(body_len, Some(0), "a request without framing fields must have no body");
    }
    if let Some(expect) = head.headers.get("expect") {
        assert!(expect.eq_ignore_ascii_case("100-continue"), "accepted Expect {expect:?}");
    }
}

/// Decodes the target the way handlers do; a decodable path survives re-encoding.
fn check_target(head: &RequestHead) {
    if let Ok(path) = percent_decode_utf8(head.path()) {
        let again = percent_decode_utf8(&encode_path(&path)).expect("an encoded path decodes");
        assert_eq!(again, path, "encode_path does not round-trip");
    }
    // Undecodable pairs are the handler's to refuse; only a panic would be a bug.
    query_pairs(head.query().unwrap_or_default()).for_each(drop);
}

/// Parses `written` as responses: interim `1xx` ones anywhere, then one final response per answered request
/// (bodies omitted for `HEAD`) and one per refusal, each with a `Content-Length` body, and no trailing bytes.
fn assert_responses_are_well_formed(written: &[u8], exchange: &Exchange) {
    let mut expected_final = exchange.answered.iter().map(|m| m == "HEAD").chain(exchange.refused.then_some(false));
    let mut rest = written;
    while !rest.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut fields);
        let head_len = match response.parse(rest) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!("server wrote a malformed response head ({other:?}): {:?}", String::from_utf8_lossy(rest)),
        };
        let status = response.code.expect("complete response has a status");
        if (100..200).contains(&status) {
            rest = &rest[head_len..];
            continue;
        }
        let head_request = expected_final.next().expect("server wrote more responses than it answered");
        let length = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .expect("every final response carries a Content-Length");
        let body_len = if head_request { 0 } else { length };
        assert!(rest.len() >= head_len + body_len, "response body cut short");
        rest = &rest[head_len + body_len..];
    }
    assert_eq!(expected_final.next(), None, "a request was answered without a response on the wire");
}
