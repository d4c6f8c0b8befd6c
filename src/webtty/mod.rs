//! WebTTY: remote exec and PTY sessions over WebSocket — the device server and the operator client.
//!
//! Wire: each WebTTY protobuf message ([`crate::proto::webtty`]) is one binary WebSocket message ([`wire`]).
//!
//! Server side (feature `device`): [`server`] answers HTTP connections (local TCP, TLS with `tls_listen` when
//! the build has feature `engine`, or tunnel streams; [`admission`] decides whom a full listener drops) and
//! upgrades them after [`gate`] (bearer token, origin);
//! [`session`] drives one session's protocol under the server-wide [`policy`] (session slots, maximum duration,
//! shutdown; [`execution`] decides the session's OS user), [`process`] spawns the child (pipes or PTY) under a per-session supervisor and ends its whole
//! process tree ([`proc_tree`] reads it from `/proc`, [`orphans`] sweeps what a killed supervisor left), `pump`
//! moves output with backpressure; [`labels`] lists what the server advertises in tunnel inventory.
//!
//! Client side (feature `operator`): [`client`] — `exec` (capture output) and the interactive terminal.
//! Only [`sys`] contains `unsafe` code (PTYs, process groups, terminal modes, signals).

use std::future::Future;
use std::time::Duration;

mod error;
pub mod sys;
pub mod wire;

pub use error::WebttyError;

#[cfg(feature = "operator")]
pub mod client;

#[cfg(feature = "device")]
pub mod admission;
#[cfg(feature = "device")]
pub mod execution;
#[cfg(feature = "device")]
pub mod gate;
#[cfg(feature = "device")]
pub mod labels;
#[cfg(feature = "device")]
pub mod orphans;
#[cfg(feature = "device")]
pub mod policy;
#[cfg(feature = "device")]
pub mod proc_tree;
#[cfg(feature = "device")]
pub mod process;
#[cfg(feature = "device")]
mod pump;
#[cfg(feature = "device")]
pub mod server;
#[cfg(feature = "device")]
pub mod session;
#[cfg(all(test, feature = "device", feature = "operator"))]
mod session_tests;
#[cfg(all(feature = "device", feature = "engine"))]
pub mod tls_listen;

/// Runs `fut` with a deadline: `None` if `limit` passes first.
pub async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    crate::deadline::timeout(limit, fut).await.ok()
}
