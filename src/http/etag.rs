//! Entity tags (RFC 9110 §8.8.3) and the `If-None-Match` / `If-Match` comparisons.
//!
//! Files get a strong tag derived from size and modification time (no content hashing: a GET must not read a
//! file twice). `If-None-Match` uses the weak comparison, `If-Match` the strong one, as the RFC prescribes.

use std::time::{SystemTime, UNIX_EPOCH};

/// A strong entity tag for a file of `len` bytes last modified at `modified` (quotes included).
pub fn file_etag(len: u64, modified: SystemTime) -> String {
    let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("\"{len:x}-{:x}-{:x}\"", since.as_secs(), since.subsec_nanos())
}

/// Splits an entity-tag list into its tags (`W/"a", "b"`), keeping the `W/` prefix; `*` comes back as `*`.
fn tags(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|t| !t.is_empty())
}

fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison; `*` matches any existing resource).
/// A match means: answer 304 to GET/HEAD, 412 to other methods.
pub fn if_none_match_matches(header: &str, etag: &str) -> bool {
    tags(header).any(|t| t == "*" || opaque(t) == opaque(etag))
}

/// Whether an `If-Match` value matches `etag` (strong comparison: weak tags never match; `*` matches).
pub fn if_match_matches(header: &str, etag: &str) -> bool {
    !etag.starts_with("W/") && tags(header).any(|t| t == "*" || (!t.starts_with("W/") && t == etag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn file_tags_change_with_size_and_time() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let tag = file_etag(10, t);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert_ne!(tag, file_etag(11, t));
        assert_ne!(tag, file_etag(10, t + Duration::from_nanos(1)));
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        assert!(if_none_match_matches("\"a\"", "\"a\""));
        assert!(if_none_match_matches("W/\"a\"", "\"a\""));
        assert!(if_none_match_matches("\"x\", W/\"a\"", "\"a\""));
        assert!(if_none_match_matches("*", "\"a\""));
        assert!(!if_none_match_matches("\"b\"", "\"a\""));
        assert!(!if_none_match_matches("", "\"a\""));
    }

    #[test]
    fn if_match_uses_strong_comparison() {
        assert!(if_match_matches("\"a\"", "\"a\""));
        assert!(!if_match_matches("W/\"a\"", "\"a\""));
        assert!(!if_match_matches("\"a\"", "W/\"a\""));
        assert!(if_match_matches("*", "\"a\""));
    }
}
