//! `rstream dial rstrm://NAME`: pipe stdin/stdout through a private tunnel, like `nc`.

use argh::FromArgs;

use super::{not_yet_implemented, CliResult};

/// connect stdin/stdout to a tunnel (private or published) through the engine
#[derive(FromArgs)]
#[argh(subcommand, name = "dial", example = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | rstream dial rstrm://api")]
pub struct DialCommand {
    /// rstrm://NAME or tunnel id/name
    #[argh(positional)]
    pub target: String,
}

impl DialCommand {
    /// Runs the dial until both directions end.
    pub fn run(self) -> CliResult {
        not_yet_implemented("dial")
    }
}
