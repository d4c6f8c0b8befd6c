//! Identifiers and secrets the engine hands out: client, tunnel and stream ids, token ids (`jti`), one-time
//! stream secrets. Ids are lowercase hex and looked up case-insensitively.
//!
//! Randomness comes from the rustls crypto provider (ring's system RNG), so the engine needs no extra crate.
//! Secrets are compared in constant time ([`constant_time_eq`]).

use rustls::crypto::ring::default_provider;

/// Fills `buf` with cryptographically secure random bytes.
///
/// Panics only if the operating system RNG is unavailable, which leaves nothing safe to do.
pub fn fill_random(buf: &mut [u8]) {
    default_provider().secure_random.fill(buf).expect("operating system random number generator failed");
}

pub use crate::encoding::hex;

/// A random id of `N` bytes as hex (`N * 2` characters).
pub fn random_hex<const N: usize>() -> String {
    let mut buf = [0u8; N];
    fill_random(&mut buf);
    hex(&buf)
}

pub use crate::proto::rstream::{is_id_shaped, ID_LEN};

/// A new client or tunnel id ([`ID_LEN`] hex characters).
pub fn new_id() -> String {
    random_hex::<{ ID_LEN / 2 }>()
}

/// A new token id (`jti`, 32 hex characters).
pub fn new_token_id() -> String {
    random_hex::<16>()
}

/// A new one-time stream secret (256 bits, 64 hex characters).
pub fn new_secret() -> String {
    random_hex::<32>()
}

/// Compares two byte strings without an early exit on the first difference (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_of_the_right_length_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(new_secret().len(), 64);
        assert_eq!(new_token_id().len(), 32);
        assert!(is_id_shaped(&a) && is_id_shaped(&a.to_ascii_uppercase()));
        for name in ["shell", "0123456789abcde", "0123456789abcdef0", "0123456789abcdeg"] {
            assert!(!is_id_shaped(name), "{name}");
        }
    }

    #[test]
    fn constant_time_eq_matches_plain_equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(constant_time_eq(b"", b""));
    }
}
