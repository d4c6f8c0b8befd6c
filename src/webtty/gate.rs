//! Who may open a WebTTY WebSocket: bearer token, `Origin` policy, `Host` of an unauthenticated listener, and a
//! well-formed upgrade request.
//!
//! Rules (upstream's): a configured token must arrive as `Authorization: Bearer <token>` (compared in constant
//! time); a request without `Origin` (non-browser clients) passes the origin check, `*` allows any origin, an
//! exact entry allows that origin, and when a token is required a same-host origin passes too. Every refusal
//! maps to one HTTP status here.
//!
//! A listener without a token (`--allow-unauthenticated`) also checks `Host` ([`LocalHosts`]): a web page can
//! point a name it controls at 127.0.0.1 (DNS rebinding) and then talk to the listener as a same-origin site, but
//! its requests still carry that name. Only `localhost`, a loopback IP literal, or the address the client
//! connected to are answered; anything else gets `421 Misdirected Request`.

use std::net::IpAddr;

use crate::http::websocket::{self, UpgradeRefusal};
use crate::http::{RequestHead, ResponseHead};
use crate::secret::Secret;

/// Access rules of one WebTTY server.
#[derive(Clone, Debug, Default)]
pub struct AccessPolicy {
    /// Required bearer token (`None`: unauthenticated — `--allow-unauthenticated` or `--rstream` mode, where
    /// the engine authenticates).
    pub token: Option<Secret>,
    /// `--allowed-origin` entries (`*` = any).
    pub allowed_origins: Vec<String>,
    /// The `Host` names an unauthenticated `--listen` server answers (`None`: any — a token is required, or in
    /// `--rstream` mode the engine authenticates).
    pub hosts: Option<LocalHosts>,
}

/// The `Host` values an unauthenticated listener answers: `localhost`, loopback IP literals, and the IP it
/// listens on or was reached at (any port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalHosts {
    /// The address the listener is bound to (unspecified when it listens on every interface).
    pub listen: IpAddr,
}

impl LocalHosts {
    /// Whether `host` (a `Host` header value) names this listener; `local` is the address the client reached.
    pub fn allows(&self, host: &str, local: Option<IpAddr>) -> bool {
        let name = host_name(host.trim());
        if name.eq_ignore_ascii_case("localhost") || name.eq_ignore_ascii_case("localhost.") {
            return true;
        }
        let Ok(ip) = name.parse::<IpAddr>() else { return false };
        let ip = ip.to_canonical();
        ip.is_loopback() || ip == self.listen.to_canonical() || local.is_some_and(|l| l.to_canonical() == ip)
    }
}

/// The host part of a `Host` value: without its port, an IPv6 literal without its brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or("", |(ip, _)| ip);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Missing or wrong bearer token (401).
    Unauthorized,
    /// `Origin` not allowed (403); carries the origin.
    Origin(String),
    /// A plain HTTP request at the WebSocket endpoint (426).
    NotWebSocket,
    /// A broken upgrade request (400); carries what is wrong.
    BadUpgrade(String),
    /// An unauthenticated listener named by a `Host` it does not answer (421); carries the value (`None`: the
    /// request had no `Host`).
    Host(Option<String>),
}

impl Refusal {
    /// The response for this refusal: head and a one-line text body.
    pub fn response(&self) -> (ResponseHead, String) {
        let (status, text) = match self {
            Refusal::Unauthorized => (401, "missing or wrong bearer token".to_string()),
            Refusal::Origin(origin) => (403, format!("origin {origin:?} is not allowed (see --allowed-origin)")),
            Refusal::NotWebSocket => {
                (426, "this is a WebTTY endpoint: connect with a WebSocket client (rstream webtty client)".to_string())
            }
            Refusal::BadUpgrade(why) => (400, format!("bad websocket upgrade: {why}")),
            Refusal::Host(host) => (
                421,
                format!(
                    "host {host:?} is not served here: a listener without a token answers only localhost, loopback \
                     addresses and its own address (DNS rebinding guard)"
                ),
            ),
        };
        let mut head = ResponseHead::new(status).header("Content-Type", "text/plain; charset=utf-8");
        match self {
            Refusal::Unauthorized => head = head.header("WWW-Authenticate", "Bearer realm=\"rstream-webtty\""),
            Refusal::NotWebSocket => head = head.header("Upgrade", "websocket").header("Connection", "Upgrade"),
            _ => {}
        }
        (head, format!("{text}\n"))
    }
}

impl AccessPolicy {
    /// Checks the `Host` (unauthenticated listeners), the bearer token and the origin of `req`; `local` is the
    /// address the client connected to, when known. A refused request ends its connection.
    pub fn check(&self, req: &RequestHead, local: Option<IpAddr>) -> Result<(), Refusal> {
        if let Some(hosts) = &self.hosts {
            match req.headers.get("host") {
                Some(host) if hosts.allows(host, local) => {}
                host => return Err(Refusal::Host(host.map(str::to_owned))),
            }
        }
        if let Some(token) = &self.token {
            let presented = req
                .headers
                .get("authorization")
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.expose().as_bytes())) {
                return Err(Refusal::Unauthorized);
            }
        }
        match req.headers.get("origin") {
            None => Ok(()),
            Some(origin) if self.origin_allowed(origin, req.headers.get("host")) => Ok(()),
            Some(origin) => Err(Refusal::Origin(origin.to_string())),
        }
    }

    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        if self.allowed_origins.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin)) {
            return true;
        }
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest).trim_end_matches('/');
        self.token.is_some() && host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
    }
}

/// Validates a WebSocket upgrade request and returns the `101 Switching Protocols` response head.
pub fn upgrade_response(req: &RequestHead) -> Result<ResponseHead, Refusal> {
    websocket::upgrade_response(req).map_err(|refusal| match refusal {
        UpgradeRefusal::NotWebSocket => Refusal::NotWebSocket,
        UpgradeRefusal::Bad(why) => Refusal::BadUpgrade(why),
    })
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_request() -> RequestHead {
        RequestHead::new("GET", "/")
            .header("Host", "127.0.0.1:8080")
            .header("Upgrade", "websocket")
            .header("Connection", "keep-alive, Upgrade")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    fn policy(token: Option<&str>, origins: &[&str]) -> AccessPolicy {
        AccessPolicy {
            token: token.map(Into::into),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            hosts: None,
        }
    }

    #[test]
    fn bearer_token_is_required_when_configured() {
        let p = policy(Some("s3cret"), &[]);
        assert_eq!(p.check(&upgrade_request(), None), Err(Refusal::Unauthorized));
        assert_eq!(
            p.check(&upgrade_request().header("Authorization", "Bearer nope"), None),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            p.check(&upgrade_request().header("Authorization", "Basic s3cret"), None),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(p.check(&upgrade_request().header("Authorization", "Bearer s3cret"), None), Ok(()));
        assert_eq!(policy(None, &[]).check(&upgrade_request(), None), Ok(()));
    }

    #[test]
    fn debug_of_a_policy_masks_the_token() {
        let text = format!("{:?}", policy(Some("s3cret-bearer"), &["*"]));
        assert!(!text.contains("s3cret-bearer") && text.contains("<redacted, 13 bytes>"), "{text}");
    }

    #[test]
    fn origins_follow_the_allow_list_and_same_host_rule() {
        let req = upgrade_request().header("Authorization", "Bearer t");
        let evil = req.clone().header("Origin", "https://evil.example");
        assert_eq!(policy(Some("t"), &[]).check(&evil, None), Err(Refusal::Origin("https://evil.example".into())));
        assert_eq!(policy(Some("t"), &["*"]).check(&evil, None), Ok(()));
        assert_eq!(policy(Some("t"), &["https://evil.example"]).check(&evil, None), Ok(()));
        let same = req.clone().header("Origin", "http://127.0.0.1:8080");
        assert_eq!(policy(Some("t"), &[]).check(&same, None), Ok(()));
        let same_unauth = upgrade_request().header("Origin", "http://127.0.0.1:8080");
        assert!(policy(None, &[]).check(&same_unauth, None).is_err(), "same-host passes only when a token is required");
    }

    #[test]
    fn an_unauthenticated_listener_answers_only_its_own_names() {
        let lan: IpAddr = "192.0.2.10".parse().unwrap();
        let hosts = LocalHosts { listen: "0.0.0.0".parse().unwrap() };
        for host in ["localhost", "LocalHost:8080", "localhost.", "127.0.0.1", "127.9.8.7:1", "[::1]:8080", "[::1]"] {
            assert!(hosts.allows(host, None), "{host}");
        }
        for host in ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io", "", "[::1"] {
            assert!(!hosts.allows(host, None), "{host}");
        }
        assert!(hosts.allows("192.0.2.10:8080", Some(lan)), "the address the client reached");
        assert!(!hosts.allows("192.0.2.11", Some(lan)), "another address");
        assert!(LocalHosts { listen: lan }.allows("192.0.2.10", None), "the exact listen address");

        let open = AccessPolicy { hosts: Some(hosts), ..policy(None, &[]) };
        let named = |host: &str| RequestHead::new("GET", "/").header("Host", host);
        assert_eq!(open.check(&named("localhost:8080"), None), Ok(()));
        assert_eq!(open.check(&named("rebound.example"), None), Err(Refusal::Host(Some("rebound.example".into()))));
        assert_eq!(open.check(&RequestHead::new("GET", "/"), None), Err(Refusal::Host(None)));
        assert_eq!(Refusal::Host(None).response().0.status, 421);
    }

    #[test]
    fn upgrade_answers_the_rfc_6455_accept_key() {
        let head = upgrade_response(&upgrade_request()).unwrap();
        assert_eq!(head.status, 101);
        assert_eq!(head.headers.get("sec-websocket-accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        let plain = RequestHead::new("GET", "/");
        assert_eq!(upgrade_response(&plain).unwrap_err(), Refusal::NotWebSocket);
        let mut no_key = upgrade_request();
        no_key.headers.remove("sec-websocket-key");
        assert!(matches!(upgrade_response(&no_key), Err(Refusal::BadUpgrade(m)) if m.contains("Sec-WebSocket-Key")));
        assert_eq!(Refusal::NotWebSocket.response().0.status, 426);
        assert_eq!(Refusal::Unauthorized.response().0.status, 401);
        assert_eq!(Refusal::Origin("x".into()).response().0.status, 403);
    }
}
