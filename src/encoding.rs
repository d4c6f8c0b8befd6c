//! Base64 (RFC 4648), standard and URL-safe alphabets: JWT segments (base64url, no padding) and binary payloads
//! in JSON (standard, padded); and lowercase hex ([`hex`]: ids, webhook signatures). Small enough that a crate
//! would cost more than it saves.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Which alphabet and whether output is padded with `=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64 {
    /// `+/`, padded (MIME, JSON payloads).
    Standard,
    /// `-_`, unpadded (JWT).
    UrlSafeNoPad,
}

impl Base64 {
    fn alphabet(self) -> &'static [u8; 64] {
        match self {
            Base64::Standard => STANDARD,
            Base64::UrlSafeNoPad => URL_SAFE,
        }
    }

    /// Encodes `bytes`.
    pub fn encode(self, bytes: &[u8]) -> String {
        let abc = self.alphabet();
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
            let chars = chunk.len() + 1;
            for i in 0..4 {
                if i < chars {
                    out.push(abc[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else if self == Base64::Standard {
                    out.push('=');
                }
            }
        }
        out
    }

    /// Decodes `text` strictly: only the alphabet (no whitespace), padding optional for [`Base64::Standard`] and
    /// refused for [`Base64::UrlSafeNoPad`], and the unused low bits of the last character must be zero, so every
    /// byte string has exactly one accepted encoding (JWT signatures cannot be re-spelled).
    pub fn decode(self, text: &str) -> Result<Vec<u8>, String> {
        let abc = self.alphabet();
        let body = text.trim_end_matches('=');
        let padding = text.len() - body.len();
        if padding > 0 && self == Base64::UrlSafeNoPad {
            return Err("unexpected padding in base64url".to_owned());
        }
        if padding > 2 || body.len() % 4 == 1 || (padding > 0 && !text.len().is_multiple_of(4)) {
            return Err(format!("invalid base64 length {}", text.len()));
        }
        let mut out = Vec::with_capacity(body.len() * 3 / 4);
        for chunk in body.as_bytes().chunks(4) {
            let mut n = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                let v = abc
                    .iter()
                    .position(|a| a == c)
                    .ok_or_else(|| format!("invalid base64 character {:?}", *c as char))?;
                n |= (v as u32) << (18 - 6 * i);
            }
            let keep = chunk.len() - 1;
            if n & (0xff_ffff >> (8 * keep)) != 0 {
                return Err("non-zero trailing bits in base64".to_owned());
            }
            for i in 0..keep {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        Ok(out)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::hex;
    use super::Base64::*;

    #[test]
    fn rfc4648_vectors() {
        for (plain, std) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(Standard.encode(plain.as_bytes()), std);
            assert_eq!(Standard.decode(std).unwrap(), plain.as_bytes());
            assert_eq!(UrlSafeNoPad.decode(std.trim_end_matches('=')).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn url_safe_alphabet_and_binary_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        let url = UrlSafeNoPad.encode(&bytes);
        assert!(!url.contains(['+', '/', '=']));
        assert_eq!(UrlSafeNoPad.decode(&url).unwrap(), bytes);
        assert_eq!(Standard.decode(&Standard.encode(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["a", "Zm9v!", "Zg===", "Z g=", "abcde", "Zh==", "Zm9=", "Zg=", "Zg"] {
            assert!(Standard.decode(bad).is_err() || bad == "Zg", "{bad}");
        }
        assert!(UrlSafeNoPad.decode("Zg==").is_err(), "padding is refused in base64url");
        assert!(UrlSafeNoPad.decode("Zh").is_err(), "non-canonical trailing bits");
        assert_eq!(UrlSafeNoPad.decode("Zg").unwrap(), b"f");
    }

    #[test]
    fn hex_encodes_every_nibble() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
