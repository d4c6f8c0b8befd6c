//! Where a WebTTY client connects: `ws://HOST:PORT[/path]`, `wss://…`, or `rstrm://NAME[/path]` (a private
//! tunnel through the engine). A bare server name — one word, no scheme, dot, colon or slash, as the TARGET
//! column of `webtty list` shows it — is `rstrm://NAME`; any other URL without a scheme is `ws://`.
//! `--exec-path` is normalised (leading `/`, `.`/`..` resolved, no query or fragment) and joined onto the URL's
//! path.

use super::super::error::WebttyError;

/// A parsed client target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A WebTTY server reached directly over TCP (`ws`) or TLS (`wss`).
    Direct {
        /// TLS (`wss://`).
        tls: bool,
        /// Host name or IP (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
        /// Request path (with query, if any).
        path: String,
    },
    /// A WebTTY server behind a tunnel, dialed through the engine by tunnel name or id.
    Tunnel {
        /// Tunnel name or id (or a WebTTY server target the inventory resolves).
        name: String,
        /// Request path.
        path: String,
    },
}

impl Target {
    /// Parses `url`, joining `exec_path` (when given) onto its path.
    pub fn parse(url: &str, exec_path: Option<&str>) -> Result<Target, WebttyError> {
        let bad = |why: &str| WebttyError::BadTarget(format!("{url:?}: {why}"));
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None if is_bare_server_name(url) => ("rstrm".to_string(), url),
            None => ("ws".to_string(), url),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, String::new()),
        };
        if authority.is_empty() {
            return Err(bad("missing host"));
        }
        if authority.contains('@') {
            return Err(bad("user info in the URL is not supported"));
        }
        let path = join_path(&path, exec_path).map_err(|why| bad(&why))?;
        match scheme.as_str() {
            "ws" | "wss" => {
                let tls = scheme == "wss";
                let (host, port) = split_host_port(authority, if tls { 443 } else { 80 }).map_err(|why| bad(&why))?;
                Ok(Target::Direct { tls, host, port, path })
            }
            "rstrm" => {
                // `rstrm://name:443` is the same server as `rstrm://name` (upstream normalises host:443).
                let name = authority.strip_suffix(":443").unwrap_or(authority).to_string();
                Ok(Target::Tunnel { name, path })
            }
            other => Err(bad(&format!("unsupported scheme {other:?} (expected ws, wss or rstrm)"))),
        }
    }

    /// The WebSocket URL used in the handshake request (`ws://NAME/path` for tunnels).
    pub fn request_url(&self) -> String {
        match self {
            Target::Direct { tls, host, port, path } => {
                let scheme = if *tls { "wss" } else { "ws" };
                let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
                format!("{scheme}://{host}:{port}{path}")
            }
            Target::Tunnel { name, path } => format!("ws://{name}{path}"),
        }
    }

    /// The URL as shown to users and in `-o json` results.
    pub fn display_url(&self) -> String {
        match self {
            Target::Direct { .. } => self.request_url(),
            Target::Tunnel { name, path } => format!("rstrm://{name}{path}"),
        }
    }

    /// The request path.
    pub fn path(&self) -> &str {
        match self {
            Target::Direct { path, .. } | Target::Tunnel { path, .. } => path,
        }
    }
}

/// Whether `url` is a bare server name (`homelab-macmini`): a non-empty word without a scheme, `.`, `:`, `/`,
/// `?`, `[` or `@`. Such a word names a WebTTY server (`rstrm://NAME`), not a host on the default port.
pub fn is_bare_server_name(url: &str) -> bool {
    !url.is_empty() && !url.contains(['.', ':', '/', '?', '[', '@']) && !url.contains(char::is_whitespace)
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unterminated IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
        None => default_port,
    };
    Ok((host.to_string(), port))
}

/// Normalises an exec path: leading `/`, `.` and `..` resolved, no query or fragment.
pub fn normalize_exec_path(exec_path: &str) -> Result<String, String> {
    if exec_path.contains(['?', '#']) {
        return Err(format!("exec path {exec_path:?} must not contain a query or fragment"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in exec_path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Joins `exec_path` onto the URL path (keeping the URL's query), or returns the URL path (`/` if empty).
fn join_path(url_path: &str, exec_path: Option<&str>) -> Result<String, String> {
    let (path, query) = match url_path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url_path, None),
    };
    let mut joined = match exec_path {
        Some(exec) => {
            let exec = normalize_exec_path(exec)?;
            let base = path.trim_end_matches('/');
            if exec == "/" {
                format!("{base}/")
            } else {
                format!("{base}{exec}")
            }
        }
        None if path.is_empty() => "/".to_string(),
        None => path.to_string(),
    };
    if let Some(q) = query {
        joined.push('?');
        joined.push_str(q);
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls_get_default_ports_and_paths() {
        assert_eq!(
            Target::parse("ws://127.0.0.1:8080", None).unwrap(),
            Target::Direct { tls: false, host: "127.0.0.1".into(), port: 8080, path: "/".into() }
        );
        assert_eq!(Target::parse("127.0.0.1:9", None).unwrap().request_url(), "ws://127.0.0.1:9/");
        assert_eq!(Target::parse("wss://h", None).unwrap().request_url(), "wss://h:443/");
        assert_eq!(Target::parse("ws://[::1]:80/x", None).unwrap().request_url(), "ws://[::1]:80/x");
    }

    #[test]
    fn exec_path_is_normalised_and_joined() {
        let t = Target::parse("ws://h:1/base/", Some("shell/../exec/")).unwrap();
        assert_eq!(t.path(), "/base/exec");
        assert_eq!(Target::parse("rstrm://pi", Some("/")).unwrap().display_url(), "rstrm://pi/");
        assert!(Target::parse("ws://h:1", Some("/x?y")).is_err());
    }

    #[test]
    fn rstrm_targets_name_a_tunnel() {
        let t = Target::parse("rstrm://homelab:443/", None).unwrap();
        assert_eq!(t, Target::Tunnel { name: "homelab".into(), path: "/".into() });
        assert_eq!(t.request_url(), "ws://homelab/");
    }

    #[test]
    fn bare_server_names_are_tunnels_and_hosts_stay_direct() {
        let t = Target::parse("homelab-macmini", None).unwrap();
        assert_eq!(t, Target::Tunnel { name: "homelab-macmini".into(), path: "/".into() });
        assert_eq!(t.display_url(), "rstrm://homelab-macmini/");
        for direct in ["pi.lan", "127.0.0.1", "pi:8080", "[::1]:80", "pi/x"] {
            assert!(matches!(Target::parse(direct, None).unwrap(), Target::Direct { .. }), "{direct}");
        }
        assert!(!is_bare_server_name("") && !is_bare_server_name("a b"));
    }

    #[test]
    fn bad_urls_name_the_value() {
        for url in ["ftp://h", "ws://", "ws://h:99999", "ws://u@h"] {
            let err = Target::parse(url, None).unwrap_err().to_string();
            assert!(err.contains(&format!("{url:?}")), "{err}");
        }
    }
}
