//! `${VAR}` and `${VAR:-default}` expansion inside string values.
//!
//! Expansion runs on parsed string values, never on raw file text, so a substituted value
//! cannot break the TOML syntax and nothing needs escaping. Rules:
//! - `${NAME}`: the variable's value; an unset variable is an error.
//! - `${NAME:-default}`: the variable's value if it is set and not empty, else `default`
//!   (everything up to the first `}`; it may contain `:`, `/`, `@`, `[` ...).
//! - `$${` is a literal `${`. A `$` not followed by `{` is kept as is.
//! - Substituted text is not expanded again.

use crate::provenance::{PlaceholderUse, Resolution};

/// A string with its placeholders expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded {
    pub(crate) value: String,
    pub(crate) uses: Vec<PlaceholderUse>,
}

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlaceholderError {
    /// `${NAME}` without default, and `NAME` is not set.
    Unset { variable: String },
    /// Something other than a variable name between `${` and `}` / `:-`.
    InvalidName { name: String },
    /// A `${` without a closing `}`.
    Unterminated,
}

/// Expands the placeholders in `text`, reading variables through `lookup`.
pub(crate) fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Expanded, PlaceholderError> {
    if !text.contains('$') {
        return Ok(Expanded {
            value: text.to_owned(),
            uses: Vec::new(),
        });
    }
    let mut value = String::with_capacity(text.len());
    let mut uses = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        value.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(tail) = after.strip_prefix("$${") {
            value.push_str("${");
            rest = tail;
            continue;
        }
        let Some(body_and_tail) = after.strip_prefix("${") else {
            value.push('$');
            rest = &after[1..];
            continue;
        };
        let close = body_and_tail
            .find('}')
            .ok_or(PlaceholderError::Unterminated)?;
        let body = &body_and_tail[..close];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        if !is_variable_name(name) {
            return Err(PlaceholderError::InvalidName {
                name: name.to_owned(),
            });
        }
        let set = lookup(name);
        let (text, resolution) = match (set, default) {
            (Some(v), Some(_)) if !v.is_empty() => (v, Resolution::FromEnvironment),
            (Some(v), None) => (v, Resolution::FromEnvironment),
            (_, Some(default)) => (default.to_owned(), Resolution::Default),
            (None, None) => {
                return Err(PlaceholderError::Unset {
                    variable: name.to_owned(),
                });
            }
        };
        value.push_str(&text);
        uses.push(PlaceholderUse {
            variable: name.to_owned(),
            resolution,
        });
        rest = &body_and_tail[close + 1..];
    }
    value.push_str(rest);
    Ok(Expanded { value, uses })
}

fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
