//! TLS 1.3 transports to and from the engine.
//!
//! The device and the operator reach the engine with the embedded-tls client (`client` feature); the engine
//! accepts with rustls (`engine` feature). Everything above works on `AsyncRead + AsyncWrite` streams.
