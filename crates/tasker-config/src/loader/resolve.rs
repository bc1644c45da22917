//! Merging the layers with the `config` crate, then walking the merged tree against the
//! schema: unknown keys, type checks, placeholder expansion and provenance.
//!
//! Each layer is a `config::Source` whose values carry the layer's index as their origin,
//! so after the `config` crate's deep merge every leaf still says which layer set it.

use std::collections::BTreeMap;

use config::{Source, Value as CValue, ValueKind};

use crate::{
    error::ConfigError,
    placeholder::{self, PlaceholderError},
    problem::{ConfigProblem, ProblemKind},
    provenance::{Layer, Origin, Provenance},
    schema::{FieldKind, FieldMeta, Secrecy, SectionMeta},
    validate::{redact, redact_toml},
};

/// One layer before merging.
#[derive(Debug, Clone)]
pub(crate) struct LayerInput {
    layer: Layer,
    table: toml::Table,
}

impl LayerInput {
    pub(crate) fn defaults(table: toml::Table) -> Self {
        Self {
            layer: Layer::Default,
            table,
        }
    }

    pub(crate) fn file(path: std::path::PathBuf, table: toml::Table) -> Self {
        Self {
            layer: Layer::File(path),
            table,
        }
    }

    pub(crate) fn env(name: String, table: toml::Table) -> Self {
        Self {
            layer: Layer::EnvVar(name),
            table,
        }
    }
}

/// The merged, expanded and schema-checked tree.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) tree: toml::Table,
    pub(crate) provenance: Provenance,
    /// Keys whose value was dropped because of a problem already reported; validation
    /// problems under them would only repeat it.
    pub(crate) poisoned: Poisoned,
}

/// See [`Resolved::poisoned`].
#[derive(Debug, Default)]
pub(crate) struct Poisoned(Vec<String>);

impl Poisoned {
    pub(crate) fn covers(&self, key: &str) -> bool {
        self.0.iter().any(|p| {
            key.strip_prefix(p.as_str()).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('.') || rest.starts_with('[')
            })
        })
    }
}

/// Merges `layers` (lowest precedence first) and checks the result against `meta`.
pub(crate) fn resolve(
    layers: &[LayerInput],
    meta: &'static SectionMeta,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<ConfigProblem>,
) -> Result<Resolved, ConfigError> {
    let mut builder = config::Config::builder();
    for (index, layer) in layers.iter().enumerate() {
        builder = builder.add_source(LayerSource {
            origin: index.to_string(),
            table: layer.table.clone(),
        });
    }
    let merged = builder
        .build()
        .and_then(|c| c.collect())
        .map_err(ConfigError::Merge)?;
    let mut walker = Walker {
        layers,
        env,
        problems,
        provenance: Provenance::default(),
        poisoned: Poisoned::default(),
    };
    let tree = walker.section(merged, meta, "");
    Ok(Resolved {
        tree,
        provenance: walker.provenance,
        poisoned: walker.poisoned,
    })
}

/// A problem for a raw tree that passed the schema walk but not serde (a bug, reported
/// rather than panicking).
pub(crate) fn decode_failure(error: &toml::de::Error) -> ConfigProblem {
    ConfigProblem {
        source: Layer::Default,
        key: String::new(),
        value: None,
        kind: ProblemKind::WrongType {
            expected: "the configuration schema".to_owned(),
            found: "table",
            detail: Some(error.message().to_owned()),
        },
    }
}

#[derive(Debug, Clone)]
struct LayerSource {
    origin: String,
    table: toml::Table,
}

impl Source for LayerSource {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, CValue>, config::ConfigError> {
        Ok(self
            .table
            .iter()
            .map(|(k, v)| (k.clone(), to_config(v, &self.origin)))
            .collect())
    }
}

fn to_config(value: &toml::Value, origin: &String) -> CValue {
    let kind = match value {
        toml::Value::String(s) => ValueKind::String(s.clone()),
        toml::Value::Integer(i) => ValueKind::I64(*i),
        toml::Value::Float(f) => ValueKind::Float(*f),
        toml::Value::Boolean(b) => ValueKind::Boolean(*b),
        toml::Value::Datetime(d) => ValueKind::String(d.to_string()),
        toml::Value::Array(items) => {
            ValueKind::Array(items.iter().map(|i| to_config(i, origin)).collect())
        }
        toml::Value::Table(table) => ValueKind::Table(
            table
                .iter()
                .map(|(k, v)| (k.clone(), to_config(v, origin)))
                .collect(),
        ),
    };
    CValue::new(Some(origin), kind)
}

fn to_toml(value: CValue) -> toml::Value {
    match value.kind {
        ValueKind::Nil => toml::Value::String(String::new()),
        ValueKind::Boolean(b) => toml::Value::Boolean(b),
        ValueKind::I64(i) => toml::Value::Integer(i),
        ValueKind::I128(i) => toml::Value::Integer(i64::try_from(i).unwrap_or(i64::MAX)),
        ValueKind::U64(u) => toml::Value::Integer(i64::try_from(u).unwrap_or(i64::MAX)),
        ValueKind::U128(u) => toml::Value::Integer(i64::try_from(u).unwrap_or(i64::MAX)),
        ValueKind::Float(f) => toml::Value::Float(f),
        ValueKind::String(s) => toml::Value::String(s),
        ValueKind::Array(items) => toml::Value::Array(items.into_iter().map(to_toml).collect()),
        ValueKind::Table(table) => {
            toml::Value::Table(table.into_iter().map(|(k, v)| (k, to_toml(v))).collect())
        }
    }
}

fn type_of(value: &CValue) -> &'static str {
    match value.kind {
        ValueKind::Nil => "nothing",
        ValueKind::Boolean(_) => "boolean",
        ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
            "integer"
        }
        ValueKind::Float(_) => "float",
        ValueKind::String(_) => "string",
        ValueKind::Array(_) => "array",
        ValueKind::Table(_) => "table",
    }
}

struct Walker<'a> {
    layers: &'a [LayerInput],
    env: &'a BTreeMap<String, String>,
    problems: &'a mut Vec<ConfigProblem>,
    provenance: Provenance,
    poisoned: Poisoned,
}

impl Walker<'_> {
    fn layer_of(&self, value: &CValue) -> Layer {
        value
            .origin()
            .and_then(|o| o.parse::<usize>().ok())
            .and_then(|i| self.layers.get(i))
            .map_or(Layer::Default, |l| l.layer.clone())
    }

    fn section(
        &mut self,
        table: config::Map<String, CValue>,
        meta: &'static SectionMeta,
        path: &str,
    ) -> toml::Table {
        let mut entries: Vec<(String, CValue)> = table.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = toml::Table::new();
        for (key, value) in entries {
            let full = join(path, &key);
            match meta.field(&key) {
                Some(field) => {
                    if let Some(value) = self.field(field, value, &full) {
                        out.insert(key, value);
                    }
                }
                None => {
                    let suggestion = meta.suggest(&key).map(|s| join(path, s));
                    self.unknown(&full, &value, suggestion.as_deref());
                }
            }
        }
        out
    }

    /// Reports every leaf under an unknown key, each with its own source.
    fn unknown(&mut self, key: &str, value: &CValue, suggestion: Option<&str>) {
        match &value.kind {
            ValueKind::Table(table) if !table.is_empty() => {
                let mut entries: Vec<(&String, &CValue)> = table.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (child, value) in entries {
                    self.unknown(&join(key, child), value, suggestion);
                }
            }
            _ => {
                let source = self.layer_of(value);
                let suggestion = suggestion.map(str::to_owned);
                self.problems.push(ConfigProblem {
                    source,
                    key: key.to_owned(),
                    value: None,
                    kind: ProblemKind::UnknownKey { suggestion },
                });
            }
        }
    }

    fn field(
        &mut self,
        field: &'static FieldMeta,
        value: CValue,
        key: &str,
    ) -> Option<toml::Value> {
        let origin = value.origin().map(str::to_owned);
        match ((field.kind)(), value.kind) {
            (FieldKind::Section(meta), ValueKind::Table(table)) => {
                Some(toml::Value::Table(self.section(table, meta, key)))
            }
            (FieldKind::List(element), ValueKind::Array(items))
                if matches!(element(), FieldKind::Section(_)) =>
            {
                let FieldKind::Section(meta) = element() else {
                    return None;
                };
                self.record(
                    key,
                    Origin {
                        layer: self.layer_of_kindless(&items),
                        placeholders: Vec::new(),
                    },
                );
                let mut out = Vec::new();
                for (index, item) in items.into_iter().enumerate() {
                    let item_key = format!("{key}[{index}]");
                    let item_origin = item.origin().map(str::to_owned);
                    match item.kind {
                        ValueKind::Table(table) => {
                            out.push(toml::Value::Table(self.section(table, meta, &item_key)));
                        }
                        kind => {
                            let item = CValue::new(item_origin.as_ref(), kind);
                            self.wrong_type(field, &item, &item_key, "table".to_owned(), None);
                            return None;
                        }
                    }
                }
                Some(toml::Value::Array(out))
            }
            (FieldKind::Section(_), kind) | (FieldKind::List(_), kind @ ValueKind::Table(_)) => {
                let value = CValue::new(origin.as_ref(), kind);
                let expected = (field.type_name)();
                self.wrong_type(field, &value, key, expected, None);
                None
            }
            (FieldKind::Leaf | FieldKind::List(_), kind) => {
                self.leaf(field, CValue::new(origin.as_ref(), kind), key)
            }
        }
    }

    fn layer_of_kindless(&self, items: &[CValue]) -> Layer {
        items.first().map_or(Layer::Default, |i| self.layer_of(i))
    }

    fn leaf(&mut self, field: &'static FieldMeta, value: CValue, key: &str) -> Option<toml::Value> {
        let layer = self.layer_of(&value);
        let shown = value.clone();
        let mut toml_value = to_toml(value);
        let mut placeholders = Vec::new();
        if !matches!(layer, Layer::EnvVar(_))
            && let Err(error) = self.expand(&mut toml_value, &mut placeholders)
        {
            let original = to_toml(shown);
            let kind = match error {
                PlaceholderError::Unset { variable } => ProblemKind::UnsetVariable { variable },
                PlaceholderError::InvalidName { name } => ProblemKind::MalformedPlaceholder {
                    reason: format!("`{name}` is not a variable name"),
                },
                PlaceholderError::Unterminated => ProblemKind::MalformedPlaceholder {
                    reason: "`${` without a closing `}`".to_owned(),
                },
            };
            self.poison(key, layer, Some(render(&original, field)), kind);
            return None;
        }
        if let Err(error) = (field.decode)(&toml_value) {
            let expected = (field.type_name)();
            let detail = match ((field.kind)(), field.secrecy) {
                (FieldKind::List(_), Secrecy::Public) => Some(error.message().trim().to_owned()),
                _ => None,
            };
            let found = toml_value.type_str();
            self.poison(
                key,
                layer,
                Some(render(&toml_value, field)),
                ProblemKind::WrongType {
                    expected,
                    found,
                    detail,
                },
            );
            return None;
        }
        self.record(
            key,
            Origin {
                layer,
                placeholders,
            },
        );
        Some(toml_value)
    }

    fn expand(
        &self,
        value: &mut toml::Value,
        uses: &mut Vec<crate::provenance::PlaceholderUse>,
    ) -> Result<(), PlaceholderError> {
        match value {
            toml::Value::String(text) => {
                let expanded = placeholder::expand(text, |name| self.env.get(name).cloned())?;
                *text = expanded.value;
                uses.extend(expanded.uses);
                Ok(())
            }
            toml::Value::Array(items) => items.iter_mut().try_for_each(|i| self.expand(i, uses)),
            toml::Value::Table(table) => {
                table.iter_mut().try_for_each(|(_, v)| self.expand(v, uses))
            }
            _ => Ok(()),
        }
    }

    fn wrong_type(
        &mut self,
        field: &'static FieldMeta,
        value: &CValue,
        key: &str,
        expected: String,
        detail: Option<String>,
    ) {
        let layer = self.layer_of(value);
        let found = type_of(value);
        let shown = match &value.kind {
            ValueKind::Table(_) => None,
            _ => Some(render(&to_toml(value.clone()), field)),
        };
        self.poison(
            key,
            layer,
            shown,
            ProblemKind::WrongType {
                expected,
                found,
                detail,
            },
        );
    }

    fn poison(&mut self, key: &str, source: Layer, value: Option<String>, kind: ProblemKind) {
        self.poisoned.0.push(key.to_owned());
        self.problems.push(ConfigProblem {
            source,
            key: key.to_owned(),
            value,
            kind,
        });
    }

    fn record(&mut self, key: &str, origin: Origin) {
        self.provenance.insert(key.to_owned(), origin);
    }
}

fn render(value: &toml::Value, field: &FieldMeta) -> String {
    match (field.kind)() {
        kind @ (FieldKind::List(_) | FieldKind::Section(_)) => {
            redact(value, kind, field.secrecy).to_string()
        }
        FieldKind::Leaf => redact_toml(value, field.secrecy).to_string(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
