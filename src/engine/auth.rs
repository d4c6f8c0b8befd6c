//! Who may do what: rstream's permission names and the engine's token check.
//!
//! Every connection carries a JWT (`ClientDetails.token` on the rstream protocol, `Authorization: Bearer` on the
//! REST API). [`Authorizer::authorize`] verifies it and checks one permission; a missing, malformed, tampered,
//! expired or revoked ([`super::revocation`]) token is 401, a valid token without the permission is 403. Every
//! minted token carries a fresh `jti`, so it can be revoked on its own.

use std::time::Duration;

use super::clock::unix_now;
use super::ids;
use super::jwt::{self, Claims, JwtError};
use super::revocation::RevocationList;
use crate::proto::rstream::{Error as ProtoError, ErrorCode};

/// Agents register and close tunnels on a control channel.
pub const TUNNELS_CREATE_DELETE: &str = "tunnels.tunnels.create-delete";
/// Operators list tunnels and clients through the REST API.
pub const RESOURCES_READ_ONLY: &str = "tunnels.resources.read-only";
/// Operators dial tunnels with `StreamReq` (and pass `token_auth` on published tunnels).
pub const STREAMS_CREATE_DELETE: &str = "tunnels.streams.create-delete";
/// The engine's owner: evict any subject's tunnel through `DELETE /api/tunnels/{id}` (this engine's own
/// permission; without it only the subject that registered a tunnel may delete it).
pub const TUNNELS_ADMIN: &str = "tunnels.tunnels.admin";
/// What `engine token` grants when `--permissions` is not given: everything but [`TUNNELS_ADMIN`].
pub const STANDARD_PERMISSIONS: [&str; 3] = [TUNNELS_CREATE_DELETE, RESOURCES_READ_ONLY, STREAMS_CREATE_DELETE];
/// Every permission this engine knows (the local operator context of `engine serve` carries them all).
pub const ALL_PERMISSIONS: [&str; 4] =
    [TUNNELS_CREATE_DELETE, RESOURCES_READ_ONLY, STREAMS_CREATE_DELETE, TUNNELS_ADMIN];

/// A refused credential, mapped to 401 or 403.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No usable token (missing, malformed, bad signature, expired): 401.
    Unauthenticated(String),
    /// Valid token lacking a permission: 403.
    Forbidden(String),
}

impl AuthError {
    /// HTTP-like status code (401 or 403), used on the wire and in the REST API.
    pub fn code(&self) -> u16 {
        match self {
            AuthError::Unauthenticated(_) => 401,
            AuthError::Forbidden(_) => 403,
        }
    }

    /// The protocol error sent to an rstream client.
    pub fn to_proto(&self) -> ProtoError {
        ProtoError::new(ErrorCode::Unauthorized, self.to_string())
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Unauthenticated(why) | AuthError::Forbidden(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for AuthError {}

/// Verifies tokens with the engine's HS256 secret (refusing revoked ones) and mints new ones.
pub struct Authorizer {
    secret: Vec<u8>,
    revocations: Option<RevocationList>,
}

impl Authorizer {
    /// An authorizer for `secret`, revoking nothing.
    pub fn new(secret: Vec<u8>) -> Self {
        Authorizer { secret, revocations: None }
    }

    /// Also refuses the tokens listed in `revocations`.
    pub fn with_revocations(mut self, revocations: RevocationList) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// Whether the token behind `claims` was revoked (re-checked by long-lived channels).
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        match (&self.revocations, &claims.jti) {
            (Some(list), Some(jti)) => list.is_revoked(jti),
            _ => false,
        }
    }

    /// Verifies `token` now and requires `permission` (if given); returns the claims.
    pub fn authorize(&self, token: Option<&str>, permission: Option<&str>) -> Result<Claims, AuthError> {
        let token =
            token.filter(|t| !t.is_empty()).ok_or_else(|| AuthError::Unauthenticated("token required".into()))?;
        let claims = jwt::verify(token, &self.secret, unix_now()).map_err(|e| match e {
            JwtError::BadSignature => AuthError::Unauthenticated("invalid token: signature mismatch".into()),
            other => AuthError::Unauthenticated(format!("invalid token: {other}")),
        })?;
        if self.is_revoked(&claims) {
            let jti = claims.jti.as_deref().unwrap_or_default();
            return Err(AuthError::Unauthenticated(format!("invalid token: token {jti} was revoked")));
        }
        match permission {
            Some(p) if !claims.allows(p) => Err(AuthError::Forbidden(format!("token lacks permission {p}"))),
            _ => Ok(claims),
        }
    }

    /// Mints a token for `sub` with `permissions`, valid for `ttl` (None = no expiry).
    pub fn mint(&self, sub: &str, permissions: &[&str], ttl: Option<Duration>) -> String {
        self.issue(sub, permissions, ttl).0
    }

    /// [`Authorizer::mint`], returning the claims too (its fresh `jti`, `exp`).
    pub fn issue(&self, sub: &str, permissions: &[&str], ttl: Option<Duration>) -> (String, Claims) {
        let iat = unix_now();
        let claims = Claims {
            iat,
            exp: ttl.map(|t| iat.saturating_add(t.as_secs().max(1))),
            jti: Some(ids::new_token_id()),
            sub: sub.to_owned(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        };
        (jwt::sign(&claims, &self.secret), claims)
    }
}

/// Parses `--permissions a,b` against the known names.
pub fn parse_permissions(list: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let known = ALL_PERMISSIONS
            .iter()
            .find(|p| **p == name)
            .ok_or_else(|| format!("unknown permission {name:?} (known: {})", ALL_PERMISSIONS.join(", ")))?;
        if !out.contains(known) {
            out.push(*known);
        }
    }
    if out.is_empty() {
        return Err("no permission given".into());
    }
    Ok(out)
}

/// Parses a lifetime: `90`, `90s`, `15m`, `12h`, `30d`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("invalid ttl {text:?}: expected e.g. 3600s, 12h, 30d"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("invalid ttl unit in {text:?}: use s, m, h or d")),
    };
    if n == 0 {
        return Err(format!("invalid ttl {text:?}: must be positive"));
    }
    n.checked_mul(unit_secs).map(Duration::from_secs).ok_or_else(|| format!("ttl {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorizer() -> Authorizer {
        Authorizer::new(b"a secret long enough for hs256 use".to_vec())
    }

    #[test]
    fn device_token_may_create_tunnels_but_not_list_or_dial() {
        let a = authorizer();
        let device = a.mint("pi", &[TUNNELS_CREATE_DELETE], None);
        assert!(a.authorize(Some(&device), Some(TUNNELS_CREATE_DELETE)).is_ok());
        for p in [RESOURCES_READ_ONLY, STREAMS_CREATE_DELETE] {
            let err = a.authorize(Some(&device), Some(p)).unwrap_err();
            assert_eq!(err.code(), 403);
            assert!(err.to_string().contains(p));
        }
    }

    #[test]
    fn missing_or_foreign_tokens_are_401() {
        let a = authorizer();
        assert_eq!(a.authorize(None, None).unwrap_err().code(), 401);
        assert_eq!(a.authorize(Some(""), None).unwrap_err().code(), 401);
        let other = Authorizer::new(b"other".to_vec()).mint("x", &ALL_PERMISSIONS, None);
        let err = a.authorize(Some(&other), None).unwrap_err();
        assert_eq!(err.code(), 401);
        assert!(err.to_proto().is(ErrorCode::Unauthorized));
    }

    #[test]
    fn ttl_sets_exp_and_expired_tokens_are_401() {
        let a = authorizer();
        let t = a.mint("x", &ALL_PERMISSIONS, Some(Duration::from_secs(60)));
        let claims = a.authorize(Some(&t), None).unwrap();
        assert_eq!(claims.exp, Some(claims.iat + 60));
        let old = Claims { iat: 1, exp: Some(2), jti: None, sub: "x".into(), permissions: vec![] };
        let old = jwt::sign(&old, &a.secret);
        let err = a.authorize(Some(&old), None).unwrap_err();
        assert!(matches!(&err, AuthError::Unauthenticated(m) if m.contains("expired")), "{err}");
    }

    #[test]
    fn permissions_and_ttl_parse_strictly() {
        assert_eq!(parse_permissions("tunnels.tunnels.create-delete, tunnels.tunnels.create-delete").unwrap().len(), 1);
        assert!(parse_permissions("tunnels.everything").unwrap_err().contains("tunnels.everything"));
        assert!(parse_permissions(" , ").is_err());
        assert_eq!(parse_ttl("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        for bad in ["", "0h", "3w", "h", "-1s", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_token_has_its_own_jti_and_a_revoked_one_is_401() {
        let dir = std::env::temp_dir().join(format!("rstream-auth-{}", ids::random_hex::<6>()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("revoked-tokens");
        let a = authorizer().with_revocations(RevocationList::new(list.clone()));
        let (one, claims) = a.issue("pi", &[TUNNELS_CREATE_DELETE], None);
        let (two, other) = a.issue("pi", &[TUNNELS_CREATE_DELETE], None);
        assert_ne!(claims.jti, other.jti);
        super::super::revocation::revoke(&list, claims.jti.as_deref().unwrap()).unwrap();
        let err = a.authorize(Some(&one), None).unwrap_err();
        assert_eq!(err.code(), 401);
        assert!(err.to_string().contains("revoked"), "{err}");
        assert!(a.authorize(Some(&two), None).is_ok(), "only that token");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
