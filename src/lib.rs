//! rstream: an agent-native network layer for edge devices, in one static binary.
//!
//! Devices dial **out** to a relay (the engine) and never open an inbound port; operators and AI agents reach
//! them through the relay by tunnel name.
//!
//! - [`proto`]: the wire protocols (rstream 1.3 envelopes, WebTTY messages) and their framing.
//! - [`http`]: a small bounded HTTP/1.1 server and client over any `AsyncRead + AsyncWrite`.
//! - [`transport`]: TLS 1.3 — the embedded-tls client every device and operator uses to reach the engine,
//!   and the rustls server inside the engine.
//! - [`backoff`]: reconnect delays with jitter (agent sessions, `rstream events`).
//! - [`config`]: contexts (`~/.rstream/config.yaml`): which engine, which token, which CA.
//! - [`agent`]: the device side of the tunnel plane: control channel, tunnel registration, proxy legs,
//!   reconnect; `forward` is built on it.
//! - [`engine`]: the self-hosted relay: TLS listener, ALPN split, registry, routing, REST API, JWT auth.
//! - [`webtty`]: remote exec and PTY sessions over WebSocket (server on the device, client for operators).
//! - [`webdav`]: the filesystem sidecar at `/fs` (handler on the device, client for operators).
//! - [`operator`]: inventory, filters, the events client and webhook forwarding, doctor, codex/claude setup.
//! - [`mcp`]: `rstream mcp serve`, the only place tokio runs.
//! - [`cli`]: the argh command tree; each command parses flags and calls into the modules above.
//!
//! Cargo features select roles: `device` (smol only, no tokio), `operator`, `mcp`, `engine`.
//! Every bound on buffers, queues and time is a named constant in [`limits`]; every credential is a
//! [`secret::Secret`].

// `deny`, not `forbid`: exactly one module (`webtty::sys`, PTYs and signals) opts in with `allow`.
#![deny(unsafe_code)]

pub mod atomic_file;
pub mod deadline;
pub mod encoding;
pub mod limits;
#[macro_use]
pub mod log;
pub mod proto;
pub mod secret;
pub mod state_layout;

pub mod http;

pub mod transport;

#[cfg(feature = "client")]
pub mod backoff;
#[cfg(feature = "client")]
pub mod config;

#[cfg(feature = "device")]
pub mod agent;

#[cfg(feature = "engine")]
pub mod engine;

#[cfg(any(feature = "device", feature = "operator"))]
pub mod webtty;

#[cfg(any(feature = "device", feature = "operator"))]
pub mod webdav;

#[cfg(feature = "operator")]
pub mod operator;

#[cfg(feature = "mcp")]
pub mod mcp;

pub mod cli;
