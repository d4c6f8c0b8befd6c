//! Text from the network made safe for the operator's terminal: table cells whose content a device (or an
//! engine) chose — tunnel names, labels, host names — cannot move the cursor, retitle the window, hide text or
//! reorder it.
//!
//! C0 and C1 control characters and DEL become visible escapes (`\r`, `\n`, `\t`, `\x1b`, `\x9b`, `\x7f`), and
//! so do the Unicode characters that change how text around them is shown (bidirectional overrides and
//! isolates, line and paragraph separators): `\u{202e}`. Everything else is printed as it is. `-o json` output
//! does not go through here: JSON escaping keeps the exact values.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every character that could drive the terminal replaced by a visible escape.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) and the formatting characters that reorder or break displayed text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}')
        || matches!(c, '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_become_visible_escapes() {
        assert_eq!(printable("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(printable("ok\rFAKE\n\tx"), "ok\\rFAKE\\n\\tx");
        assert_eq!(printable("\u{9b}31m\x7f\0"), "\\x9b31m\\x7f\\x00");
        assert_eq!(printable("abc\u{202e}fed\u{2066}"), "abc\\u{202e}fed\\u{2066}");
    }

    #[test]
    fn ordinary_text_is_untouched_and_not_copied() {
        for text in ["pi-kitchen", "role=codex,env=prod", "Grüße ✓ 東京", "back\\slash"] {
            assert!(matches!(printable(text), Cow::Borrowed(t) if t == text), "{text}");
        }
    }
}
