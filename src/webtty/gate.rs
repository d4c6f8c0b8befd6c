//! Who may open a WebTTY WebSocket: bearer token, `Origin` policy, and a well-formed upgrade request.
//!
//! Rules (upstream's): a configured token must arrive as `Authorization: Bearer <token>` (compared in constant
//! time); a request without `Origin` (non-browser clients) passes the origin check, `*` allows any origin, an
//! exact entry allows that origin, and when a token is required a same-host origin passes too. Every refusal
//! maps to one HTTP status here.

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
    /// Checks the bearer token and the origin of `req`.
    pub fn check(&self, req: &RequestHead) -> Result<(), Refusal> {
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
    if !req.headers.has_token("upgrade", "websocket") {
        return Err(Refusal::NotWebSocket);
    }
    if req.method != "GET" {
        return Err(Refusal::BadUpgrade(format!("method {:?} (expected GET)", req.method)));
    }
    if !req.headers.has_token("connection", "upgrade") {
        return Err(Refusal::BadUpgrade("Connection header lacks \"upgrade\"".into()));
    }
    match req.headers.get("sec-websocket-version") {
        Some("13") => {}
        other => return Err(Refusal::BadUpgrade(format!("Sec-WebSocket-Version {other:?} (expected 13)"))),
    }
    let key = req.headers.get("sec-websocket-key").map(str::trim).filter(|k| !k.is_empty());
    let key = key.ok_or_else(|| Refusal::BadUpgrade("missing Sec-WebSocket-Key".into()))?;
    let accept = async_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(ResponseHead::new(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", accept))
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
        AccessPolicy { token: token.map(Into::into), allowed_origins: origins.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn bearer_token_is_required_when_configured() {
        let p = policy(Some("s3cret"), &[]);
        assert_eq!(p.check(&upgrade_request()), Err(Refusal::Unauthorized));
        assert_eq!(p.check(&upgrade_request().header("Authorization", "Bearer nope")), Err(Refusal::Unauthorized));
        assert_eq!(p.check(&upgrade_request().header("Authorization", "Basic s3cret")), Err(Refusal::Unauthorized));
        assert_eq!(p.check(&upgrade_request().header("Authorization", "Bearer s3cret")), Ok(()));
        assert_eq!(policy(None, &[]).check(&upgrade_request()), Ok(()));
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
        assert_eq!(policy(Some("t"), &[]).check(&evil), Err(Refusal::Origin("https://evil.example".into())));
        assert_eq!(policy(Some("t"), &["*"]).check(&evil), Ok(()));
        assert_eq!(policy(Some("t"), &["https://evil.example"]).check(&evil), Ok(()));
        let same = req.clone().header("Origin", "http://127.0.0.1:8080");
        assert_eq!(policy(Some("t"), &[]).check(&same), Ok(()));
        let same_unauth = upgrade_request().header("Origin", "http://127.0.0.1:8080");
        assert!(policy(None, &[]).check(&same_unauth).is_err(), "same-host passes only when a token is required");
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
