//! Text from input made safe to print on a terminal or in a CI log.
//!
//! File names and decoded YAML text (a job name, a step id, an argument)
//! are attacker-controlled when `check` runs on a merge request. Printed
//! raw, an ESC or C1 sequence (`\e]0;…\a`, `\e[2J`, U+009B CSI) retitles or
//! clears the terminal, rewrites what was printed before, or (in some
//! terminals) answers back into the shell; a bidi override (U+202E) or
//! isolate makes text read in another order than it runs. Every human-facing
//! output (the human report, `--format github`, the Markdown report,
//! `rewrite`'s messages, diffs and errors) passes input text through
//! [`escape`] or [`escape_inline`]: such characters are shown as Rust-style
//! `\u{1b}` escapes instead. JSON and SARIF escape them by their own syntax.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal raw: every control character
/// (C0, DEL, C1), the bidi embeddings, overrides, isolates and marks, and
/// the Unicode line and paragraph separators. Tab and line feed are judged
/// by the caller (see [`escape`]).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `text` with every [`is_unsafe`] character but `\n` (alone or in a
/// `\r\n`) and `\t` escaped: for messages, help and diffs, whose line
/// breaks are their layout. A lone `\r`, which would let later text
/// overwrite a line, is escaped.
pub fn escape(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let breaks = |i: usize, c: char| {
        c == '\n' || c == '\t' || (c == '\r' && bytes.get(i + 1) == Some(&b'\n'))
    };
    if !text
        .char_indices()
        .any(|(i, c)| is_unsafe(c) && !breaks(i, c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (i, c) in text.char_indices() {
        if is_unsafe(c) && !breaks(i, c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` with every [`is_unsafe`] character escaped, line breaks and tabs
/// included: for what must stay on one line (a path, a label).
pub fn escape_inline(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(is_unsafe) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A serialised JSON document with every [`is_unsafe`] character past
/// ASCII (C1 controls, bidi controls, DEL) written as a `\uXXXX` escape.
/// serde_json escapes only the C0 controls; the document means the same
/// (outside strings JSON is ASCII), and `cat report.json` on a terminal
/// acts on nothing.
pub fn escape_json(json: String) -> String {
    if !json.chars().any(|c| c as u32 >= 0x7f && is_unsafe(c)) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c as u32 >= 0x7f && is_unsafe(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Appends `c` as `\u{hex}` (lower-case hex, no leading zeros): ASCII, one
/// column per byte, and unambiguous about which character it was.
pub fn push_escaped(out: &mut String, c: char) {
    let _ = write!(out, "\\u{{{:x}}}", c as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_and_keeps_the_rest() {
        assert_eq!(
            escape("a\u{1b}]0;OWNED\u{7}\u{1b}[2J b"),
            "a\\u{1b}]0;OWNED\\u{7}\\u{1b}[2J b"
        );
        assert_eq!(
            escape("\u{9b}31m \u{202e}evil\u{2066}\u{0}\r"),
            "\\u{9b}31m \\u{202e}evil\\u{2066}\\u{0}\\u{d}"
        );
        assert_eq!(escape("line\n\tnext é ☞\r\n"), "line\n\tnext é ☞\r\n");
        assert_eq!(escape("a\rb\r"), "a\\u{d}b\\u{d}");
        assert!(matches!(escape("plain"), Cow::Borrowed("plain")));
        assert_eq!(escape_inline("a\nb\tc"), "a\\u{a}b\\u{9}c");
        let json = serde_json::to_string(&["\u{1b}\u{9b}\u{202e}é\u{7f}"]).unwrap();
        let escaped = escape_json(json.clone());
        assert_eq!(escaped, r#"["\u001b\u009b\u202eé\u007f"]"#);
        let back: Vec<String> = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, serde_json::from_str::<Vec<String>>(&json).unwrap());
        for c in ['\u{7f}', '\u{85}', '\u{200f}', '\u{2029}', '\u{61c}'] {
            assert!(is_unsafe(c), "{c:?}");
        }
    }
}
