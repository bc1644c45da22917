//! Walking a generic YAML value: YAML paths built lazily on the stack, typed field readers
//! that report every mismatch as a [`Problem`] and carry on.

use std::fmt::Write as _;

use super::Strictness;
use super::problem::{Problem, Rule, Severity};
use super::value::{Mapping, Value};

/// A YAML path, as a linked list on the stack: rendering happens only when a problem is
/// reported, so walking a large template allocates nothing for paths.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> Self {
        Path::Key(self, key)
    }

    pub(crate) fn index(&'a self, index: usize) -> Self {
        Path::Index(self, index)
    }

    pub(crate) fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut current = self;
        loop {
            match current {
                Path::Root => break,
                Path::Key(parent, key) => {
                    segments.push(Segment::Key(key));
                    current = parent;
                }
                Path::Index(parent, index) => {
                    segments.push(Segment::Index(*index));
                    current = parent;
                }
            }
        }
        let mut out = String::new();
        for segment in segments.into_iter().rev() {
            match segment {
                Segment::Key(key) => push_key(&mut out, key),
                Segment::Index(index) => {
                    let _ = write!(out, "[{index}]");
                }
            }
        }
        out
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Appends `.key`, or `["key"]` when the key is not a plain word.
pub(crate) fn push_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
    } else {
        let _ = write!(out, "[{}]", quote(key));
    }
}

pub(crate) fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

/// Collects problems while walking a template.
#[derive(Debug)]
pub(crate) struct Cx {
    pub(crate) strictness: Strictness,
    pub(crate) problems: Vec<Problem>,
}

/// A just-reported problem, to attach a hint to.
pub(crate) struct Reported<'a>(&'a mut Problem);

impl Reported<'_> {
    pub(crate) fn hint(self, hint: impl Into<String>) {
        self.0.hint = Some(hint.into());
    }

    pub(crate) fn maybe_hint(self, hint: Option<String>) {
        self.0.hint = hint;
    }
}

impl Cx {
    pub(crate) fn new(strictness: Strictness) -> Self {
        Self {
            strictness,
            problems: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        rule: Rule,
        path: String,
        value: Option<String>,
        message: impl Into<String>,
    ) -> Reported<'_> {
        self.problems.push(Problem {
            severity,
            rule,
            path,
            value,
            message: message.into(),
            hint: None,
        });
        let last = self.problems.len() - 1;
        Reported(&mut self.problems[last])
    }

    pub(crate) fn error(
        &mut self,
        rule: Rule,
        path: &Path<'_>,
        value: Option<&Value<'_>>,
        message: impl Into<String>,
    ) -> Reported<'_> {
        self.push(
            Severity::Error,
            rule,
            path.render(),
            value.map(render_value),
            message,
        )
    }

    pub(crate) fn warn(
        &mut self,
        rule: Rule,
        path: &Path<'_>,
        value: Option<&Value<'_>>,
        message: impl Into<String>,
    ) -> Reported<'_> {
        self.push(
            Severity::Warning,
            rule,
            path.render(),
            value.map(render_value),
            message,
        )
    }

    /// An error in strict mode, a warning in lenient mode.
    pub(crate) fn strict_error(
        &mut self,
        rule: Rule,
        path: &Path<'_>,
        value: Option<&Value<'_>>,
        message: impl Into<String>,
    ) -> Reported<'_> {
        let severity = match self.strictness {
            Strictness::Strict => Severity::Error,
            Strictness::Lenient => Severity::Warning,
        };
        self.push(
            severity,
            rule,
            path.render(),
            value.map(render_value),
            message,
        )
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }

    /// Reports a wrong type.
    pub(crate) fn wrong_type(&mut self, path: &Path<'_>, value: &Value<'_>, expected: &str) {
        let hint = match (expected, value) {
            ("an integer" | "a number", Value::String(text))
                if text.trim().parse::<f64>().is_ok() =>
            {
                Some(format!("write {} without quotes", text.trim()))
            }
            ("a boolean", Value::String(text)) => match text.to_ascii_lowercase().as_str() {
                "yes" | "on" | "y" => Some("write true without quotes".to_owned()),
                "no" | "off" | "n" => Some("write false without quotes".to_owned()),
                "true" | "false" => Some(format!(
                    "write {} without quotes",
                    text.to_ascii_lowercase()
                )),
                _ => None,
            },
            ("a string", Value::Number(_) | Value::Bool(_)) => {
                Some("quote the value to make it a string".to_owned())
            }
            ("a list", Value::String(_)) => {
                Some("write a YAML list: [a, b] or one `- item` per line".to_owned())
            }
            _ => None,
        };
        self.error(
            Rule::Type,
            path,
            Some(value),
            format!("expected {expected}, found {}", type_name(value)),
        )
        .maybe_hint(hint);
    }
}

/// How a value is described in messages.
pub(crate) fn type_name(value: &Value<'_>) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

const RENDER_BUDGET: usize = 60;

/// Renders a value compactly for messages: JSON-like, truncated with `…`.
pub(crate) fn render_value(value: &Value<'_>) -> String {
    let mut out = String::new();
    render_into(value, &mut out);
    if out.chars().count() > RENDER_BUDGET {
        let mut truncated: String = out.chars().take(RENDER_BUDGET).collect();
        truncated.push('…');
        truncated
    } else {
        out
    }
}

fn render_into(value: &Value<'_>, out: &mut String) {
    if out.len() > RENDER_BUDGET * 4 {
        return;
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => {
            let _ = write!(out, "{flag}");
        }
        Value::Number(number) => {
            let _ = write!(out, "{number}");
        }
        Value::String(text) => out.push_str(&quote(text)),
        Value::Sequence(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                render_into(item, out);
            }
            out.push(']');
        }
        Value::Mapping(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                render_into(key, out);
                out.push_str(": ");
                render_into(item, out);
            }
            out.push('}');
        }
        Value::Tagged(tagged) => {
            let _ = write!(out, "{} ", tagged.tag);
            render_into(&tagged.value, out);
        }
    }
}

/// The closest candidate to a misspelled word, if any is close enough.
pub(crate) fn did_you_mean<'c>(
    input: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(input, candidate);
        if score > 0.8 && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The keys a mapping may hold: canonical names plus `(alias, canonical)` pairs.
#[derive(Debug)]
pub(crate) struct Keys {
    pub(crate) known: &'static [&'static str],
    pub(crate) aliases: &'static [(&'static str, &'static str)],
}

impl Keys {
    pub(crate) const fn new(known: &'static [&'static str]) -> Self {
        Self {
            known,
            aliases: &[],
        }
    }
}

/// Reports non-string, unknown and aliased keys of a mapping.
pub(crate) fn check_keys(cx: &mut Cx, path: &Path<'_>, map: &Mapping<'_>, keys: &Keys) {
    for key in map.keys() {
        let Value::String(key) = key else {
            cx.error(
                Rule::Type,
                path,
                Some(key),
                format!("expected a string key, found {}", type_name(key)),
            )
            .hint("quote the key");
            continue;
        };
        if keys.known.contains(&&**key) {
            continue;
        }
        let key_path = path.key(key);
        if let Some((alias, canonical)) = keys.aliases.iter().find(|(alias, _)| alias == key) {
            if map.contains_key(canonical) {
                cx.error(
                    Rule::AliasConflict,
                    &key_path,
                    None,
                    format!("both `{alias}` and `{canonical}` are given"),
                )
                .hint(format!(
                    "remove `{alias}`; it is an older spelling of `{canonical}`"
                ));
            } else {
                cx.warn(
                    Rule::Alias,
                    &key_path,
                    None,
                    format!("`{alias}` is an older spelling of `{canonical}`; accepted"),
                )
                .hint(format!("rename it to `{canonical}`"));
            }
            continue;
        }
        let suggestion = did_you_mean(key, keys.known.iter().copied());
        let hint = match suggestion {
            Some(known) => format!("did you mean `{known}`?"),
            None => format!("known keys here: {}", keys.known.join(", ")),
        };
        let message = match cx.strictness {
            Strictness::Strict => format!("unknown key `{key}`"),
            Strictness::Lenient => format!("unknown key `{key}` is ignored"),
        };
        cx.strict_error(Rule::UnknownKey, &key_path, None, message)
            .hint(hint);
    }
}

/// A present, non-null field.
pub(crate) fn field<'v>(map: &'v Mapping<'v>, key: &str) -> Option<&'v Value<'v>> {
    match map.get(key) {
        None | Some(Value::Null) => None,
        Some(value) => Some(value),
    }
}

/// A field that may also be spelled as an alias; returns the key actually used.
pub(crate) fn aliased_field<'v>(
    map: &'v Mapping<'v>,
    canonical: &'static str,
    alias: &'static str,
) -> Option<(&'static str, &'v Value<'v>)> {
    field(map, canonical)
        .map(|value| (canonical, value))
        .or_else(|| field(map, alias).map(|value| (alias, value)))
}

pub(crate) fn mapping<'v>(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &'v Value<'v>,
) -> Option<&'v Mapping<'v>> {
    match value {
        Value::Mapping(map) => Some(map),
        other => {
            cx.wrong_type(path, other, "a mapping");
            None
        }
    }
}

pub(crate) fn sequence<'v>(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &'v Value<'v>,
) -> Option<&'v [Value<'v>]> {
    match value {
        Value::Sequence(items) => Some(items),
        other => {
            cx.wrong_type(path, other, "a list");
            None
        }
    }
}

pub(crate) fn string<'v>(cx: &mut Cx, path: &Path<'_>, value: &'v Value<'v>) -> Option<&'v str> {
    match value {
        Value::String(text) => Some(text),
        other => {
            cx.wrong_type(path, other, "a string");
            None
        }
    }
}

/// A string of `1..=max` characters.
pub(crate) fn bounded_string<'v>(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &'v Value<'v>,
    max: usize,
) -> Option<&'v str> {
    let text = string(cx, path, value)?;
    if text.trim().is_empty() {
        cx.error(Rule::Length, path, Some(value), "must not be empty");
        return None;
    }
    let len = text.chars().count();
    if len > max {
        cx.error(
            Rule::Length,
            path,
            Some(value),
            format!("is {len} characters long; the limit is {max}"),
        );
        return None;
    }
    Some(text)
}

pub(crate) fn boolean(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        other => {
            cx.wrong_type(path, other, "a boolean");
            None
        }
    }
}

/// An unsigned integer within `min..=max`.
pub(crate) fn integer(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &Value<'_>,
    min: u64,
    max: u64,
) -> Option<u64> {
    let Value::Number(number) = value else {
        cx.wrong_type(path, value, "an integer");
        return None;
    };
    let Some(found) = number.as_u64() else {
        if number.is_i64() {
            cx.error(
                Rule::Range,
                path,
                Some(value),
                format!("must be between {min} and {max}"),
            );
        } else {
            cx.wrong_type(path, value, "an integer");
        }
        return None;
    };
    if !(min..=max).contains(&found) {
        cx.error(
            Rule::Range,
            path,
            Some(value),
            format!("must be between {min} and {max}"),
        );
        return None;
    }
    Some(found)
}

/// One of a fixed set of words.
pub(crate) fn choice<T: Copy>(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &Value<'_>,
    choices: &[(&'static str, T)],
) -> Option<T> {
    let text = string(cx, path, value)?;
    if let Some((_, choice)) = choices.iter().find(|(name, _)| *name == text) {
        return Some(*choice);
    }
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    let hint = match did_you_mean(text, names.iter().copied()) {
        Some(name) => format!("did you mean `{name}`?"),
        None => format!("use one of: {}", names.join(", ")),
    };
    cx.error(
        Rule::Choice,
        path,
        Some(value),
        format!("expected one of: {}", names.join(", ")),
    )
    .hint(hint);
    None
}

/// A list of strings; `null` is an empty list.
pub(crate) fn string_list<'v>(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &'v Value<'v>,
    max: usize,
) -> Vec<&'v str> {
    let Some(items) = sequence(cx, path, value) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| bounded_string(cx, &path.index(index), item, max))
        .collect()
}

/// Converts a YAML value to JSON, reporting what JSON cannot represent.
pub(crate) fn to_json(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &Value<'_>,
) -> Option<serde_json::Value> {
    let before = cx.problems.len();
    let json = to_json_inner(cx, path, value);
    (cx.problems.len() == before).then_some(json)
}

fn to_json_inner(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Null => Json::Null,
        Value::Bool(flag) => Json::Bool(*flag),
        Value::Number(number) => {
            if let Some(unsigned) = number.as_u64() {
                Json::from(unsigned)
            } else if let Some(signed) = number.as_i64() {
                Json::from(signed)
            } else if let Some(json) = number.as_f64().and_then(serde_json::Number::from_f64) {
                Json::Number(json)
            } else {
                cx.error(
                    Rule::Type,
                    path,
                    Some(value),
                    "JSON cannot represent NaN or infinity",
                );
                Json::Null
            }
        }
        Value::String(text) => Json::String((**text).to_owned()),
        Value::Sequence(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, item)| to_json_inner(cx, &path.index(index), item))
                .collect(),
        ),
        Value::Mapping(map) => {
            let mut object = serde_json::Map::with_capacity(map.len());
            for (key, item) in map {
                let Value::String(key) = key else {
                    cx.error(
                        Rule::Type,
                        path,
                        Some(key),
                        format!("expected a string key, found {}", type_name(key)),
                    )
                    .hint("JSON object keys are strings: quote the key");
                    continue;
                };
                let json = to_json_inner(cx, &path.key(key), item);
                object.insert((**key).to_owned(), json);
            }
            Json::Object(object)
        }
        Value::Tagged(tagged) => {
            cx.error(
                Rule::Type,
                path,
                Some(value),
                format!("YAML tags such as `{}` are not supported", tagged.tag),
            );
            Json::Null
        }
    }
}

#[cfg(test)]
mod tests;
