//! `TASKER__SECTION__KEY=value` environment overrides, typed by the schema.
//!
//! The variable name is split on `__` and lowercased into a dotted key. The value is parsed
//! into the TOML type the schema expects at that key: integers, floats and booleans are
//! parsed; lists are written as a TOML array (`[1, 2, 4]`, `["a", "b"]`) or comma-separated
//! (`1,2,4`); strings are taken literally (placeholders in them are *not* expanded). A value
//! that does not parse stays a string, and the schema check then reports the type mismatch
//! with the variable's name.

use std::{collections::BTreeMap, str::FromStr};

use super::resolve::LayerInput;
use crate::{
    schema::{FieldKind, SectionMeta, Shape},
    tasker::TaskerConfig,
};

/// The prefix of override variables.
pub(crate) const PREFIX: &str = "TASKER__";

/// One layer per `TASKER__...` variable, in variable-name order.
pub(crate) fn env_layers(
    env: &BTreeMap<String, String>,
    root: &'static SectionMeta,
) -> Vec<LayerInput> {
    let all_sections = TaskerConfig::meta();
    env.iter()
        .filter_map(|(name, text)| {
            let path: Vec<String> = name
                .strip_prefix(PREFIX)?
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            let first = path.first()?;
            // A section this service does not load (a worker ignores TASKER__ORCHESTRATION__...).
            if root.field(first).is_none() && all_sections.field(first).is_some() {
                return None;
            }
            let shape = shape_at(root, &path).unwrap_or(Shape::String);
            let mut value = parse_value(text, shape);
            for segment in path.iter().rev() {
                let mut table = toml::Table::new();
                table.insert(segment.clone(), value);
                value = toml::Value::Table(table);
            }
            let toml::Value::Table(table) = value else {
                return None;
            };
            Some(LayerInput::env(name.clone(), table))
        })
        .collect()
}

/// The shape of the key at `path`, if the schema has it.
fn shape_at(root: &'static SectionMeta, path: &[String]) -> Option<Shape> {
    let (last, parents) = path.split_last()?;
    let mut meta = root;
    for segment in parents {
        match (meta.field(segment)?.kind)() {
            FieldKind::Section(next) => meta = next,
            FieldKind::Leaf | FieldKind::List(_) => return None,
        }
    }
    Some(meta.field(last)?.shape)
}

/// Parses override text into the TOML value of the given shape; text that does not parse
/// stays a string.
pub(crate) fn parse_value(text: &str, shape: Shape) -> toml::Value {
    let trimmed = text.trim();
    let parsed = match shape {
        Shape::Integer => trimmed
            .replace('_', "")
            .parse::<i64>()
            .ok()
            .map(toml::Value::Integer),
        Shape::Float => trimmed
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(toml::Value::Float),
        Shape::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Some(toml::Value::Boolean(true)),
            "false" => Some(toml::Value::Boolean(false)),
            _ => None,
        },
        Shape::List(_) if trimmed.starts_with('[') => toml::Value::from_str(trimmed)
            .ok()
            .filter(toml::Value::is_array),
        Shape::List(_) if trimmed.is_empty() => Some(toml::Value::Array(Vec::new())),
        Shape::List(element) => Some(toml::Value::Array(
            trimmed
                .split(',')
                .map(|item| parse_value(item, element()))
                .collect(),
        )),
        Shape::String | Shape::Table => None,
    };
    parsed.unwrap_or_else(|| toml::Value::String(text.to_owned()))
}
