//! The self-hosted relay: TLS listener with ALPN split, tunnel registry, stream routing, REST API, JWT auth.
