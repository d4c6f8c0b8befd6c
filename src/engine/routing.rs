//! Published host names: `<name>.t.<engine-host>` ⇄ tunnel name.
//!
//! The engine answers for one or more public hosts (`--host`, default `localhost`). A published tunnel named
//! `shell` is reachable as `https://shell.t.<host>[:port]` for every such host; the first host is the one
//! reported in the tunnel's `host` property. Matching ignores case, a trailing dot and the port.

/// The engine's public host names and TLS port.
#[derive(Clone, Debug)]
pub struct PublicHosts {
    hosts: Vec<String>,
    port: u16,
}

impl PublicHosts {
    /// Hosts (lowercased; `localhost` when empty) and the public TLS port.
    pub fn new(hosts: &[String], port: u16) -> Self {
        let mut list: Vec<String> = hosts.iter().map(|h| h.trim_end_matches('.').to_ascii_lowercase()).collect();
        if list.is_empty() {
            list.push("localhost".into());
        }
        list.dedup();
        PublicHosts { hosts: list, port }
    }

    /// The hosts, the primary one first.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The public TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `<name>.t.<primary host>` plus `:port` unless it is 443.
    pub fn tunnel_authority(&self, name: &str) -> String {
        let host = format!("{}.t.{}", name.to_ascii_lowercase(), self.hosts[0]);
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The tunnel name addressed by `authority` (an SNI name or a `Host` header), if it is `<name>.t.<host>`
    /// for one of our hosts and `<name>` is a single label.
    pub fn tunnel_name<'a>(&self, authority: &'a str) -> Option<&'a str> {
        let host = strip_port(authority).trim_end_matches('.');
        self.hosts.iter().find_map(|ours| {
            let cut = host.len().checked_sub(ours.len() + 3)?;
            let (label, suffix) = (host.get(..cut)?, host.get(cut..)?);
            let suffix = suffix.as_bytes();
            let suffix_ok =
                suffix[..3].eq_ignore_ascii_case(b".t.") && suffix[3..].eq_ignore_ascii_case(ours.as_bytes());
            let label_ok =
                !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            (suffix_ok && label_ok).then_some(label)
        })
    }
}

/// `host:port` → `host`; `[v6]:port` → `v6`; anything else unchanged.
pub fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_names_are_parsed_from_sni_and_host_headers() {
        let hosts = PublicHosts::new(&["Relay.Example.com".into(), "localhost".into()], 8443);
        assert_eq!(hosts.tunnel_name("shell.t.relay.example.com"), Some("shell"));
        assert_eq!(hosts.tunnel_name("Shell.T.Relay.Example.COM:8443"), Some("Shell"));
        assert_eq!(hosts.tunnel_name("web.t.localhost."), Some("web"));
        assert_eq!(hosts.tunnel_name("web.t.localhost:80"), Some("web"));
        for miss in [
            "relay.example.com",
            "t.localhost",
            ".t.localhost",
            "a.b.t.localhost",
            "web.t.localhostx",
            "web.x.localhost",
            "",
            "[::1]:8443",
            "127.0.0.1",
            "é.t.localhost",
            "xé.t.localhost",
        ] {
            assert_eq!(hosts.tunnel_name(miss), None, "{miss:?}");
        }
    }

    #[test]
    fn authority_uses_the_primary_host_and_hides_443() {
        assert_eq!(PublicHosts::new(&[], 8443).tunnel_authority("Web"), "web.t.localhost:8443");
        assert_eq!(PublicHosts::new(&["r.example".into()], 443).tunnel_authority("web"), "web.t.r.example");
    }

    #[test]
    fn ports_are_stripped_from_ipv4_ipv6_and_names() {
        assert_eq!(strip_port("a.example:443"), "a.example");
        assert_eq!(strip_port("[::1]:8443"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_port("a.example"), "a.example");
    }
}
