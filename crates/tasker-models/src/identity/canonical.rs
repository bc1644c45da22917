//! Canonical JSON: one byte sequence per JSON value, the input of the identity hash.
//!
//! The form is RFC 8785 (JSON Canonicalization Scheme), which is implementable in every
//! language, with one deliberate extension:
//!
//! - no whitespace anywhere;
//! - object members sorted by key, comparing keys as UTF-16 code units (RFC 8785 §3.2.3),
//!   recursively; arrays keep their order;
//! - strings escape only `"`, `\` and control characters: `\b \t \n \f \r` by name, other
//!   characters below U+0020 as `\u00xx` with lowercase hex; everything else is literal UTF-8;
//! - `true`, `false`, `null` as literals;
//! - numbers: integers that arrived as integers (fit in `i64`/`u64`) are written exactly in
//!   decimal, without sign for zero. **This is the extension**: RFC 8785 would round integers
//!   beyond ±2^53 to a double, which would make distinct large ids collide. Every other number
//!   is an IEEE double written as ECMAScript's `Number.prototype.toString` does: the shortest
//!   digits that round-trip, plain notation for 1e-6 <= |x| < 1e21, otherwise `d.ddde+XX`
//!   exponent notation, `-0` written as `0`. So `1`, `1.0` and `1e0` are the same number.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Number, Value};

/// The canonical JSON text of a value (see the module docs).
#[must_use]
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical_json(value, &mut out);
    out
}

/// Appends the canonical JSON text of a value to `out`.
pub fn write_canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| utf16_cmp(a, b));
            out.push('{');
            for (index, (key, item)) in members.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical_json(item, out);
            }
            out.push('}');
        }
    }
}

fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(number: &Number, out: &mut String) {
    if let Some(unsigned) = number.as_u64() {
        let _ = write!(out, "{unsigned}");
    } else if let Some(signed) = number.as_i64() {
        let _ = write!(out, "{signed}");
    } else if let Some(float) = number.as_f64() {
        write_double(float, out);
    }
}

/// ECMAScript `Number::toString(x)` for finite doubles (ECMA-262 §6.1.6.1.20).
pub(super) fn write_double(x: f64, out: &mut String) {
    if x == 0.0 {
        out.push('0');
        return;
    }
    if !x.is_finite() {
        // JSON cannot carry NaN or infinities; serde_json never produces them.
        out.push_str("null");
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    // `{:e}` prints the shortest round-tripping digits as `d[.ddd]e<exp>`.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    // The value is 0.digits × 10^n.
    let n = exponent + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        push_zeros(out, n - k);
    } else if 0 < n && n <= 21 {
        let split = usize::try_from(n).unwrap_or(0);
        out.push_str(&digits[..split]);
        out.push('.');
        out.push_str(&digits[split..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        push_zeros(out, -n);
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        let _ = write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs());
    }
}

fn push_zeros(out: &mut String, count: i32) {
    for _ in 0..count {
        out.push('0');
    }
}

#[cfg(test)]
mod tests;
