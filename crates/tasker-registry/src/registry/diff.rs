//! The differences between a stored template and a new one with the same identity, as a list
//! of changed fields (`steps[charge].retry.max_attempts: 3 → 5`).

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde_json::{Map, Value};

/// One field that differs between the stored template and the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where: object keys joined with `.`, array elements as `[index]`, or as `[name]` in lists
    /// of named objects (steps, events, overrides); keys that are not identifiers are quoted
    /// (`handler.initialization["api-url"]`). Empty for the whole document.
    pub path: String,
    /// What changed.
    pub kind: DifferenceKind,
}

/// How a field differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DifferenceKind {
    /// Only the new template has it.
    Added {
        /// The new value.
        new: Value,
    },
    /// Only the stored template has it.
    Removed {
        /// The stored value.
        stored: Value,
    },
    /// Both have it, with different values.
    Changed {
        /// The stored value.
        stored: Value,
        /// The new value.
        new: Value,
    },
    /// A list of named objects has the same names in another order.
    Reordered {
        /// The stored order.
        stored: Vec<String>,
        /// The new order.
        new: Vec<String>,
    },
}

impl fmt::Display for Difference {
    /// `steps[charge].retry.max_attempts: 3 → 5`, `steps[refund]: added`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(template)"
        } else {
            &self.path
        };
        match &self.kind {
            DifferenceKind::Added { new } => write!(f, "{path}: added {}", brief(new)),
            DifferenceKind::Removed { stored } => write!(f, "{path}: removed {}", brief(stored)),
            DifferenceKind::Changed { stored, new } => {
                write!(f, "{path}: {} → {}", brief(stored), brief(new))
            }
            DifferenceKind::Reordered { stored, new } => write!(
                f,
                "{path}: reordered [{}] → [{}]",
                stored.join(", "),
                new.join(", ")
            ),
        }
    }
}

/// Longest rendering of a value in a [`Difference`]'s text.
const BRIEF_MAX_CHARS: usize = 60;

fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= BRIEF_MAX_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(BRIEF_MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Every difference between `stored` and `new`, in a stable order: object keys sorted, named
/// list elements in the new order followed by removed ones.
#[must_use]
pub fn differences(stored: &Value, new: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    compare(String::new(), stored, new, &mut out);
    out
}

fn compare(path: String, stored: &Value, new: &Value, out: &mut Vec<Difference>) {
    match (stored, new) {
        (Value::Object(stored), Value::Object(new)) => compare_objects(&path, stored, new, out),
        (Value::Array(stored), Value::Array(new)) => match (named(stored), named(new)) {
            (Some(stored_names), Some(new_names)) => {
                compare_named(&path, stored, &stored_names, new, &new_names, out);
            }
            _ => compare_positional(&path, stored, new, out),
        },
        _ if stored == new => {}
        _ => out.push(Difference {
            path,
            kind: DifferenceKind::Changed {
                stored: stored.clone(),
                new: new.clone(),
            },
        }),
    }
}

fn compare_objects(
    path: &str,
    stored: &Map<String, Value>,
    new: &Map<String, Value>,
    out: &mut Vec<Difference>,
) {
    let keys: BTreeSet<&String> = stored.keys().chain(new.keys()).collect();
    for key in keys {
        let child = join_key(path, key);
        match (stored.get(key), new.get(key)) {
            (Some(stored), Some(new)) => compare(child, stored, new, out),
            (Some(stored), None) => out.push(Difference {
                path: child,
                kind: DifferenceKind::Removed {
                    stored: stored.clone(),
                },
            }),
            (None, Some(new)) => out.push(Difference {
                path: child,
                kind: DifferenceKind::Added { new: new.clone() },
            }),
            (None, None) => {}
        }
    }
}

fn compare_positional(path: &str, stored: &[Value], new: &[Value], out: &mut Vec<Difference>) {
    for index in 0..stored.len().max(new.len()) {
        let child = format!("{path}[{index}]");
        match (stored.get(index), new.get(index)) {
            (Some(stored), Some(new)) => compare(child, stored, new, out),
            (Some(stored), None) => out.push(Difference {
                path: child,
                kind: DifferenceKind::Removed {
                    stored: stored.clone(),
                },
            }),
            (None, Some(new)) => out.push(Difference {
                path: child,
                kind: DifferenceKind::Added { new: new.clone() },
            }),
            (None, None) => {}
        }
    }
}

fn compare_named(
    path: &str,
    stored: &[Value],
    stored_names: &[&str],
    new: &[Value],
    new_names: &[&str],
    out: &mut Vec<Difference>,
) {
    let position = |names: &[&str], name: &str| names.iter().position(|n| *n == name);
    // The elements both lists have, in each list's order: if they differ, the list was
    // reordered (added and removed elements aside).
    let common_stored: Vec<&str> = stored_names
        .iter()
        .copied()
        .filter(|name| new_names.contains(name))
        .collect();
    let common_new: Vec<&str> = new_names
        .iter()
        .copied()
        .filter(|name| stored_names.contains(name))
        .collect();
    if common_stored != common_new {
        out.push(Difference {
            path: path.to_owned(),
            kind: DifferenceKind::Reordered {
                stored: common_stored
                    .iter()
                    .map(|name| (*name).to_owned())
                    .collect(),
                new: common_new.iter().map(|name| (*name).to_owned()).collect(),
            },
        });
    }
    for (value, name) in new.iter().zip(new_names) {
        let child = format!("{path}[{}]", quote_if_needed(name));
        match position(stored_names, name) {
            Some(index) => compare(child, &stored[index], value, out),
            None => out.push(Difference {
                path: child,
                kind: DifferenceKind::Added { new: value.clone() },
            }),
        }
    }
    for (value, name) in stored.iter().zip(stored_names) {
        if position(new_names, name).is_none() {
            out.push(Difference {
                path: format!("{path}[{}]", quote_if_needed(name)),
                kind: DifferenceKind::Removed {
                    stored: value.clone(),
                },
            });
        }
    }
}

/// The `name` of every element when the list is a list of objects with distinct string names
/// (steps, domain events, environment overrides); an empty list is one too.
fn named(list: &[Value]) -> Option<Vec<&str>> {
    let mut seen = HashSet::with_capacity(list.len());
    list.iter()
        .map(|element| {
            let name = element.as_object()?.get("name")?.as_str()?;
            seen.insert(name).then_some(name)
        })
        .collect()
}

fn join_key(path: &str, key: &str) -> String {
    if is_identifier(key) {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    } else {
        format!("{path}[{}]", Value::from(key))
    }
}

fn quote_if_needed(name: &str) -> String {
    if is_identifier(name) {
        name.to_owned()
    } else {
        Value::from(name).to_string()
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
