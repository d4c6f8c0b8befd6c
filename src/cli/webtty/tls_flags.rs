//! The `--tls-ca-file`, `--tls-server-name` and `--tls-insecure-skip-verify` flags of `webtty exec`, `client` and
//! `fs`: they set up the client side of a `--listen` server's own TLS listener (`wss://`, `https://`), so for any
//! other URL they would do nothing and are refused instead. An `rstrm://` URL goes through the engine, whose
//! certificate the context's CA verifies; a `ws://` or `http://` URL is plain TCP. A CA file next to
//! `--tls-insecure-skip-verify` would never be read either.

use std::path::{Path, PathBuf};

use super::auth_token;
use crate::cli::{refuse_given, CliError};
use crate::operator::fs_session::FsTarget;
use crate::webtty::client::{ConnectOptions, DirectTls, Target};

/// How a `--url` reaches its server, as far as the TLS flags care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UrlTransport {
    /// `rstrm://NAME` (or a bare NAME): through the engine.
    Engine,
    /// `ws://` or `http://`: plain TCP to the server.
    Plain,
    /// `wss://` or `https://`: the server's own TLS.
    Tls,
}

impl UrlTransport {
    /// The transport of an exec or terminal `--url`; `None` when it does not parse (the session reports that).
    fn of_session_url(url: &str) -> Option<UrlTransport> {
        Some(match Target::parse(url, None).ok()? {
            Target::Direct { tls: true, .. } => UrlTransport::Tls,
            Target::Direct { .. } => UrlTransport::Plain,
            Target::Tunnel { .. } => UrlTransport::Engine,
        })
    }

    /// The transport of a `webtty fs --url`; `None` when it does not parse (opening the sidecar reports that).
    fn of_fs_url(url: &str) -> Option<UrlTransport> {
        Some(match FsTarget::parse(url).ok()? {
            FsTarget::Direct { tls: true, .. } => UrlTransport::Tls,
            FsTarget::Direct { .. } => UrlTransport::Plain,
            FsTarget::Tunnel(_) => UrlTransport::Engine,
        })
    }
}

/// The TLS flags of `webtty exec` or `webtty client` (`--tls-ca-file`, `--tls-server-name`,
/// `--tls-insecure-skip-verify`) for their `--url`, [`checked`].
pub fn for_session_url(url: &str, ca: &Option<PathBuf>, name: &Option<String>, insecure: bool) -> TlsResult {
    checked(direct_tls(ca, name, insecure), UrlTransport::of_session_url(url), "wss://")
}

/// The connection flags `webtty exec` and `webtty client` share, as the session's [`ConnectOptions`]: the bearer
/// token (`--auth-token-file` or the environment), `--exec-path`, and the TLS flags [`for_session_url`].
pub fn session_connect(
    url: &str,
    auth_token_file: Option<&Path>,
    exec_path: &Option<String>,
    ca: &Option<PathBuf>,
    name: &Option<String>,
    insecure: bool,
) -> Result<ConnectOptions, CliError> {
    Ok(ConnectOptions {
        auth_token: auth_token(auth_token_file)?,
        exec_path: exec_path.clone(),
        tls: for_session_url(url, ca, name, insecure)?,
    })
}

/// The TLS flags of `webtty fs` for its `--url`, [`checked`].
pub fn for_fs_url(url: &str, ca: &Option<PathBuf>, name: &Option<String>, insecure: bool) -> TlsResult {
    checked(direct_tls(ca, name, insecure), UrlTransport::of_fs_url(url), "https:// or wss://")
}

/// The client TLS settings the flags describe, or the refusal of a flag that would do nothing.
pub type TlsResult = Result<DirectTls, CliError>;

fn direct_tls(ca_file: &Option<PathBuf>, server_name: &Option<String>, insecure_skip_verify: bool) -> DirectTls {
    DirectTls { ca_file: ca_file.clone(), server_name: server_name.clone(), insecure_skip_verify }
}

/// `tls` (the flags as given), or the refusal of the first one given when `transport` is not the server's own TLS
/// (`tls_urls` names the schemes that are, for the message), and of a CA that skipping verification would ignore.
fn checked(tls: DirectTls, transport: Option<UrlTransport>, tls_urls: &str) -> Result<DirectTls, CliError> {
    let unverified_ca = [("--tls-ca-file", tls.ca_file.is_some() && tls.insecure_skip_verify)];
    refuse_given(&unverified_ca, "is never consulted with --tls-insecure-skip-verify: give one of the two")?;
    let why = match transport {
        None | Some(UrlTransport::Tls) => return Ok(tls),
        Some(UrlTransport::Engine) => {
            "an rstrm:// URL goes through the engine, whose certificate the context's CA verifies"
        }
        Some(UrlTransport::Plain) => "this URL is plain TCP",
    };
    let given = [
        ("--tls-ca-file", tls.ca_file.is_some()),
        ("--tls-server-name", tls.server_name.is_some()),
        ("--tls-insecure-skip-verify", tls.insecure_skip_verify),
    ];
    refuse_given(&given, &format!("applies only to {tls_urls} URLs (a --listen server's own TLS): {why}"))?;
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_classified_by_how_they_reach_the_server() {
        assert_eq!(UrlTransport::of_session_url("wss://pi.lan:8443"), Some(UrlTransport::Tls));
        assert_eq!(UrlTransport::of_session_url("ws://127.0.0.1:8080"), Some(UrlTransport::Plain));
        assert_eq!(UrlTransport::of_session_url("pi"), Some(UrlTransport::Engine));
        assert_eq!(UrlTransport::of_session_url("ftp://x"), None);
        assert_eq!(UrlTransport::of_fs_url("https://pi.lan"), Some(UrlTransport::Tls));
        assert_eq!(UrlTransport::of_fs_url("http://pi.lan"), Some(UrlTransport::Plain));
        assert_eq!(UrlTransport::of_fs_url("rstrm://pi"), Some(UrlTransport::Engine));
    }

    #[test]
    fn tls_flags_pass_for_tls_and_unparsed_urls_and_are_refused_otherwise() {
        let insecure = DirectTls { insecure_skip_verify: true, ..DirectTls::default() };
        assert!(checked(insecure.clone(), Some(UrlTransport::Tls), "wss://").is_ok());
        assert!(checked(insecure.clone(), None, "wss://").is_ok());
        assert!(checked(DirectTls::default(), Some(UrlTransport::Engine), "wss://").is_ok(), "no flag, no refusal");
        let refused = checked(insecure, Some(UrlTransport::Plain), "wss://").unwrap_err().message;
        assert!(refused.starts_with("--tls-insecure-skip-verify applies only to wss:// URLs"), "{refused}");
        let ca = DirectTls { ca_file: Some("ca.pem".into()), ..DirectTls::default() };
        let refused = checked(ca.clone(), Some(UrlTransport::Engine), "wss://").unwrap_err().message;
        assert!(refused.starts_with("--tls-ca-file") && refused.contains("through the engine"), "{refused}");
        let unverified = DirectTls { insecure_skip_verify: true, ..ca };
        let refused = checked(unverified, Some(UrlTransport::Tls), "wss://").unwrap_err().message;
        assert!(refused.contains("--tls-ca-file is never consulted with --tls-insecure-skip-verify"), "{refused}");
    }
}
