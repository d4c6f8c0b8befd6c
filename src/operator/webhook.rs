//! `rstream events --forward-to URL`: POST each event as JSON to a receiver, optionally signed the way upstream's
//! webhooks are (`--webhook`).
//!
//! - One POST per event, each attempt within [`FORWARD_TIMEOUT`]; up to [`FORWARD_ATTEMPTS`] attempts with a
//!   doubling wait from [`FORWARD_RETRY_INITIAL`]. A 4xx answer other than 408/429 is final (the receiver refused
//!   this event; sending it again cannot help), and so is a redirect (not followed). At most [`FORWARD_ERROR_BODY_MAX`]
//!   bytes of an error answer are read.
//! - `https://` receivers are verified like every other TLS peer of the operator (the context's CA file; a DNS
//!   name, not an IP address); there is no way to skip verification.
//! - Signed mode adds `rstream-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>` (the `hmac`
//!   crate; the key is the secret's bytes as written, `whsec_…` included), `rstream-event-id`,
//!   `rstream-event-type`, `rstream-webhook-id` and `rstream-delivery-id` (the same on every retry of one
//!   delivery, so receivers can deduplicate). A receiver should refuse a timestamp more than 300 s away.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::deadline::with_deadline;
use crate::encoding::hex;
use crate::http::{ClientConn, RequestHead};
use crate::limits::{FORWARD_ATTEMPTS, FORWARD_ERROR_BODY_MAX, FORWARD_RETRY_INITIAL, FORWARD_TIMEOUT};
use crate::secret::Secret;
use crate::webtty::client::{dial_direct, DirectTls};

/// A random id `<prefix><24 hex>` (12 bytes from the OS), as upstream's CLI generates them.
pub fn random_id(prefix: &str) -> Result<String, String> {
    let mut b = [0u8; 12];
    getrandom::getrandom(&mut b).map_err(|e| format!("cannot generate an id: {e}"))?;
    Ok(format!("{prefix}{}", hex(&b)))
}

/// The `rstream-signature` value for `body` sent at unix time `t`.
pub fn signature(secret: &Secret, t: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex(&mac.finalize().into_bytes()))
}

/// Whether an answer ends the delivery without a retry: a redirect (not followed) or a 4xx other than 408/429.
fn is_final(status: u16) -> bool {
    (300..500).contains(&status) && status != 408 && status != 429
}

/// Webhook signing settings.
#[derive(Clone, Debug)]
pub struct Signing {
    /// The shared secret (`--webhook-secret-file`).
    pub secret: Secret,
    /// `rstream-webhook-id` (`--webhook-id`, else generated once per run).
    pub webhook_id: String,
}

/// Where events go.
#[derive(Clone, Debug)]
pub struct Forwarder {
    host: String,
    port: u16,
    path: String,
    tls: bool,
    signing: Option<Signing>,
}

impl Forwarder {
    /// A forwarder to `url` (`http://` or `https://`), signing when `signing` is set.
    pub fn new(url: &str, signing: Option<Signing>) -> Result<Forwarder, String> {
        let bad = |why: &str| format!("--forward-to {url:?}: {why}");
        let (tls, rest) = match url.split_once("://") {
            Some(("http", rest)) => (false, rest),
            Some(("https", rest)) => (true, rest),
            _ => return Err(bad("expected an http:// or https:// URL")),
        };
        let (authority, path) = rest.find(['/', '?']).map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad("the port is not a number"))?)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Forwarder { host: host.to_owned(), port, path, tls, signing })
    }

    /// Delivers one event, retrying as the module doc says; the error names the last failure.
    pub async fn deliver(&self, event: &Value) -> Result<(), String> {
        let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        let delivery_id = random_id("cli_del_")?;
        let event_id = match event.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => random_id("evt_cli_")?,
        };
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("").to_owned();
        let mut wait = FORWARD_RETRY_INITIAL;
        let mut attempt = 1;
        loop {
            let mut head = RequestHead::new("POST", &self.path).header("Content-Type", "application/json");
            if let Some(s) = &self.signing {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
                head = head
                    .header("rstream-signature", signature(&s.secret, now, &body))
                    .header("rstream-event-id", event_id.as_str())
                    .header("rstream-event-type", kind.as_str())
                    .header("rstream-webhook-id", s.webhook_id.as_str())
                    .header("rstream-delivery-id", delivery_id.as_str());
            }
            let what = format!("POST to {}:{}{}", self.host, self.port, self.path);
            let failure = match with_deadline(FORWARD_TIMEOUT, &what, self.post(&head, &body)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err((status, text))) if is_final(status) => {
                    return Err(format!("{what}: refused with {status}: {text}"))
                }
                Ok(Err((status, text))) => format!("{what}: answered {status}: {text}"),
                Err(e) => e.to_string(),
            };
            if attempt >= FORWARD_ATTEMPTS {
                return Err(format!("{failure} (gave up after {attempt} attempts)"));
            }
            log_debug!("{failure}; retrying in {wait:?}");
            async_io::Timer::after(wait).await;
            wait *= 2;
            attempt += 1;
        }
    }

    /// One attempt: `Ok(Ok)` on 2xx, `Ok(Err((status, text)))` on another answer, `Err` when no answer came.
    async fn post(&self, head: &RequestHead, body: &[u8]) -> std::io::Result<Result<(), (u16, String)>> {
        let direct = DirectTls::default();
        let stream = dial_direct(&self.host, self.port, self.tls.then_some(&direct))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut conn = ClientConn::new(stream, format!("{}:{}", self.host, self.port));
        let resp = conn.request(head, body).await.map_err(std::io::Error::other)?;
        if (200..300).contains(&resp.status) {
            return Ok(Ok(()));
        }
        let mut text = Vec::new();
        let mut reader = futures_lite::AsyncReadExt::take(conn.body(), FORWARD_ERROR_BODY_MAX as u64);
        let _ = futures_lite::AsyncReadExt::read_to_end(&mut reader, &mut text).await;
        Ok(Err((resp.status, String::from_utf8_lossy(&text).trim().to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 shape: key "Jefe"; the message here is "<t>." + body.
        let secret = Secret::from("Jefe");
        let sig = signature(&secret, 0, b"what do ya want for nothing?");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        assert_eq!(sig, format!("t=0,v1={}", hex(&mac.finalize().into_bytes())));
        // Known answer, computed independently (`printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test`).
        let known = signature(&Secret::from("whsec_test"), 1_700_000_000, b"{}");
        assert_eq!(known, "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91");
    }

    #[test]
    fn forward_urls_are_parsed_and_bad_ones_refused() {
        let f = Forwarder::new("http://127.0.0.1:9000/hooks?x=1", None).unwrap();
        assert_eq!((f.host.as_str(), f.port, f.path.as_str(), f.tls), ("127.0.0.1", 9000, "/hooks?x=1", false));
        let f = Forwarder::new("https://hooks.example", None).unwrap();
        assert_eq!((f.host.as_str(), f.port, f.path.as_str(), f.tls), ("hooks.example", 443, "/", true));
        let f = Forwarder::new("http://[::1]:81", None).unwrap();
        assert_eq!((f.host.as_str(), f.port), ("::1", 81));
        assert!(Forwarder::new("ftp://x", None).unwrap_err().contains("http:// or https://"));
        assert!(Forwarder::new("http://u:p@x/", None).is_err());
        assert!(Forwarder::new("http://x:port/", None).is_err());
        assert!(Forwarder::new("http:///", None).is_err());
    }

    #[test]
    fn refusals_and_redirects_are_final_and_the_rest_is_retried() {
        assert!(is_final(400) && is_final(401) && is_final(302) && is_final(404));
        assert!(!is_final(408) && !is_final(429) && !is_final(500) && !is_final(503));
    }

    #[test]
    fn ids_have_upstreams_shape() {
        let id = random_id("cli_del_").unwrap();
        assert!(id.starts_with("cli_del_") && id.len() == 8 + 24, "{id}");
        assert!(id[8..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
