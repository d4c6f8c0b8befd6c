//! The `Range` request header (RFC 9110 §14), single byte ranges only.
//!
//! A syntactically invalid header, a unit other than `bytes`, or a multi-range request is answered with the whole
//! representation (the RFC lets a server ignore `Range`); a well-formed single range that starts past the end is
//! unsatisfiable (416 with `Content-Range: bytes */len`).

/// What a `Range` header asks of a representation of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// Serve the whole representation (no header, ignored header, or several ranges).
    Full,
    /// Serve bytes `start..=end` (206 Partial Content); `end` is already clamped to the length.
    Partial {
        /// First byte offset.
        start: u64,
        /// Last byte offset, inclusive.
        end: u64,
    },
    /// No byte of the range exists: answer 416.
    Unsatisfiable,
}

impl ByteRange {
    /// Number of bytes a `Partial` range covers (the whole `len` otherwise).
    pub fn len(&self, total: u64) -> u64 {
        match *self {
            ByteRange::Partial { start, end } => end - start + 1,
            ByteRange::Full => total,
            ByteRange::Unsatisfiable => 0,
        }
    }

    /// Whether the range covers no bytes.
    pub fn is_empty(&self, total: u64) -> bool {
        self.len(total) == 0
    }
}

fn parse_offset(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Interprets an optional `Range` header value against a representation of `len` bytes.
pub fn parse_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(value) = header else { return ByteRange::Full };
    let Some((unit, set)) = value.trim().split_once('=') else { return ByteRange::Full };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else { return ByteRange::Full };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix range: the last N bytes.
        return match parse_offset(last) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if len == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial { start: len.saturating_sub(n), end: len - 1 },
            None => ByteRange::Full,
        };
    }
    let Some(start) = parse_offset(first) else { return ByteRange::Full };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match parse_offset(last) {
            Some(end) if end >= start => end,
            _ => return ByteRange::Full,
        }
    };
    if start >= len {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Partial { start, end: end.min(len - 1) }
}

/// The `Content-Range` value for a 206 answer (`bytes 0-99/1000`).
pub fn content_range(start: u64, end: u64, total: u64) -> String {
    format!("bytes {start}-{end}/{total}")
}

/// The `Content-Range` value for a 416 answer (`bytes */1000`).
pub fn unsatisfied_content_range(total: u64) -> String {
    format!("bytes */{total}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(start: u64, end: u64) -> ByteRange {
        ByteRange::Partial { start, end }
    }

    #[test]
    fn single_ranges_are_clamped_to_the_length() {
        assert_eq!(parse_range(Some("bytes=0-99"), 1000), partial(0, 99));
        assert_eq!(parse_range(Some("bytes=990-2000"), 1000), partial(990, 999));
        assert_eq!(parse_range(Some("bytes=500-"), 1000), partial(500, 999));
        assert_eq!(parse_range(Some("bytes=-100"), 1000), partial(900, 999));
        assert_eq!(parse_range(Some("bytes=-5000"), 1000), partial(0, 999));
        assert_eq!(parse_range(Some(" Bytes = 1-1 "), 10), partial(1, 1));
        assert_eq!(partial(900, 999).len(1000), 100);
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(parse_range(Some("bytes=1000-"), 1000), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), ByteRange::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-1"), 0), ByteRange::Unsatisfiable);
    }

    #[test]
    fn invalid_or_multiple_ranges_serve_the_whole() {
        for header in ["items=0-1", "bytes=5-1", "bytes=a-b", "bytes=0-1,4-5", "bytes", "bytes=-", "bytes=+1-2"] {
            assert_eq!(parse_range(Some(header), 100), ByteRange::Full, "{header}");
        }
        assert_eq!(parse_range(None, 100), ByteRange::Full);
    }

    #[test]
    fn content_range_values() {
        assert_eq!(content_range(0, 99, 1000), "bytes 0-99/1000");
        assert_eq!(unsatisfied_content_range(1000), "bytes */1000");
    }
}
