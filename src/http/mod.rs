//! Minimal bounded HTTP/1.1 over any `AsyncRead + AsyncWrite` (httparse): request/response heads,
//! content-length and chunked bodies, used by the engine REST API, the WebTTY server and the WebDAV sidecar.
