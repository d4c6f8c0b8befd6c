//! The error type of the HTTP layer and its mapping to response status codes.
//!
//! Body readers and writers implement `AsyncRead`/`AsyncWrite`, so their failures travel as `io::Error`; an
//! [`HttpError`] is boxed inside and recovered by `From<io::Error>`, so a handler that reads a body with
//! `read_body_to_vec` still learns the precise cause (and status) of a framing error.

use std::fmt;
use std::io;

/// Why an HTTP message could not be read or written.
#[derive(Debug)]
pub enum HttpError {
    /// The transport failed.
    Io(io::Error),
    /// The peer closed the connection cleanly before the first byte of a message.
    Closed,
    /// No progress within a deadline (`what` names the phase: "request head", "response head", "idle").
    TimedOut(&'static str),
    /// The head exceeds `limits::MAX_HTTP_HEAD_LEN`.
    HeadTooLarge,
    /// The head has more than `limits::MAX_HTTP_HEADERS` fields.
    TooManyHeaders,
    /// The head or a chunk line is not valid HTTP/1.1.
    Malformed(String),
    /// The body framing is ambiguous or invalid (request smuggling shapes, bad `Content-Length`, bad chunks).
    Framing(String),
    /// A `Transfer-Encoding` other than `chunked`.
    UnsupportedTransferEncoding(String),
    /// An `Expect` value other than `100-continue`.
    ExpectationFailed(String),
    /// A body larger than the caller's cap.
    BodyTooLarge {
        /// The cap that was exceeded.
        limit: u64,
    },
}

impl HttpError {
    /// The status a server answers this error with (500 for transport errors, which are never answered).
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) | HttpError::Framing(_) => 400,
            HttpError::TimedOut(_) => 408,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::ExpectationFailed(_) => 417,
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::UnsupportedTransferEncoding(_) => 501,
            HttpError::Io(_) | HttpError::Closed => 500,
        }
    }

    /// Wraps this error into an `io::Error` (recoverable with `From<io::Error>`).
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            HttpError::Io(e) => e,
            HttpError::TimedOut(_) => io::Error::new(io::ErrorKind::TimedOut, self),
            HttpError::Closed => io::Error::new(io::ErrorKind::UnexpectedEof, self),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "http i/o: {e}"),
            HttpError::Closed => write!(f, "connection closed"),
            HttpError::TimedOut(what) => write!(f, "timed out waiting for {what}"),
            HttpError::HeadTooLarge => {
                write!(f, "header block larger than {} bytes", crate::limits::MAX_HTTP_HEAD_LEN)
            }
            HttpError::TooManyHeaders => write!(f, "more than {} header fields", crate::limits::MAX_HTTP_HEADERS),
            HttpError::Malformed(why) => write!(f, "malformed http: {why}"),
            HttpError::Framing(why) => write!(f, "invalid body framing: {why}"),
            HttpError::UnsupportedTransferEncoding(te) => write!(f, "unsupported transfer-encoding {te:?}"),
            HttpError::ExpectationFailed(v) => write!(f, "unsupported expectation {v:?}"),
            HttpError::BodyTooLarge { limit } => write!(f, "body larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<HttpError>()) {
            let kind = e.kind();
            return match e.into_inner().map(|inner| inner.downcast::<HttpError>()) {
                Some(Ok(inner)) => *inner,
                Some(Err(other)) => HttpError::Io(io::Error::new(kind, other)),
                None => HttpError::Io(io::Error::from(kind)),
            };
        }
        if e.kind() == io::ErrorKind::TimedOut {
            return HttpError::TimedOut("idle");
        }
        HttpError::Io(e)
    }
}

impl From<HttpError> for io::Error {
    fn from(e: HttpError) -> Self {
        e.into_io()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_errors_survive_a_trip_through_io_error() {
        let io_err: io::Error = HttpError::Framing("bad chunk".into()).into();
        assert_eq!(io_err.kind(), io::ErrorKind::InvalidData);
        let back = HttpError::from(io_err);
        assert!(matches!(back, HttpError::Framing(ref s) if s == "bad chunk"), "{back:?}");
        assert_eq!(back.status(), 400);
    }

    #[test]
    fn plain_timeouts_become_idle_timeouts() {
        let e = HttpError::from(io::Error::new(io::ErrorKind::TimedOut, "x"));
        assert!(matches!(e, HttpError::TimedOut("idle")));
        assert_eq!(HttpError::BodyTooLarge { limit: 1 }.status(), 413);
        assert_eq!(HttpError::HeadTooLarge.status(), 431);
    }
}
