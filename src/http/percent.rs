//! Percent-encoding (RFC 3986 §2.1) of request paths and query strings.
//!
//! Decoding is strict: every `%` must be followed by two hex digits, otherwise the input is refused with the
//! offset of the bad escape. Decoding does not interpret the result: `%2f` becomes `/` and `%00` becomes a NUL
//! byte, so callers that map paths onto a filesystem split the raw path on `/` first and then check each decoded
//! segment (see `crate::webdav`). Encoding keeps only RFC 3986 unreserved characters (plus `/` in paths).

use std::fmt;

/// A percent-encoded string that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PercentError {
    /// A `%` at byte `offset` is not followed by two hex digits.
    InvalidEscape {
        /// The offending input.
        input: String,
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// The decoded bytes are not UTF-8.
    NotUtf8 {
        /// The offending input.
        input: String,
    },
}

impl fmt::Display for PercentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PercentError::InvalidEscape { input, offset } => {
                write!(f, "invalid percent-escape at byte {offset} in {input:?}")
            }
            PercentError::NotUtf8 { input } => write!(f, "percent-decoded {input:?} is not UTF-8"),
        }
    }
}

impl std::error::Error for PercentError {}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_bytes(input: &str, plus_is_space: bool) -> Result<Vec<u8>, PercentError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(PercentError::InvalidEscape { input: input.to_string(), offset: i }),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Decodes `%XX` escapes into raw bytes (`+` stays `+`). Fails on a truncated or non-hex escape.
pub fn percent_decode(input: &str) -> Result<Vec<u8>, PercentError> {
    decode_bytes(input, false)
}

/// Decodes `%XX` escapes and requires the result to be UTF-8 (a path segment, a header value).
pub fn percent_decode_utf8(input: &str) -> Result<String, PercentError> {
    String::from_utf8(percent_decode(input)?).map_err(|_| PercentError::NotUtf8 { input: input.to_string() })
}

/// Decodes one `application/x-www-form-urlencoded` query component: `+` is a space, then `%XX` escapes.
pub fn decode_query_component(input: &str) -> Result<String, PercentError> {
    String::from_utf8(decode_bytes(input, true)?).map_err(|_| PercentError::NotUtf8 { input: input.to_string() })
}

/// Splits a query string (`a=1&b=x%20y`) into decoded `(key, value)` pairs; empty pieces are skipped and a key
/// without `=` has an empty value.
pub fn query_pairs(query: &str) -> impl Iterator<Item = Result<(String, String), PercentError>> + '_ {
    query.split('&').filter(|piece| !piece.is_empty()).map(|piece| {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        Ok((decode_query_component(k)?, decode_query_component(v)?))
    })
}

fn encode(input: &str, keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(input.len());
    for &b in input.as_bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// Encodes a path for a request target or a WebDAV `href`: everything but unreserved characters and `/`.
pub fn encode_path(path: &str) -> String {
    encode(path, true)
}

/// Encodes one path segment or query component: everything but unreserved characters (`/` becomes `%2F`).
pub fn encode_component(component: &str) -> String {
    encode(component, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_in_either_case() {
        assert_eq!(percent_decode("a%20b%2Fc%2fd").unwrap(), b"a b/c/d");
        assert_eq!(percent_decode_utf8("%C3%A9t%C3%A9").unwrap(), "été");
    }

    #[test]
    fn decoding_keeps_nul_and_slash_for_the_caller_to_judge() {
        assert_eq!(percent_decode("x%00y").unwrap(), b"x\0y");
        assert_eq!(percent_decode("..%2f..").unwrap(), b"../..");
    }

    #[test]
    fn invalid_escapes_report_their_offset() {
        for (input, offset) in [("%zz", 0), ("ab%", 2), ("ab%4", 2), ("a%4g", 1), ("%%41", 0), ("x%-1", 1)] {
            match percent_decode(input) {
                Err(PercentError::InvalidEscape { offset: got, .. }) => assert_eq!(got, offset, "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        assert!(percent_decode("%zz").unwrap_err().to_string().contains("\"%zz\""));
    }

    #[test]
    fn non_utf8_is_refused_when_text_is_required() {
        assert!(matches!(percent_decode_utf8("%ff"), Err(PercentError::NotUtf8 { .. })));
        assert_eq!(percent_decode("%ff").unwrap(), vec![0xff]);
    }

    #[test]
    fn query_components_treat_plus_as_space() {
        assert_eq!(decode_query_component("a+b%2B").unwrap(), "a b+");
        assert_eq!(percent_decode("a+b").unwrap(), b"a+b");
        let pairs: Vec<_> = query_pairs("params=%7B%22a%22%3A1%7D&flag&&x=").collect::<Result<_, _>>().unwrap();
        assert_eq!(
            pairs,
            vec![("params".into(), "{\"a\":1}".into()), ("flag".into(), String::new()), ("x".into(), String::new())]
        );
        assert!(query_pairs("a=%zz").next().unwrap().is_err());
    }

    #[test]
    fn encoding_round_trips() {
        let path = "/dir with space/é#?%/a+b";
        let encoded = encode_path(path);
        assert_eq!(encoded, "/dir%20with%20space/%C3%A9%23%3F%25/a%2Bb");
        assert_eq!(percent_decode_utf8(&encoded).unwrap(), path);
        assert_eq!(encode_component("a/b c"), "a%2Fb%20c");
    }
}
