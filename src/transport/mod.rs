//! TLS 1.3 transports to and from the engine.
//!
//! The device and the operator reach the engine with the embedded-tls client (`client` feature); the engine
//! accepts with rustls (`engine` feature). Everything above works on `AsyncRead + AsyncWrite` streams.

#[cfg(feature = "client")]
mod pem;
#[cfg(feature = "client")]
mod tls_client;
#[cfg(feature = "client")]
mod tls_thread;
#[cfg(feature = "client")]
mod tls_verify;

#[cfg(feature = "client")]
pub use tls_client::{connect_tls, ClientTlsConfig, TlsStream};
