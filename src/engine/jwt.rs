//! HS256 JSON Web Tokens, hand-written: `base64url(header).base64url(claims).base64url(HMAC-SHA256)`.
//!
//! Only `alg: HS256` is accepted (`none` and every other algorithm are refused before any signature work);
//! the signature is checked in constant time (`hmac`'s `verify_slice`); `exp`, when present, must lie in the
//! future. Claims: `iat`, `exp` (optional), `jti` (the token's id, for revocation; optional), `sub`,
//! `permissions` (rstream's permission names).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::encoding::Base64;
use crate::limits::MAX_JWT_LEN;

type HmacSha256 = Hmac<Sha256>;

/// What a token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issued at (Unix seconds).
    #[serde(default)]
    pub iat: u64,
    /// Expiry (Unix seconds); absent = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Token id: `engine token revoke <jti>` refuses the token from then on (absent in tokens minted before
    /// revocation existed; those can only be retired by changing the secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Subject: who the token was minted for (becomes `user_id` in the inventory).
    #[serde(default)]
    pub sub: String,
    /// Permission names, e.g. `tunnels.tunnels.create-delete`.
    #[serde(default)]
    pub permissions: Vec<String>,
}

impl Claims {
    /// Whether the token carries `permission`.
    pub fn allows(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url segments of JSON, or too long.
    Malformed(String),
    /// A header `alg` other than HS256.
    Algorithm(String),
    /// The signature does not match the engine's secret.
    BadSignature,
    /// `exp` is in the past.
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The engine's clock.
        now: u64,
    },
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Malformed(why) => write!(f, "malformed token: {why}"),
            JwtError::Algorithm(alg) => write!(f, "token algorithm {alg:?} refused (only HS256)"),
            JwtError::BadSignature => write!(f, "token signature does not match this engine's secret"),
            JwtError::Expired { exp, now } => write!(f, "token expired {} s ago", now.saturating_sub(*exp)),
        }
    }
}

impl std::error::Error for JwtError {}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

fn mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// Signs `claims` with `secret`.
pub fn sign(claims: &Claims, secret: &[u8]) -> String {
    let header = Header { alg: "HS256".into(), typ: Some("JWT".into()) };
    let header = Base64::UrlSafeNoPad.encode(&serde_json::to_vec(&header).expect("header serializes"));
    let body = Base64::UrlSafeNoPad.encode(&serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{body}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let sig = Base64::UrlSafeNoPad.encode(&m.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Verifies `token` against `secret` at time `now` (Unix seconds) and returns its claims.
pub fn verify(token: &str, secret: &[u8], now: u64) -> Result<Claims, JwtError> {
    if token.len() > MAX_JWT_LEN {
        return Err(JwtError::Malformed(format!("{} bytes (max {MAX_JWT_LEN})", token.len())));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("expected three dot-separated segments".into()));
    };
    let header: Header = decode_json(header, "header")?;
    if header.alg != "HS256" {
        return Err(JwtError::Algorithm(header.alg));
    }
    let sig = Base64::UrlSafeNoPad.decode(sig).map_err(|e| JwtError::Malformed(format!("signature: {e}")))?;
    let signing_input_len = token.len() - sig_segment_len(token);
    let mut m = mac(secret);
    m.update(&token.as_bytes()[..signing_input_len]);
    m.verify_slice(&sig).map_err(|_| JwtError::BadSignature)?;
    let claims: Claims = decode_json(body, "claims")?;
    match claims.exp {
        Some(exp) if exp <= now => Err(JwtError::Expired { exp, now }),
        _ => Ok(claims),
    }
}

/// Length of `.signature` at the end of `token`.
fn sig_segment_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |i| token.len() - i)
}

fn decode_json<T: for<'de> Deserialize<'de>>(segment: &str, what: &str) -> Result<T, JwtError> {
    let bytes = Base64::UrlSafeNoPad.decode(segment).map_err(|e| JwtError::Malformed(format!("{what}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| JwtError::Malformed(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(exp: Option<u64>) -> Claims {
        Claims {
            iat: 1_000,
            exp,
            jti: Some("0123456789abcdef0123456789abcdef".into()),
            sub: "pi".into(),
            permissions: vec!["tunnels.tunnels.create-delete".into()],
        }
    }

    #[test]
    fn good_token_verifies_and_returns_its_claims() {
        let token = sign(&claims(Some(2_000)), SECRET);
        let got = verify(&token, SECRET, 1_500).unwrap();
        assert_eq!(got, claims(Some(2_000)));
        assert!(got.allows("tunnels.tunnels.create-delete"));
        assert!(!got.allows("tunnels.streams.create-delete"));
        assert!(verify(&sign(&claims(None), SECRET), SECRET, u64::MAX / 2).is_ok(), "no exp = no expiry");
    }

    #[test]
    fn expired_token_is_refused() {
        let token = sign(&claims(Some(2_000)), SECRET);
        assert_eq!(verify(&token, SECRET, 2_000), Err(JwtError::Expired { exp: 2_000, now: 2_000 }));
    }

    #[test]
    fn tampered_claims_or_wrong_secret_fail_the_signature() {
        let token = sign(&claims(None), SECRET);
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged =
            Base64::UrlSafeNoPad.encode(br#"{"iat":1,"sub":"pi","permissions":["tunnels.resources.read-only"]}"#);
        parts[1] = &forged;
        assert_eq!(verify(&parts.join("."), SECRET, 10), Err(JwtError::BadSignature));
        assert_eq!(verify(&token, b"another secret", 10), Err(JwtError::BadSignature));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let body = Base64::UrlSafeNoPad.encode(&serde_json::to_vec(&claims(None)).unwrap());
        for alg in ["none", "HS512", "RS256", "hs256"] {
            let header = Base64::UrlSafeNoPad.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
            let token = format!("{header}.{body}.");
            assert_eq!(verify(&token, SECRET, 10), Err(JwtError::Algorithm(alg.into())));
        }
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        for token in ["", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.e30"] {
            assert!(matches!(verify(token, SECRET, 10), Err(JwtError::Malformed(_))), "{token:?}");
        }
        let huge = "a".repeat(MAX_JWT_LEN + 1);
        assert!(matches!(verify(&huge, SECRET, 10), Err(JwtError::Malformed(_))));
    }
}
