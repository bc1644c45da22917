//! Limits on caller-supplied JSON (`context`, `options`): size, nesting depth, keys per
//! object, items per array, and key and string lengths. Each breach is reported with the JSON
//! pointer of the offending value; the walk never descends past the depth limit.

use std::io;

use serde_json::{Map, Value};

use super::{RequestRule, Violations};

/// Limits on caller-supplied JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Largest serialized (compact) size in bytes.
    pub max_bytes: usize,
    /// Deepest nesting: the top-level object is depth 1, an object or array inside it 2, ...
    pub max_depth: usize,
    /// Most keys in one object.
    pub max_object_keys: usize,
    /// Most items in one array.
    pub max_array_items: usize,
    /// Longest object key or string value, in characters.
    pub max_string_chars: usize,
}

impl Default for JsonLimits {
    /// 1 MiB, depth 10, 1000 keys, 1000 items, 10,000 characters.
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_depth: 10,
            max_object_keys: 1000,
            max_array_items: 1000,
            max_string_chars: 10_000,
        }
    }
}

/// Counts bytes without storing them.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn check(
    value: &Value,
    pointer: &str,
    limits: &JsonLimits,
    violations: &mut Violations,
) {
    check_size(value, pointer, limits, violations);
    walk(value, pointer, 1, limits, violations);
}

pub(super) fn check_object(
    object: &Map<String, Value>,
    pointer: &str,
    limits: &JsonLimits,
    violations: &mut Violations,
) {
    let mut counter = Counter(0);
    if serde_json::to_writer(&mut counter, object).is_ok() && counter.0 > limits.max_bytes {
        report_size(counter.0, pointer, limits, violations);
    }
    walk_object(object, pointer, 1, limits, violations);
}

fn check_size(value: &Value, pointer: &str, limits: &JsonLimits, violations: &mut Violations) {
    let mut counter = Counter(0);
    if serde_json::to_writer(&mut counter, value).is_ok() && counter.0 > limits.max_bytes {
        report_size(counter.0, pointer, limits, violations);
    }
}

fn report_size(size: usize, pointer: &str, limits: &JsonLimits, violations: &mut Violations) {
    violations.push(
        pointer,
        RequestRule::Limit,
        format!("is {size} bytes as JSON; the limit is {}", limits.max_bytes),
    );
}

fn walk(
    value: &Value,
    pointer: &str,
    depth: usize,
    limits: &JsonLimits,
    violations: &mut Violations,
) {
    match value {
        Value::Object(object) => walk_object(object, pointer, depth, limits, violations),
        Value::Array(items) => {
            if depth > limits.max_depth {
                report_depth(pointer, limits, violations);
                return;
            }
            if items.len() > limits.max_array_items {
                violations.push(
                    pointer,
                    RequestRule::Limit,
                    format!(
                        "has {} items; the limit is {}",
                        items.len(),
                        limits.max_array_items
                    ),
                );
            }
            for (index, item) in items.iter().enumerate() {
                walk(
                    item,
                    &format!("{pointer}/{index}"),
                    depth + 1,
                    limits,
                    violations,
                );
            }
        }
        Value::String(text) => check_string(text, pointer, "string", limits, violations),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn walk_object(
    object: &Map<String, Value>,
    pointer: &str,
    depth: usize,
    limits: &JsonLimits,
    violations: &mut Violations,
) {
    if depth > limits.max_depth {
        report_depth(pointer, limits, violations);
        return;
    }
    if object.len() > limits.max_object_keys {
        violations.push(
            pointer,
            RequestRule::Limit,
            format!(
                "has {} keys; the limit is {}",
                object.len(),
                limits.max_object_keys
            ),
        );
    }
    for (key, item) in object {
        let child = format!("{pointer}/{}", escape(key));
        check_string(key, &child, "key", limits, violations);
        walk(item, &child, depth + 1, limits, violations);
    }
}

fn report_depth(pointer: &str, limits: &JsonLimits, violations: &mut Violations) {
    violations.push(
        pointer,
        RequestRule::Limit,
        format!("is nested more than {} levels deep", limits.max_depth),
    );
}

fn check_string(
    text: &str,
    pointer: &str,
    what: &str,
    limits: &JsonLimits,
    violations: &mut Violations,
) {
    // Byte length bounds the character count from above: skip counting short strings.
    if text.len() > limits.max_string_chars {
        let chars = text.chars().count();
        if chars > limits.max_string_chars {
            violations.push(
                pointer,
                RequestRule::Limit,
                format!(
                    "{what} is {chars} characters long; the limit is {}",
                    limits.max_string_chars
                ),
            );
        }
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
