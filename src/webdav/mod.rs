//! WebDAV filesystem sidecar at `/fs`: the device handler and the operator client.
//!
//! The handler ([`WebDav`], feature `device`) serves one directory tree over RFC 4918 class 1 and 2 (OPTIONS,
//! PROPFIND, GET/HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPPATCH, LOCK, UNLOCK) on top of
//! [`crate::http::ServerConn`], independent of how the connection arrived: the WebTTY server mounts it at `/fs`
//! on its HTTP server, tests serve it on a loopback listener. Every path is confined below the root
//! ([`path`]), the agent's own secrets are never served even inside the root ([`ProtectedPaths`]), read-only
//! mode refuses every writing method, uploads are atomic and bounded, answers stream.
//!
//! The client ([`DavClient`], feature `operator`) lists, stats, reads, writes, creates, deletes and moves over
//! any stream the caller connects (an rstream tunnel dial or TCP), streaming bodies both ways.
//!
//! ```no_run
//! # #[cfg(feature = "device")]
//! # async fn serve(listener: async_net::TcpListener) -> std::io::Result<()> {
//! use std::sync::Arc;
//! use rstream::webdav::{FsConfig, WebDav};
//! let dav = Arc::new(WebDav::new(FsConfig::new("/srv/data"))?);
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     let dav = dav.clone();
//!     smol::spawn(async move { dav.serve_connection(stream).await }).detach();
//! }
//! # }
//! ```

pub mod xml;

#[cfg(feature = "operator")]
mod client;
#[cfg(feature = "operator")]
pub use client::{normalize_path, DavClient, DavClientError, DavEntry, EntryKind};

#[cfg(feature = "device")]
mod error;
#[cfg(feature = "device")]
mod fsio;
#[cfg(feature = "device")]
mod get;
#[cfg(feature = "device")]
pub mod gzip;
#[cfg(feature = "device")]
mod handler;
#[cfg(feature = "device")]
pub mod lock;
#[cfg(feature = "device")]
mod locking;
#[cfg(feature = "device")]
pub mod path;
#[cfg(feature = "device")]
mod propfind;
#[cfg(feature = "device")]
mod props;
#[cfg(feature = "device")]
mod protected;
#[cfg(feature = "device")]
mod put;
#[cfg(feature = "device")]
mod tree;

#[cfg(feature = "device")]
pub use error::DavError;
#[cfg(feature = "device")]
pub use handler::{FsConfig, WebDav};
#[cfg(feature = "device")]
pub use path::{DavPath, FsRoot, TEMP_PREFIX};
#[cfg(feature = "device")]
pub use protected::ProtectedPaths;

/// The request-body parsers (PROPFIND, PROPPATCH, LOCK), exported for the fuzz targets in `fuzz/`.
#[cfg(feature = "device")]
#[doc(hidden)]
pub use {
    locking::{parse_lockinfo, LockInfo},
    propfind::{parse_propfind, PropRequest},
    props::{parse_propertyupdate, PropOp},
};
