//! Credentials as a type: a [`Secret`] holds a token (a JWT, a WebTTY bearer token, a stream's one-time secret)
//! and never shows it by accident.
//!
//! `Debug` prints only a mask with the length (`Secret(<redacted, 212 bytes>)`), there is no `Display`, and the
//! value comes out only through [`Secret::expose`], so every place a token leaves the process (a protobuf field,
//! an `Authorization` header, a config file) is visible in the code. Serde reads and writes the plain string (the
//! config file format stays upstream's). The bytes are overwritten when the value is dropped.
//!
//! Wire structs that must hold a token as a plain string (protobuf messages) mask it in their own `Debug` with
//! [`Redacted`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// A token or other credential.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the one place that sends or stores it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the credential is empty (an unusable token).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in bytes (safe to show).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Secret").field(&Redacted(self.0.len())).finish()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

/// The mask shown in place of a credential of this many bytes: `<redacted, N bytes>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Redacted(pub usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    #[test]
    fn debug_shows_a_mask_with_the_length_never_the_value() {
        let secret = Secret::new(JWT);
        assert_eq!(format!("{secret:?}"), format!("Secret(<redacted, {} bytes>)", JWT.len()));
        assert_eq!(format!("{:?}", Some(secret.clone())), format!("Some(Secret(<redacted, {} bytes>))", JWT.len()));
        assert!(!format!("{secret:#?}").contains("eyJ"));
        assert_eq!(secret.expose(), JWT);
        assert_eq!((secret.len(), secret.is_empty(), Secret::default().is_empty()), (JWT.len(), false, true));
    }

    #[cfg(feature = "client")]
    #[test]
    fn serde_reads_and_writes_the_plain_string() {
        let secret: Secret = serde_yaml_ng::from_str("tok123").unwrap();
        assert_eq!(secret, Secret::from("tok123"));
        assert_eq!(serde_yaml_ng::to_string(&secret).unwrap().trim(), "tok123");
    }
}
