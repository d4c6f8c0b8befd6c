//! The error type of the WebDAV handler: a status, a message carrying the offending value, and optionally the
//! RFC 4918 precondition element for the `<D:error>` body (e.g. `propfind-finite-depth`, `lock-token-submitted`).

use std::fmt;
use std::io;

/// A request the handler refuses or fails, answered with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavError {
    /// HTTP status of the answer.
    pub status: u16,
    /// Human-readable cause, naming the offending value (`fs path escapes root: "/etc/passwd"`).
    pub message: String,
    /// Inner XML of a `<D:error>` body (`<D:propfind-finite-depth/>`), if the RFC defines one.
    pub condition: Option<String>,
}

impl DavError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), condition: None }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 403 Forbidden (hostile paths, escapes, read-only mode).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404 Not Found.
    pub fn not_found(path: &str) -> Self {
        Self::new(404, format!("no such file or directory: {path:?}"))
    }

    /// 409 Conflict (a missing or non-directory parent).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    /// Adds the RFC 4918 precondition element for the `<D:error>` body.
    pub fn with_condition(mut self, xml: impl Into<String>) -> Self {
        self.condition = Some(xml.into());
        self
    }

    /// Maps a filesystem error on `path` to a status: missing → 404, permission → 403, symlink loop → 403,
    /// not a directory → 409, exists → 405, no space → 507, anything else → 500.
    pub fn io(e: io::Error, path: &str) -> Self {
        let status = match e.kind() {
            io::ErrorKind::NotFound => 404,
            io::ErrorKind::PermissionDenied => 403,
            io::ErrorKind::AlreadyExists => 405,
            io::ErrorKind::NotADirectory => 409,
            io::ErrorKind::IsADirectory => 405,
            io::ErrorKind::DirectoryNotEmpty => 409,
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => 507,
            io::ErrorKind::FileTooLarge => 413,
            _ if e.raw_os_error() == Some(libc::ELOOP) => 403,
            _ => 500,
        };
        Self::new(status, format!("{path:?}: {e}"))
    }
}

impl fmt::Display for DavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for DavError {}

/// How a method failed: before anything was written (answer the error) or on the connection itself.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nothing was written yet: answer with this error.
    Dav(DavError),
    /// The connection failed (or a streamed answer broke off): drop the connection.
    Io(io::Error),
}

impl From<DavError> for Failure {
    fn from(e: DavError) -> Self {
        Failure::Dav(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_errors_map_to_statuses() {
        assert_eq!(DavError::io(io::ErrorKind::NotFound.into(), "/a").status, 404);
        assert_eq!(DavError::io(io::Error::from_raw_os_error(libc::ELOOP), "/loop").status, 403);
        assert_eq!(DavError::io(io::Error::from_raw_os_error(libc::ENOSPC), "/big").status, 507);
        let e = DavError::io(io::ErrorKind::PermissionDenied.into(), "/secret");
        assert!(e.message.contains("\"/secret\""), "{e}");
    }
}
