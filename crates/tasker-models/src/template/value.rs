//! The generic YAML value templates are read from: `serde_yaml_ng::Value`'s shape, but borrowing
//! its strings (from the template text or from a `serde_yaml_ng::Value`) and keeping mapping
//! entries in a plain vector.
//!
//! Loading a large template used to spend as much time allocating, hashing and freeing
//! `serde_yaml_ng::Value`s as validating them: every key was an owned `String` hashed into an
//! `IndexMap`. Here a key is usually a slice of the text, a mapping is one vector, and the
//! reader looks keys up by scanning the handful of entries a template mapping has.

use std::borrow::Cow;

use serde_yaml_ng::Number;
use serde_yaml_ng::value::Tag;

/// A YAML value; `'t` is the lifetime of the text or `serde_yaml_ng::Value` it borrows from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'t> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'t, str>),
    Sequence(Vec<Value<'t>>),
    Mapping(Mapping<'t>),
    Tagged(Box<Tagged<'t>>),
}

/// A value with a YAML tag (`!custom value`), which templates do not support.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tagged<'t> {
    pub(crate) tag: Tag,
    pub(crate) value: Value<'t>,
}

/// A mapping's entries in document order; keys are unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Mapping<'t> {
    entries: Vec<(Value<'t>, Value<'t>)>,
}

impl<'t> Value<'t> {
    /// Borrows a `serde_yaml_ng::Value` (its keys are unique already).
    pub(crate) fn borrowed(value: &'t serde_yaml_ng::Value) -> Self {
        match value {
            serde_yaml_ng::Value::Null => Value::Null,
            serde_yaml_ng::Value::Bool(flag) => Value::Bool(*flag),
            serde_yaml_ng::Value::Number(number) => Value::Number(number.clone()),
            serde_yaml_ng::Value::String(text) => Value::String(Cow::Borrowed(text)),
            serde_yaml_ng::Value::Sequence(items) => {
                Value::Sequence(items.iter().map(Value::borrowed).collect())
            }
            serde_yaml_ng::Value::Mapping(map) => Value::Mapping(Mapping {
                entries: map
                    .iter()
                    .map(|(key, value)| (Value::borrowed(key), Value::borrowed(value)))
                    .collect(),
            }),
            serde_yaml_ng::Value::Tagged(tagged) => Value::Tagged(Box::new(Tagged {
                tag: tagged.tag.clone(),
                value: Value::borrowed(&tagged.value),
            })),
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// Mappings with more entries than this check their keys for duplicates by sorting rather
/// than by comparing every pair.
const PAIRWISE_LIMIT: usize = 8;

impl<'t> Mapping<'t> {
    /// A mapping of `entries` if their keys are unique scalars other than floats (the only
    /// keys the fast reader produces), or `None`: duplicates are for `serde_yaml_ng` to report.
    pub(crate) fn from_unique_entries(entries: Vec<(Value<'t>, Value<'t>)>) -> Option<Self> {
        if entries.len() <= PAIRWISE_LIMIT {
            for (index, (key, _)) in entries.iter().enumerate() {
                sort_key(key)?;
                if entries[..index].iter().any(|(earlier, _)| earlier == key) {
                    return None;
                }
            }
        } else {
            let mut keys = entries
                .iter()
                .map(|(key, _)| sort_key(key))
                .collect::<Option<Vec<_>>>()?;
            keys.sort_unstable();
            if keys.windows(2).any(|pair| pair[0] == pair[1]) {
                return None;
            }
        }
        Some(Self { entries })
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, (Value<'t>, Value<'t>)> {
        self.entries.iter()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &Value<'t>> {
        self.entries.iter().map(|(key, _)| key)
    }

    /// The value of the string key `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value<'t>> {
        self.entries.iter().find_map(|(candidate, value)| {
            matches!(candidate, Value::String(text) if text == key).then_some(value)
        })
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl<'a, 't> IntoIterator for &'a Mapping<'t> {
    type Item = &'a (Value<'t>, Value<'t>);
    type IntoIter = std::slice::Iter<'a, (Value<'t>, Value<'t>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// A key that orders and compares like the value does under `serde_yaml_ng`'s equality, for
/// null, booleans, integers and strings; `None` for other keys.
fn sort_key<'v>(key: &'v Value<'_>) -> Option<(u8, i128, &'v str)> {
    match key {
        Value::Null => Some((0, 0, "")),
        Value::Bool(flag) => Some((1, i128::from(*flag), "")),
        Value::Number(number) => {
            let int = number
                .as_u64()
                .map(i128::from)
                .or_else(|| number.as_i64().map(i128::from))?;
            Some((2, int, ""))
        }
        Value::String(text) => Some((3, 0, text)),
        Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => None,
    }
}

#[cfg(test)]
mod tests;
