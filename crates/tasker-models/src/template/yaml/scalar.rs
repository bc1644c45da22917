//! Scalars of the fast YAML subset: plain scalars resolved the way `serde_yaml_ng` resolves them
//! (only where that resolution is beyond doubt), and single-line quoted scalars.

use std::borrow::Cow;

use serde_yaml_ng::Number;

use super::super::value::Value;

/// Resolves a plain scalar (already cut at its end and trimmed) to the value `serde_yaml_ng`
/// gives it, or `None` when the fast path should not decide.
///
/// `serde_yaml_ng` tries, in order: null (`null`, `Null`, `NULL`, `~`, empty), booleans
/// (`true`/`True`/`TRUE` and the same for false), integers (decimal with an optional sign,
/// `0x`, `0o`, `0b`, 128-bit ranges), floats (anything Rust's `f64::from_str` reads as a
/// finite number, plus `.inf`/`.nan` forms), and otherwise a string. We accept:
///
/// - `null`, `true`, `false` exactly; every other spelling of a YAML 1.1 or 1.2 keyword
///   (`Null`, `~`, `yes`, `off`, `nan`, `inf`, ...) declines;
/// - decimal integers without sign or leading zeros that fit `u64`, and negative ones that
///   fit `i64`;
/// - decimal floats `-?(0|[1-9][0-9]*)\.[0-9]+`;
/// - strings that start with a letter, `_`, `/`, `$`, `(` or a non-ASCII character (no
///   integer or finite float can start so);
/// - strings that start with a digit and contain a space, two dots (`1.0.0`) or a letter
///   that no number or timestamp of YAML 1.1 or 1.2 contains (`15_minutes`, `3rd`): no
///   integer or float syntax of the core schema allows any of these.
///
/// Everything else (`+1`, `.5`, `1e3`, `0x1f`, `007`, `1_000`, `-foo`, `12:30`, dates, ...)
/// declines, and `serde_yaml_ng` decides.
pub(super) fn resolve_plain(text: &str) -> Option<Value<'_>> {
    let bytes = text.as_bytes();
    let &first = bytes.first()?;
    match first {
        b'a'..=b'z' | b'A'..=b'Z' => resolve_word(text),
        b'_' | b'/' | b'$' | b'(' | 0x80.. => Some(Value::String(Cow::Borrowed(text))),
        b'0'..=b'9' => resolve_number(text).or_else(|| {
            let dots = bytes.iter().filter(|&&b| b == b'.').count();
            let word = bytes
                .iter()
                .any(|&b| b.is_ascii_alphabetic() && !b"abcdefABCDEFoOxXtTzZ".contains(&b));
            (dots >= 2 || word || bytes.contains(&b' '))
                .then_some(Value::String(Cow::Borrowed(text)))
        }),
        b'-' => resolve_number(text),
        _ => None,
    }
}

/// A plain scalar starting with an ASCII letter: a keyword or a string.
fn resolve_word(text: &str) -> Option<Value<'_>> {
    match text {
        "null" => return Some(Value::Null),
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    // Every other spelling of a keyword, in any case; keywords are at most 8 bytes long and
    // start with one of a few letters.
    let bytes = text.as_bytes();
    if bytes.len() <= 8 && b"nNtTfFyYoOiI".contains(&bytes[0]) {
        let mut lower = [0_u8; 8];
        for (low, byte) in lower.iter_mut().zip(bytes) {
            *low = byte.to_ascii_lowercase();
        }
        if matches!(
            &lower[..bytes.len()],
            b"null"
                | b"true"
                | b"false"
                | b"y"
                | b"n"
                | b"yes"
                | b"no"
                | b"on"
                | b"off"
                | b"inf"
                | b"infinity"
                | b"nan"
        ) {
            return None;
        }
    }
    Some(Value::String(Cow::Borrowed(text)))
}

/// `-?(0|[1-9][0-9]*)` as an integer, `-?(0|[1-9][0-9]*)\.[0-9]+` as a float; `None` for
/// anything else, for `-0`, and for integers out of range.
fn resolve_number(text: &str) -> Option<Value<'static>> {
    let bytes = text.as_bytes();
    let negative = bytes.first() == Some(&b'-');
    let digits = if negative { &bytes[1..] } else { bytes };
    let int_len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if int_len == 0 || (int_len > 1 && digits[0] == b'0') {
        return None;
    }
    if int_len == digits.len() {
        if negative {
            if int_len == 1 && digits[0] == b'0' {
                return None;
            }
            let value: i64 = text.parse().ok()?;
            return Some(Value::Number(Number::from(value)));
        }
        let value: u64 = text.parse().ok()?;
        return Some(Value::Number(Number::from(value)));
    }
    let fraction = &digits[int_len..];
    if fraction.len() < 2 || fraction[0] != b'.' || !fraction[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    value
        .is_finite()
        .then(|| Value::Number(Number::from(value)))
}

/// A single-quoted scalar starting at `start` (the quote), closed on the same line (before
/// `end`). Returns the text (borrowed when it holds no `''`) and the position after the
/// closing quote.
pub(super) fn single_quoted(text: &str, start: usize, end: usize) -> Option<(Cow<'_, str>, usize)> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut from = start + 1;
    let mut at = from;
    while at < end {
        if bytes[at] == b'\'' {
            if bytes.get(at + 1) == Some(&b'\'') && at + 1 < end {
                let out = out.get_or_insert_with(String::new);
                out.push_str(&text[from..=at]);
                at += 2;
                from = at;
                continue;
            }
            let value = match out {
                None => Cow::Borrowed(&text[from..at]),
                Some(mut out) => {
                    out.push_str(&text[from..at]);
                    Cow::Owned(out)
                }
            };
            return Some((value, at + 1));
        }
        at += 1;
    }
    None
}

/// A double-quoted scalar starting at `start`, closed on the same line, with YAML's escapes
/// (borrowed when it has none). A backslash at the end of the line (a line continuation)
/// declines.
pub(super) fn double_quoted(text: &str, start: usize, end: usize) -> Option<(Cow<'_, str>, usize)> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut from = start + 1;
    let mut at = from;
    while at < end {
        match bytes[at] {
            b'"' => {
                let value = match out {
                    None => Cow::Borrowed(&text[from..at]),
                    Some(mut out) => {
                        out.push_str(&text[from..at]);
                        Cow::Owned(out)
                    }
                };
                return Some((value, at + 1));
            }
            b'\\' => {
                let out = out.get_or_insert_with(String::new);
                out.push_str(&text[from..at]);
                let &code = bytes.get(at + 1).filter(|_| at + 1 < end)?;
                at += 2;
                let simple = match code {
                    b'0' => Some('\0'),
                    b'a' => Some('\u{07}'),
                    b'b' => Some('\u{08}'),
                    b't' => Some('\t'),
                    b'n' => Some('\n'),
                    b'v' => Some('\u{0B}'),
                    b'f' => Some('\u{0C}'),
                    b'r' => Some('\r'),
                    b'e' => Some('\u{1B}'),
                    b' ' => Some(' '),
                    b'"' => Some('"'),
                    b'/' => Some('/'),
                    b'\\' => Some('\\'),
                    b'N' => Some('\u{85}'),
                    b'_' => Some('\u{A0}'),
                    b'L' => Some('\u{2028}'),
                    b'P' => Some('\u{2029}'),
                    _ => None,
                };
                let escaped = match (simple, code) {
                    (Some(escaped), _) => escaped,
                    (None, b'x') => hex_escape(bytes, &mut at, end, 2)?,
                    (None, b'u') => hex_escape(bytes, &mut at, end, 4)?,
                    (None, b'U') => hex_escape(bytes, &mut at, end, 8)?,
                    (None, _) => return None,
                };
                out.push(escaped);
                from = at;
            }
            _ => at += 1,
        }
    }
    None
}

/// `len` hex digits at `*at` as a Unicode scalar value; surrogates and values beyond
/// U+10FFFF decline (libyaml rejects them).
fn hex_escape(bytes: &[u8], at: &mut usize, end: usize, len: usize) -> Option<char> {
    let digits = bytes.get(*at..*at + len).filter(|_| *at + len <= end)?;
    let mut code: u32 = 0;
    for &digit in digits {
        let value = char::from(digit).to_digit(16)?;
        code = code * 16 + value;
    }
    *at += len;
    char::from_u32(code)
}
