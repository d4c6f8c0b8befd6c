//! What a `token_auth` published tunnel passes on to its device: the caller's request without the caller's
//! engine credential, and nothing after it.
//!
//! The engine checked the token (`Authorization: Bearer …` or `?rstream.token=…`); neither may reach the device's
//! service, which would then hold a token for every tunnel on the engine. [`OnwardRequest`] forwards the head with
//! every `Authorization` field removed (on a `token_auth` tunnel that field belongs to the engine) and every
//! `rstream.token` query parameter cut out of the target — the other parameters keep their order and their
//! encoding byte for byte — then the body verbatim up to its end ([`BodyBoundary`]). Everything else in the head
//! is passed on as received.
//!
//! A connection carries one checked request: the head gains `Connection: close` (so the service closes after its
//! answer) and whatever the client sends after the body is discarded, at most [`HTTP_DRAIN_MAX`] bytes, so a
//! second request — and its token — never rides along unchecked. A WebSocket upgrade (or any `Upgrade`) passes
//! the bytes after its head through unchanged: they belong to the upgraded protocol.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

use super::published::TOKEN_PARAM;
use crate::http::percent::decode_query_component;
use crate::http::{BodyBoundary, PrefixedStream, RawRequest, RequestHead, Version};
use crate::limits::HTTP_DRAIN_MAX;

/// The header field that carries a bearer token (and, on a `token_auth` tunnel, nothing else).
const AUTHORIZATION: &[u8] = b"authorization";
/// Appended to a forwarded head that does not close on its own.
const CONNECTION_CLOSE: &[u8] = b"Connection: close\r\n";

/// `target` without its `rstream.token` query parameters (matched after decoding, as the engine reads them);
/// `None` when there is none. The other parameters, their order and their encoding stay exactly as sent; a
/// query left empty loses its `?`.
pub fn strip_token_param(target: &str) -> Option<String> {
    let (path, query) = target.split_once('?')?;
    let is_token = |piece: &str| {
        let key = piece.split_once('=').map_or(piece, |(k, _)| k);
        decode_query_component(key).is_ok_and(|k| k == TOKEN_PARAM)
    };
    if !query.split('&').any(is_token) {
        return None;
    }
    let kept: Vec<&str> = query.split('&').filter(|piece| !is_token(piece)).collect();
    let kept = kept.join("&");
    Some(if kept.is_empty() { path.to_owned() } else { format!("{path}?{kept}") })
}

/// Whether `req` switches protocols after its head (`Connection: upgrade` with an `Upgrade` field).
fn is_upgrade(req: &RequestHead) -> bool {
    req.headers.has_token("connection", "upgrade") && req.headers.contains("upgrade")
}

/// The head to send on: `raw` (as received) without `Authorization` fields, with `target` in the request line
/// when given, and with `Connection: close` added when `add_close`.
fn rewrite_head(raw: &[u8], target: Option<&str>, add_close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + CONNECTION_CLOSE.len());
    let mut lines = raw.split_inclusive(|&b| b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    // The parser accepted `method SP target SP version`: a single space on each side of the target.
    match (target, request_line.iter().position(|&b| b == b' '), request_line.iter().rposition(|&b| b == b' ')) {
        (Some(target), Some(first), Some(last)) if first < last => {
            out.extend_from_slice(&request_line[..=first]);
            out.extend_from_slice(target.as_bytes());
            out.extend_from_slice(&request_line[last..]);
        }
        _ => out.extend_from_slice(request_line),
    }
    for line in lines {
        if line == b"\r\n" || line == b"\n" {
            if add_close {
                out.extend_from_slice(CONNECTION_CLOSE);
            }
            out.extend_from_slice(line);
            break;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        if !name.eq_ignore_ascii_case(AUTHORIZATION) {
            out.extend_from_slice(line);
        }
    }
    out
}

/// What follows the body on the client's side.
enum After {
    /// An upgraded protocol: passed through.
    Raw,
    /// Anything else: read and dropped, this many bytes so far.
    Discard(u64),
}

/// The client's side of a `token_auth` stream, as the device may see it: reads yield the cleaned head, the body,
/// then nothing more (or the upgraded protocol); writes go to the client unchanged.
pub struct OnwardRequest<S> {
    head: Vec<u8>,
    sent: usize,
    body: BodyBoundary,
    after: After,
    stream: PrefixedStream<S>,
}

impl<S> OnwardRequest<S> {
    /// Wraps the raw request whose parsed head is `req`.
    pub fn new(raw: RawRequest<S>, req: &RequestHead) -> Self {
        // Bytes after an upgrade request's head are the new protocol's; one with a body is treated as a plain
        // request (whatever came after its body could not be told apart from a smuggled second request).
        let upgrade = is_upgrade(req) && raw.body.is_done();
        let closes = req.version == Version::Http10 || req.headers.has_token("connection", "close");
        let target = strip_token_param(&req.target);
        let head = rewrite_head(&raw.head, target.as_deref(), !upgrade && !closes);
        let after = if upgrade { After::Raw } else { After::Discard(0) };
        OnwardRequest { head, sent: 0, body: raw.body, after, stream: raw.stream }
    }
}

impl<S: AsyncRead + Unpin> OnwardRequest<S> {
    /// Reads and drops what the client sends after its request; ends with the client, fails past the bound.
    fn poll_discard(&mut self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            let n = ready!(Pin::new(&mut self.stream).poll_read(cx, out))?;
            match &mut self.after {
                _ if n == 0 => return Poll::Ready(Ok(0)),
                After::Raw => return Poll::Ready(Ok(n)),
                After::Discard(dropped) => {
                    *dropped += n as u64;
                    if *dropped > HTTP_DRAIN_MAX {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("client sent over {HTTP_DRAIN_MAX} bytes after its one request"),
                        )));
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for OnwardRequest<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.sent < this.head.len() {
            let n = out.len().min(this.head.len() - this.sent);
            out[..n].copy_from_slice(&this.head[this.sent..this.sent + n]);
            this.sent += n;
            return Poll::Ready(Ok(n));
        }
        if !this.body.is_done() && !out.is_empty() {
            let n = ready!(Pin::new(&mut this.stream).poll_read(cx, out))?;
            let body = this.body.scan(&out[..n])?;
            if let After::Discard(dropped) = &mut this.after {
                *dropped += (n - body) as u64;
            }
            if body > 0 || n == 0 {
                return Poll::Ready(Ok(body));
            }
        }
        this.poll_discard(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for OnwardRequest<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_parameter_is_cut_and_the_rest_of_the_query_kept_byte_for_byte() {
        let cases = [
            ("/q?a=%2F&b=1&rstream.token=T&c&d=x+y%26", Some("/q?a=%2F&b=1&c&d=x+y%26")),
            ("/only?rstream.token=T", Some("/only")),
            ("/p?rstream.token=T&a", Some("/p?a")),
            ("/p?a=1&&rstream%2Etoken=T&rstream.token=U&b=%zz", Some("/p?a=1&&b=%zz")),
            ("/p?rstream.token", Some("/p")),
            ("/p?a=rstream.token&rstream.tokens=1", None),
            ("/p?a=1", None),
            ("/p", None),
        ];
        for (target, want) in cases {
            assert_eq!(strip_token_param(target).as_deref(), want, "{target}");
        }
    }

    #[test]
    fn the_head_loses_every_authorization_field_and_gains_connection_close() {
        let raw = b"GET /q?a=1&rstream.token=T HTTP/1.1\r\nHost: h\r\nAUTHORIZATION: Bearer T\r\nX-A:  b \r\n\
                    Authorization: Basic eA==\r\n\r\n";
        let head = rewrite_head(raw, Some("/q?a=1"), true);
        assert_eq!(head, b"GET /q?a=1 HTTP/1.1\r\nHost: h\r\nX-A:  b \r\nConnection: close\r\n\r\n");
        let bare = rewrite_head(b"GET / HTTP/1.1\nHost: h\nAuthorization: Bearer T\n\n", None, false);
        assert_eq!(bare, b"GET / HTTP/1.1\nHost: h\n\n");
    }

    /// What the device would read for `sent` arriving on a `token_auth` connection.
    fn onward(sent: &[u8]) -> io::Result<Vec<u8>> {
        use crate::http::testio::{duplex, run};
        use crate::http::ServerConn;
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        run(async {
            let (mut client, server) = duplex(1 << 20);
            client.write_all(sent).await.unwrap();
            client.close().await.unwrap();
            let mut conn = ServerConn::new(server);
            let req = conn.next_request().await.unwrap().unwrap();
            let raw = conn.into_raw_request().ok().unwrap();
            let mut out = Vec::new();
            OnwardRequest::new(raw, &req).read_to_end(&mut out).await.map(|_| out)
        })
    }

    #[test]
    fn one_request_travels_on_and_a_pipelined_second_one_never_does() {
        let first = b"POST /a?rstream.token=T HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        let second = b"GET /b HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer T\r\n\r\n";
        let out = onward(&[&first[..], second].concat()).unwrap();
        assert_eq!(out, b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
        let flood = [&first[..], &vec![b'x'; HTTP_DRAIN_MAX as usize + 1]].concat();
        assert!(onward(&flood).is_err(), "endless input after the request is cut off");
    }

    #[test]
    fn an_upgrade_keeps_the_bytes_after_its_head() {
        let head = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                     Authorization: Bearer T\r\n\r\n";
        let out = onward(&[&head[..], b"\x81\x02hi"].concat()).unwrap();
        assert_eq!(out, b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi");
    }

    #[test]
    fn an_upgrade_needs_both_the_connection_token_and_the_upgrade_field() {
        let upgrade =
            RequestHead::new("GET", "/ws").header("Connection", "keep-alive, Upgrade").header("Upgrade", "websocket");
        assert!(is_upgrade(&upgrade));
        assert!(!is_upgrade(&RequestHead::new("GET", "/").header("Upgrade", "websocket")));
        assert!(!is_upgrade(&RequestHead::new("GET", "/").header("Connection", "upgrade")));
    }
}
