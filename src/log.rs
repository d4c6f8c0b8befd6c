//! Minimal leveled logging to stderr (stdout belongs to command output and the MCP protocol).
//!
//! `-v` raises the level to debug. No global state beyond one atomic level; no dependency.

use std::sync::atomic::{AtomicU8, Ordering};

/// Errors and warnings only.
pub const WARN: u8 = 1;
/// Normal progress (default).
pub const INFO: u8 = 2;
/// Verbose (`-v`).
pub const DEBUG: u8 = 3;

static LEVEL: AtomicU8 = AtomicU8::new(INFO);

/// Sets the highest level that is printed.
pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// Whether `level` is printed.
pub fn enabled(level: u8) -> bool {
    level <= LEVEL.load(Ordering::Relaxed)
}

/// Prints one line at `level` with a level tag.
pub fn emit(level: u8, args: std::fmt::Arguments<'_>) {
    if enabled(level) {
        let tag = match level {
            WARN => "warn",
            INFO => "info",
            _ => "debug",
        };
        eprintln!("rstream {tag}: {args}");
    }
}

/// Logs a warning.
#[macro_export]
macro_rules! log_warn { ($($t:tt)*) => { $crate::log::emit($crate::log::WARN, format_args!($($t)*)) } }
/// Logs progress.
#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::log::emit($crate::log::INFO, format_args!($($t)*)) } }
/// Logs detail shown with `-v`.
#[macro_export]
macro_rules! log_debug { ($($t:tt)*) => { $crate::log::emit($crate::log::DEBUG, format_args!($($t)*)) } }
