//! Wire protocols, defined in one place.
//!
//! - [`rstream`]: the agent/client ⇄ engine protocol (rstream protocol 1.4.5, package
//!   `rstream.io_rstrm.protobuf`), with upstream's field numbers so our binaries interoperate with any
//!   rstream-protocol engine or client.
//! - [`webtty`]: the WebTTY session protocol spoken over a WebSocket (exec and PTY sessions).
//! - [`frame`]: the 4-byte big-endian length framing both protocols use on byte streams.
//!
//! Messages are hand-written structs with `prost` derives (no protoc, no build script). Unknown fields are
//! skipped on decode (proto3 rules), so newer upstream peers do not break us.

pub mod frame;
pub mod rstream;
pub mod webtty;
