//! TLS 1.3 transports to and from the engine.
//!
//! The device and the operator reach the engine with the embedded-tls client (`client` feature); the engine
//! accepts with rustls (`engine` feature). Everything above works on `AsyncRead + AsyncWrite` streams.
//!
//! Client side: [`connect_tls`] opens a [`TlsStream`] (certificate always verified against the context's CA);
//! [`EngineEndpoint`] turns a context into connections: [`EngineEndpoint::connect`] (any ALPN) and
//! [`EngineEndpoint::dial_tunnel`] (a tunnel's byte stream by id or name).

mod pump;

#[cfg(feature = "client")]
mod dial;
#[cfg(feature = "client")]
mod ecdsa_p256;
#[cfg(feature = "client")]
mod pem;
#[cfg(feature = "client")]
mod server_chain;
#[cfg(feature = "client")]
pub(crate) mod tls_client;
#[cfg(feature = "client")]
mod tls_splice;
#[cfg(feature = "client")]
mod tls_thread;
#[cfg(feature = "client")]
mod tls_verify;
#[cfg(feature = "client")]
mod verified_chains;

pub use crate::deadline::with_deadline;
#[cfg(feature = "client")]
pub use dial::{payload_name, DialError, EngineEndpoint};
#[cfg(feature = "client")]
pub use pem::certificates_from_pem;
pub use pump::pump;
#[cfg(feature = "client")]
pub use tls_client::{connect_tls, ClientTlsConfig, TlsStream};
#[cfg(feature = "client")]
pub use tls_splice::splice;

#[cfg(feature = "engine")]
pub mod tls_server;
