//! Contexts: which engine to reach, with which token and CA — rstream's `~/.rstream/config.yaml`.
//!
//! The file format is upstream's (camelCase YAML: `version`, `defaults.context.name`, `environments[]`,
//! `contexts[]` with `engine`, `auth.token.storage{kind: inline, value}`, `transport.tls.caFile`), so a config
//! written by the Go CLI works here and the other way round; keys we do not model are kept as they were.
//!
//! - [`file`]: the data model, loading (missing/empty file = empty config; invalid YAML = error with path and
//!   line, never overwritten) and atomic 0600 saving under a lock.
//! - [`resolve`]: picks the context for a command: `RSTREAM_CONTEXT` or the default, then `RSTREAM_ENGINE` and
//!   `RSTREAM_AUTHENTICATION_TOKEN` override its engine and token.

pub mod file;
pub mod resolve;

pub use crate::atomic_file::write_atomic;
pub use file::{config_path, update, ConfigError, ConfigFile, ContextEntry};
pub use resolve::{resolve, ResolvedContext};
