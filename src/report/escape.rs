//! Making text from the outside world safe to print on one line.
//!
//! Names and messages opsguard prints come from places it does not control:
//! Elasticsearch usernames, secret names, task definitions, snapshot and
//! journal files, error bodies. A newline inside one of them would start a
//! line of its own — under GitHub Actions, a line starting with `::error::`
//! is a workflow command — and a 50 MB name would be echoed 50 MB long. So
//! every such piece of text goes through [`line`] (one value) or
//! [`sanitize`] (a whole document) before it is rendered: control
//! characters are written as escapes (`\n`, `\u{1b}`), and a value longer
//! than a cap is cut with a note of how much was left out.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// How long an echoed name or value may be, in characters.
pub const MAX_VALUE: usize = 512;

/// How long one string of a sanitised document may be (messages and notes
/// are longer than names).
pub const MAX_DOC_VALUE: usize = 4096;

/// `s` on one line: control characters escaped, at most `max` characters
/// kept (then `…(N more bytes)`).
pub fn line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 32));
    for (n, (i, c)) in s.char_indices().enumerate() {
        if n >= max {
            out.push_str(&format!("…({} more bytes)", s.len() - i));
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

/// Multi-line text: each line made safe with [`line`], the line breaks kept.
pub fn lines(s: &str, max_line: usize) -> String {
    s.split('\n')
        .map(|l| line(l.strip_suffix('\r').unwrap_or(l), max_line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One log record as the log writer receives it: everything escaped as
/// [`line`] does (no cap: a record is opsguard's own), except the record's
/// final newline and, when the terminal shows colour, the ESC of colour codes.
pub fn log_record(record: &str, colour: bool) -> String {
    let (body, end) = match record.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (record, ""),
    };
    let mut out = String::with_capacity(record.len() + 8);
    for c in body.chars() {
        if colour && c == '\u{1b}' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    out.push_str(end);
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if unsafe_char(c) => out.push_str(&c.escape_unicode().to_string()),
        c => out.push(c),
    }
}

/// C0, DEL, C1, and the Unicode line/paragraph separators and bidi
/// overrides that can make a line read differently from what it is.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Every string in `doc` (keys too) made safe with [`line`]. Falls back to
/// the document as it is if it does not round-trip (it always does for the
/// report types, which are plain data).
pub fn sanitize<T: Serialize + DeserializeOwned + Clone>(doc: &T) -> T {
    let Ok(mut v) = serde_json::to_value(doc) else {
        return doc.clone();
    };
    walk(&mut v);
    serde_json::from_value(v).unwrap_or_else(|_| doc.clone())
}

fn walk(v: &mut Value) {
    match v {
        Value::String(s) if needs_work(s) => *s = line(s, MAX_DOC_VALUE),
        Value::Array(a) => a.iter_mut().for_each(walk),
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().filter(|k| needs_work(k)).cloned().collect();
            for k in keys {
                if let Some(x) = m.remove(&k) {
                    m.insert(line(&k, MAX_VALUE), x);
                }
            }
            m.values_mut().for_each(walk);
        }
        _ => {}
    }
}

fn needs_work(s: &str) -> bool {
    s.len() > MAX_DOC_VALUE || s.chars().any(unsafe_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_record_stays_one_line_whatever_its_fields_hold() {
        let record = "WARN secret=a\n::error::x\u{7}\n";
        assert_eq!(
            log_record(record, false),
            "WARN secret=a\\n::error::x\\u{7}\n"
        );
        // Colour codes survive only when colour is on.
        assert_eq!(
            log_record("\u{1b}[31mW\u{1b}[0m\n", true),
            "\u{1b}[31mW\u{1b}[0m\n"
        );
        assert_eq!(log_record("\u{1b}[31mW\n", false), "\\u{1b}[31mW\n");
    }

    #[test]
    fn a_newline_cannot_start_a_line_of_its_own() {
        let s = line("search\n::error::x\r\u{1b}[31m", 100);
        assert_eq!(s, "search\\n::error::x\\r\\u{1b}[31m");
        assert!(!s.contains('\n'));
    }

    #[test]
    fn long_values_are_cut_and_say_so() {
        let s = line(&"a".repeat(10_000), 8);
        assert_eq!(s, "aaaaaaaa…(9992 more bytes)");
    }

    #[test]
    fn multi_line_text_keeps_its_breaks_only() {
        assert_eq!(lines("a\nb\u{7}\r\nc", 10), "a\nb\\u{7}\nc");
    }

    #[test]
    fn documents_are_sanitised_everywhere() {
        let v: serde_json::Value = serde_json::json!({"a\nb": ["x\ny", {"k": "\u{1b}"}], "n": 1});
        let s = sanitize(&v);
        assert_eq!(
            s,
            serde_json::json!({"a\\nb": ["x\\ny", {"k": "\\u{1b}"}], "n": 1})
        );
    }
}
