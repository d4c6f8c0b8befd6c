//! Scrubbing secrets out of tool output, in every form a remote file or command can show them.
//!
//! A [`Scrubber`] knows each secret as the plain text and as the base64 and base64url text of its bytes, padded or
//! not, and — because a secret inside a larger blob is encoded together with its neighbours — as the characters
//! of the blob's base64 that only the secret's bytes determine, for each of the three byte offsets at which it
//! can start (`[0; k] ++ secret`, with the characters that depend on the unknown bytes before and after dropped).
//! Matches may run across line breaks, so `base64` output wrapped at 76 columns and PEM bodies are found too.
//! Forms shorter than [`MIN_SECRET_LEN`] are not scrubbed.
//!
//! Truncated output is scrubbed first and cut afterwards ([`Scrubber::scrub_and_cut`]): readers keep
//! [`Scrubber::lookahead`] bytes past their cap, so a secret that crosses the cap is still seen whole and
//! replaced, and after the cut no trailing piece of the output may be the beginning of any form — whatever the
//! length of that piece, it is removed (the output is truncated anyway, a few bytes less cost nothing).

use std::borrow::Cow;

use crate::encoding::Base64;

/// Replacement for a secret found in a result.
pub const REDACTED: &str = "[redacted]";
/// Forms shorter than this are not scrubbed: replacing every `t` in a result would make it unreadable, and a
/// token that short protects nothing anyway (real tokens are JWTs of hundreds of characters).
pub const MIN_SECRET_LEN: usize = 8;

/// Every form of the secrets a result must never contain.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Distinct forms, longest first (so the longest match wins).
    forms: Vec<Vec<u8>>,
    /// Indices into `forms` by first byte.
    by_first: Vec<Vec<usize>>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} forms)", self.forms.len())
    }
}

impl Scrubber {
    /// A scrubber for `secrets` (raw bytes: tokens, key material); empty and too-short ones are ignored.
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Scrubber {
        let mut forms: Vec<Vec<u8>> = secrets.into_iter().flat_map(|s| forms_of(s.as_ref())).collect();
        forms.retain(|f| f.len() >= MIN_SECRET_LEN);
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        let mut by_first = vec![Vec::new(); 256];
        for (i, form) in forms.iter().enumerate() {
            by_first[usize::from(form[0])].push(i);
        }
        Scrubber { forms, by_first }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// Bytes a capped reader should keep past its cap so a secret crossing the cap is seen whole.
    pub fn lookahead(&self) -> usize {
        self.forms.first().map_or(0, Vec::len)
    }

    /// `text` with every form of every secret replaced by [`REDACTED`].
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let hay = text.as_bytes();
        let mut out: Option<Vec<u8>> = None;
        let (mut i, mut copied) = (0, 0);
        while i < hay.len() {
            match self.match_at(hay, i) {
                Some(end) => {
                    let buf = out.get_or_insert_with(|| Vec::with_capacity(hay.len()));
                    buf.extend_from_slice(&hay[copied..i]);
                    buf.extend_from_slice(REDACTED.as_bytes());
                    (i, copied) = (end, end);
                }
                None => i += 1,
            }
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut buf) => {
                buf.extend_from_slice(&hay[copied..]);
                // Matches start at a form's first byte (never a UTF-8 continuation byte) and end after its last.
                Cow::Owned(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()))
            }
        }
    }

    /// Scrubs `text` (read with [`Self::lookahead`] bytes past the cap), then cuts it to at most `max` bytes
    /// without leaving the beginning of a secret at the end. `cut_short` says the reader stopped before the end
    /// of its input. Returns the text and whether it was truncated.
    pub fn scrub_and_cut(&self, text: &str, max: usize, cut_short: bool) -> (String, bool) {
        let mut text = self.scrub(text).into_owned();
        let truncated = cut_short || text.len() > max;
        if text.len() > max {
            let cut = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text.truncate(cut);
        }
        if truncated {
            let keep = text.len() - self.partial_tail(text.as_bytes());
            text.truncate(keep);
        }
        (text, truncated)
    }

    /// Cuts raw `bytes` (read with [`Self::lookahead`] bytes past the cap) to at most `max` without leaving the
    /// beginning of a secret at the end; `cut_short` as for [`Self::scrub_and_cut`]. Returns whether it cut.
    pub fn cut_bytes(&self, bytes: &mut Vec<u8>, max: usize, cut_short: bool) -> bool {
        let truncated = cut_short || bytes.len() > max;
        if truncated {
            bytes.truncate(max);
            let keep = bytes.len() - self.partial_tail(bytes);
            bytes.truncate(keep);
        }
        truncated
    }

    /// End of the longest form that matches `hay` at `at` (line breaks inside the match are skipped).
    fn match_at(&self, hay: &[u8], at: usize) -> Option<usize> {
        let candidates = self.by_first.get(usize::from(hay[at]))?;
        candidates.iter().find_map(|&f| match_spanning_lines(hay, at, &self.forms[f]))
    }

    /// Length of the longest suffix of `hay` that is a proper beginning of some form (line breaks inside it
    /// skipped, as for matches).
    fn partial_tail(&self, hay: &[u8]) -> usize {
        // A beginning is shorter than the longest form; allow as many line breaks again.
        let start = hay.len().saturating_sub(2 * self.lookahead());
        let begins_a_form = |at: usize| {
            let candidates = self.by_first.get(usize::from(hay[at]));
            candidates.is_some_and(|c| c.iter().any(|&f| is_partial_spanning_lines(&hay[at..], &self.forms[f])))
        };
        (start..hay.len()).find(|&at| begins_a_form(at)).map_or(0, |at| hay.len() - at)
    }
}

/// Whether all of `tail` is a proper beginning of `needle`, `\r` and `\n` in `tail` after its first byte skipped.
fn is_partial_spanning_lines(tail: &[u8], needle: &[u8]) -> bool {
    let mut k = 0;
    for &b in tail {
        match needle.get(k) {
            Some(&n) if n == b => k += 1,
            _ if k > 0 && (b == b'\n' || b == b'\r') => {}
            _ => return false,
        }
    }
    k < needle.len()
}

/// End of `needle` in `hay` starting at `at`, where `\r` and `\n` in `hay` between needle bytes are skipped.
fn match_spanning_lines(hay: &[u8], at: usize, needle: &[u8]) -> Option<usize> {
    let (mut j, mut k) = (at, 0);
    while k < needle.len() {
        match hay.get(j) {
            Some(&b) if b == needle[k] => k += 1,
            Some(b'\n' | b'\r') if k > 0 => {}
            _ => return None,
        }
        j += 1;
    }
    Some(j)
}

/// The forms of one secret: the plain text (when it is text), base64 and base64url with and without padding,
/// and the offset-determined cores of both alphabets.
fn forms_of(secret: &[u8]) -> Vec<Vec<u8>> {
    if secret.is_empty() {
        return Vec::new();
    }
    let mut forms = Vec::new();
    if std::str::from_utf8(secret).is_ok() {
        forms.push(secret.to_vec());
    }
    let padded = Base64::Standard.encode(secret);
    let url = Base64::UrlSafeNoPad.encode(secret);
    let padding = &padded[padded.trim_end_matches('=').len()..];
    forms.push(format!("{url}{padding}").into_bytes());
    forms.push(url.into_bytes());
    forms.push(padded.trim_end_matches('=').as_bytes().to_vec());
    forms.push(padded.into_bytes());
    for offset in 0..3 {
        let core = embedded_core(secret, offset);
        forms.push(core.replace('+', "-").replace('/', "_").into_bytes());
        forms.push(core.into_bytes());
    }
    forms
}

/// The base64 characters that `secret` alone determines when it starts `offset` bytes (0–2) into a 3-byte group
/// of a larger blob: encode `[0; offset] ++ secret` and drop the characters that also depend on the bytes before
/// (2 for offset 1, 3 for offset 2) and the last one when it also depends on the byte after.
fn embedded_core(secret: &[u8], offset: usize) -> String {
    let mut shifted = vec![0; offset];
    shifted.extend_from_slice(secret);
    let text = Base64::Standard.encode(&shifted);
    let text = text.trim_end_matches('=');
    let skip = [0, 2, 3][offset];
    let end = if shifted.len().is_multiple_of(3) { text.len() } else { text.len() - 1 };
    text.get(skip..end).unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.Q2hhbmdlTWUtc2lnbmF0dXJl";

    fn scrubber() -> Scrubber {
        Scrubber::new([TOKEN])
    }

    #[test]
    fn plain_base64_and_base64url_forms_are_replaced() {
        let s = scrubber();
        let std = Base64::Standard.encode(TOKEN.as_bytes());
        let url = Base64::UrlSafeNoPad.encode(TOKEN.as_bytes());
        for form in [TOKEN, &std, std.trim_end_matches('='), &url] {
            assert_eq!(s.scrub(&format!("a {form} b")), "a [redacted] b", "{form}");
        }
        assert!(matches!(s.scrub("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_inside_base64_of_a_larger_blob_is_found_at_every_offset() {
        let s = scrubber();
        for offset in 0..3 {
            let mut blob = vec![0xffu8; 10 + offset];
            let at = blob.len();
            blob.extend_from_slice(TOKEN.as_bytes());
            blob.extend_from_slice(b"\x00\x01tail");
            for encoded in [Base64::Standard.encode(&blob), Base64::UrlSafeNoPad.encode(&blob)] {
                let out = s.scrub(&encoded);
                assert!(out.contains(REDACTED), "offset {offset}: {out}");
                // Nothing of the token's whole groups survives; at most the two partial characters at each edge.
                let whole = &Base64::Standard.encode(&blob)[at.div_ceil(3) * 4..(at + TOKEN.len()) / 3 * 4];
                let url_whole = whole.replace('+', "-").replace('/', "_");
                assert!(!out.contains(&whole[..8]) && !out.contains(&url_whole[url_whole.len() - 8..]), "{out}");
                assert!(out.len() < encoded.len() - TOKEN.len(), "offset {offset}: {out}");
            }
        }
    }

    #[test]
    fn embedded_cores_are_exactly_the_determined_characters() {
        // "abcdef" at offset 1: groups (x,a,b)(c,d,e)(f,?,?): determined: 2 of the first, 4, 1 of the last.
        let blob = Base64::Standard.encode(b"Xabcdef!!");
        assert_eq!(embedded_core(b"abcdef", 1), &blob[2..9]);
        assert_eq!(embedded_core(b"abcdef", 0), Base64::Standard.encode(b"abcdef"));
        let blob = Base64::Standard.encode(b"XYabcdefZ");
        // At offset 2: (x,y,a)(b,c,d)(e,f,?): 1 of the first, 4, 2 of the last.
        assert_eq!(embedded_core(b"abcdef", 2), &blob[3..10]);
    }

    #[test]
    fn matches_run_across_line_breaks() {
        let s = scrubber();
        let wrapped: Vec<String> = Base64::Standard
            .encode(TOKEN.as_bytes())
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert_eq!(s.scrub(&format!("{}\n", wrapped.join("\r\n"))), "[redacted]\n");
    }

    #[test]
    fn short_and_empty_secrets_are_ignored() {
        let s = Scrubber::new(["", "t"]);
        assert!(s.is_empty());
        assert_eq!(s.scrub("t t"), "t t");
        assert_eq!(s.lookahead(), 0);
    }

    #[test]
    fn cutting_inside_a_secret_scrubs_it_first_and_leaves_no_beginning_of_it() {
        let s = scrubber();
        let text = format!("{}{TOKEN} after", "x".repeat(20));
        for max in 20..text.len() {
            let (out, truncated) = s.scrub_and_cut(&text, max, false);
            assert!(out.len() <= max && out.starts_with(&"x".repeat(20)), "{max}: {out}");
            assert!(!out.contains("eyJ"), "{max}: {out}");
            assert_eq!(truncated, max < 20 + REDACTED.len() + 6, "{max}");
        }
        // A reader that stopped inside the token: the piece it got is dropped.
        let (out, truncated) = s.scrub_and_cut(&format!("abc{}", &TOKEN[..30]), 100, true);
        assert_eq!((out.as_str(), truncated), ("abc", true));
        let (out, truncated) = s.scrub_and_cut("short", 100, false);
        assert_eq!((out.as_str(), truncated), ("short", false));
    }

    #[test]
    fn a_wrapped_beginning_of_a_secret_at_the_cut_is_dropped_too() {
        let s = scrubber();
        let wrapped = Base64::Standard.encode(TOKEN.as_bytes());
        let text = format!("head\n{}\n{}", &wrapped[..20], &wrapped[20..50]);
        assert_eq!(s.scrub_and_cut(&text, 100, true), ("head\n".to_owned(), true));
        // A complete form followed by other text is not a beginning.
        assert!(!is_partial_spanning_lines(b"abcdef!", b"abcdef"));
        assert!(is_partial_spanning_lines(b"ab\r\ncd", b"abcdef"));
    }

    #[test]
    fn raw_bytes_are_cut_before_a_secret_crossing_the_cap() {
        let s = scrubber();
        let mut bytes = format!("0123{TOKEN}").into_bytes();
        assert!(s.cut_bytes(&mut bytes, 40, false));
        assert_eq!(bytes, b"0123");
        let mut bytes = b"0123456789".to_vec();
        assert!(!s.cut_bytes(&mut bytes, 40, false));
        assert_eq!(bytes.len(), 10);
    }

    #[test]
    fn binary_secrets_are_scrubbed_in_their_encoded_forms() {
        let key: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(151)).collect();
        let s = Scrubber::new([&key]);
        assert_eq!(s.scrub(&Base64::Standard.encode(&key)), REDACTED);
    }
}
