//! Guest- and network-controlled text, made safe to show and cut.
//!
//! Why: a guest's log line, summary or error, and a model's or web server's answer, are
//! data. Printed raw they are terminal control: an escape sequence can retitle the
//! window, clear the screen or write the clipboard (OSC 52), and a `\r` or `\n` can
//! overwrite a line or forge a new one (`[fake] SUBAGENT_REPORT status=success`). Every
//! place that shows such text as text — the CLI's lines, the host's log records — passes
//! it through [`inert`]; JSON output stays exact, since its encoding already escapes
//! control characters.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as itself: C0 and C1 control characters
/// (ESC, CR, LF, TAB, BEL, backspace, CSI, …), DEL, and the Unicode formatting
/// characters that reorder or hide text (bidirectional overrides and isolates, zero-width
/// and line/paragraph separators).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}')
}

/// `text` with every control or reordering character written as a visible escape
/// (`\n`, `\r`, `\t`, `\u{1b}`, …), so it shows as one inert line.
pub fn inert(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `value` as one line of JSON in which no string holds a character [`inert`] escapes:
/// serde_json already writes control characters below U+0020 as escapes; this also
/// writes DEL, the C1 controls and the reordering characters as `\uXXXX`. Still exact
/// JSON — a parser reads back the same text — and safe to print on a terminal.
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, InertJson);
    value.serialize(&mut serializer)?;
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// serde_json's compact formatter, escaping what [`is_unsafe`] names inside strings.
struct InertJson;

impl serde_json::ser::Formatter for InertJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..at])?;
                // Every unsafe character is in the Basic Multilingual Plane.
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub(crate) fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The length of the longest prefix of `bytes` that does not end inside a UTF-8
/// character: what can be decoded now, the rest waiting for the next chunk.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn complete_utf8_len(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=n.min(4) {
        let b = bytes[n - back];
        if b & 0xC0 != 0x80 {
            let width = match b {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if back < width { n - back } else { n };
        }
    }
    n
}

/// At most `cap` bytes of `bytes` as text, never splitting a character (invalid
/// sequences become U+FFFD); and whether anything was left out.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn utf8_prefix(bytes: &[u8], cap: usize) -> (String, bool) {
    let taken = &bytes[..bytes.len().min(cap)];
    let cut = complete_utf8_len(taken);
    (
        String::from_utf8_lossy(&taken[..cut]).into_owned(),
        cut < bytes.len(),
    )
}

/// A bound on the host memory that parsing `json` into a `serde_json::Value` takes: its
/// text, plus a value's size for every place a value can start. A tree of small values
/// (`[0,0,0,…]`) costs many times its text, so the host checks this before parsing JSON
/// whose size a guest or a peer chose.
pub(crate) fn json_tree_cost(json: &str) -> usize {
    const VALUE: usize = 80;
    let starts = json
        .bytes()
        .filter(|b| matches!(b, b'[' | b'{' | b',' | b':'))
        .count();
    json.len()
        .saturating_add(starts.saturating_add(1).saturating_mul(VALUE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped() {
        assert_eq!(inert("plain text, ünïcode ✓"), "plain text, ünïcode ✓");
        let forged =
            "ok\r\n[fake] SUBAGENT_REPORT status=success\x1b]52;c;aGk=\x07\x1b[2J\u{9b}\u{202e}";
        let shown = inert(forged);
        assert_eq!(
            shown,
            "ok\\r\\n[fake] SUBAGENT_REPORT status=success\\u{1b}]52;c;aGk=\\u{7}\\u{1b}[2J\\u{9b}\\u{202e}"
        );
        assert!(!shown.chars().any(|c| c.is_control()));
    }

    #[test]
    fn json_lines_are_exact_and_inert() {
        let nasty = "a\u{1b}[2J\r\n\u{7f}\u{9b}31m\u{202e}z ✓";
        let line = json_line(&serde_json::json!({"s": nasty})).unwrap();
        assert_eq!(line, r#"{"s":"a\u001b[2J\r\n\u007f\u009b31m\u202ez ✓"}"#);
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["s"], nasty);
    }

    #[test]
    fn a_character_split_across_chunks_waits_for_its_end() {
        let text = "a€b".as_bytes(); // € is three bytes
        assert_eq!(complete_utf8_len(&text[..1]), 1);
        assert_eq!(complete_utf8_len(&text[..2]), 1);
        assert_eq!(complete_utf8_len(&text[..3]), 1);
        assert_eq!(complete_utf8_len(&text[..4]), 4);
        assert_eq!(complete_utf8_len("😀".as_bytes()), 4);
        assert_eq!(complete_utf8_len(&"😀".as_bytes()[..3]), 0);
        assert_eq!(
            complete_utf8_len(b"\xff\xfe"),
            2,
            "invalid bytes are not held back"
        );
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncated("a€b".to_owned(), 2), "a…");
        assert_eq!(truncated("a€b".to_owned(), 4), "a€…");
        assert_eq!(truncated("abc".to_owned(), 3), "abc");
    }

    #[test]
    fn prefixes_never_split_a_character() {
        assert_eq!(utf8_prefix("a€b".as_bytes(), 3), ("a".to_owned(), true));
        assert_eq!(utf8_prefix("a€b".as_bytes(), 4), ("a€".to_owned(), true));
        assert_eq!(utf8_prefix("a€b".as_bytes(), 9), ("a€b".to_owned(), false));
    }
}
