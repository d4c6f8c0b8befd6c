//! A small, bounded HTTP/1.1 server and client over any futures-io `AsyncRead + AsyncWrite + Unpin` stream.
//!
//! Heads are parsed with `httparse` from one buffer per connection that grows up to `limits::MAX_HTTP_HEAD_LEN`
//! bytes (at most `limits::MAX_HTTP_HEADERS` fields); bodies are never buffered unless the caller asks, with a cap.
//! Every wait has a deadline (`limits::HTTP_HEAD_TIMEOUT`, `limits::HTTP_IDLE_TIMEOUT`). Users: the engine's
//! REST API and published-tunnel routing (peek at a request, then splice the raw connection with
//! [`ServerConn::into_replay`], or pass it on rewritten with [`ServerConn::into_raw_request`]), the device's
//! WebTTY server (WebSocket upgrade via [`ServerConn::upgrade`], WebDAV at `/fs`), and the operator's REST and
//! WebDAV clients ([`ClientConn`]).
//!
//! - [`ServerConn`]: keep-alive request loop, bodies by `Content-Length` or chunked, `Expect: 100-continue`,
//!   responses with fixed or chunked bodies ([`BodyWriter`]), `HEAD`, `Connection: close`, upgrades.
//! - [`ClientConn`]: requests with bodies from memory or streamed, response bodies by length, chunked or close.
//! - [`BodyReader`] / [`BodyWriter`]: `AsyncRead` / `AsyncWrite` bodies that end exactly at the body's end.
//! - [`websocket`]: the server side of a WebSocket upgrade (WebTTY sessions, the engine's `/api/websocket`).
//! - Utilities: [`percent`] (strict percent-decoding, encoding, query pairs), [`range`] (`Range`), [`etag`]
//!   (`ETag`, `If-None-Match`, `If-Match`), [`date`] (IMF-fixdate).

mod body;
mod client;
mod conn;
pub mod date;
mod error;
pub mod etag;
mod head;
mod headers;
pub mod percent;
pub mod range;
mod server;
mod upgrade;
#[cfg(any(feature = "device", feature = "operator", feature = "engine"))]
pub mod websocket;
mod writer;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
pub(crate) mod testio;

pub use body::{BodyBoundary, BodyReader};
pub use client::ClientConn;
pub use error::HttpError;
pub use head::{reason_phrase, RequestHead, ResponseHead, Version};
pub use headers::Headers;
pub use server::{RawRequest, ServerConn};
pub use upgrade::PrefixedStream;
pub use writer::BodyWriter;
