//! `rstream dial rstrm://NAME`: pipe stdin/stdout through a tunnel, like `nc`.
//!
//! Dials the tunnel with a `StreamReq` (context token), then copies stdin to the tunnel and the tunnel to stdout
//! with fixed buffers. End of stdin half-closes the tunnel (the remote side sees EOF and can still answer); the
//! command ends when the remote side closes, or quietly (exit 141) when stdout's reader goes away. Engine
//! refusals print `error: engine error <code>: <message>`.

use std::io;

use argh::FromArgs;
use futures_lite::FutureExt;

use super::{output, CliError, CliResult};
use crate::config;
use crate::transport::{pump, EngineEndpoint};

/// connect stdin/stdout to a tunnel (private or published) through the engine
#[derive(FromArgs)]
#[argh(subcommand, name = "dial", example = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | rstream dial rstrm://api")]
pub struct DialCommand {
    /// rstrm://NAME or tunnel id/name
    #[argh(positional)]
    pub target: String,
}

impl DialCommand {
    /// Runs the dial until the remote side closes.
    pub fn run(self) -> CliResult {
        let name = tunnel_name(&self.target)?;
        let ctx = config::resolve()?;
        let endpoint = EngineEndpoint::from_context(&ctx)?;
        smol::block_on(async {
            let tls = endpoint.dial_tunnel(name).await?;
            let (from_remote, to_remote) = futures_lite::io::split(tls);
            let upload = async {
                pump(smol::Unblock::new(io::stdin()), to_remote).await?;
                futures_lite::future::pending::<io::Result<u64>>().await
            };
            let download = async {
                // Only writing stdout can fail with EPIPE here: its reader went away (`… | head -c 10`).
                pump(from_remote, smol::Unblock::new(io::stdout())).await.map_err(|e| match e.kind() {
                    io::ErrorKind::BrokenPipe => output::stdout_error(e),
                    _ => CliError::new(format!("rstrm://{name}: {e}")),
                })
            };
            let upload = async { upload.await.map_err(|e| CliError::new(format!("rstrm://{name}: {e}"))) };
            download.or(upload).await?;
            Ok(0)
        })
    }
}

/// `rstrm://NAME` or a bare id/name → the name.
fn tunnel_name(target: &str) -> Result<&str, CliError> {
    let name = target.strip_prefix("rstrm://").unwrap_or(target).trim_end_matches('/');
    if name.is_empty() || name.contains(['/', ' ', ':']) {
        return Err(CliError::new(format!("invalid tunnel {target:?}: expected rstrm://NAME or a tunnel id or name")));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_rstrm_urls_or_bare_names() {
        assert_eq!(tunnel_name("rstrm://api").unwrap(), "api");
        assert_eq!(tunnel_name("rstrm://api/").unwrap(), "api");
        assert_eq!(tunnel_name("t-123").unwrap(), "t-123");
        for bad in ["rstrm://", "https://x", "a b", "rstrm://a/b"] {
            assert!(tunnel_name(bad).is_err(), "{bad}");
        }
    }
}
