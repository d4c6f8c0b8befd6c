//! The one way command output reaches stdout, and what a failed write means.
//!
//! `println!` panics when stdout fails (a closed pipe, a full disk), which with `panic = "abort"` is a core dump
//! for `rstream webtty list | head -1`. Commands print with `writeln!(Stdout, …)?` (see [`Stdout`]), or
//! [`write_bytes`] for raw output, and propagate the error; `main` flushes once more at the end with [`flush`].
//!
//! - The reader went away (`EPIPE`): the command ends quietly with [`BROKEN_PIPE_EXIT`] (128 + SIGPIPE, the status
//!   a shell reports for `cat big | head -1`). Nothing is printed: the user asked for less output, not an error.
//! - Any other failure (`ENOSPC` on `/dev/full`, `EIO`): `error: writing to stdout: <why>`, exit 1.

use std::fmt;
use std::io::{self, Write};

use super::CliError;

/// Exit code when stdout's reader went away: 128 + SIGPIPE, as a shell reports for coreutils.
pub const BROKEN_PIPE_EXIT: u8 = 141;

/// This process's stdout for `write!` / `writeln!`: `writeln!(Stdout, "{x}")?` is `println!` returning
/// `Result<(), CliError>` instead of panicking (see the module doc for what a failure becomes).
#[derive(Clone, Copy, Debug)]
pub struct Stdout;

impl Stdout {
    /// Writes formatted text (what `write!` / `writeln!` call).
    pub fn write_fmt(self, args: fmt::Arguments<'_>) -> Result<(), CliError> {
        io::stdout().lock().write_fmt(args).map_err(stdout_error)
    }
}

/// Writes bytes to stdout and flushes them (raw remote output).
pub fn write_bytes(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(stdout_error)
}

/// Flushes what is still buffered for stdout; called once before the process exits.
pub fn flush() -> Result<(), CliError> {
    io::stdout().lock().flush().map_err(stdout_error)
}

/// What a failed stdout write means for the command: [`CliError::quiet`] for a closed pipe, else an error naming
/// the cause.
pub fn stdout_error(e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return CliError::quiet(BROKEN_PIPE_EXIT);
    }
    CliError::new(format!("writing to stdout: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_quiet_and_other_failures_name_the_cause() {
        let closed = stdout_error(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!((closed.code, closed.message.as_str()), (BROKEN_PIPE_EXIT, ""));
        let full = stdout_error(io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(full.code, 1);
        assert!(full.message.starts_with("writing to stdout: No space left on device"), "{}", full.message);
    }
}
