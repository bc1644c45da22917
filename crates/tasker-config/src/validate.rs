//! The validation stage: walks the raw configuration, checks every rule and collects every
//! problem, each tagged with its dotted key, its source layer and its (redacted) value.

use serde::Serialize;

use crate::{
    problem::{ConfigProblem, ProblemKind, Relation},
    provenance::{Layer, Provenance},
    schema::{FieldKind, Rule, Secrecy, SectionMeta, Setting},
    types::{MASK, redact_url_text},
};

/// Collects problems while raw values are turned into validated ones.
#[derive(Debug)]
pub(crate) struct Validator<'r> {
    frames: Vec<Frame<'r>>,
    provenance: &'r Provenance,
    problems: Vec<ConfigProblem>,
}

struct Frame<'r> {
    segment: Segment,
    secrecy: Secrecy,
    value: Option<&'r dyn Render>,
    kind: FieldKind,
}

impl Frame<'_> {
    fn meta(&self) -> Option<&'static SectionMeta> {
        match self.kind {
            FieldKind::Section(meta) => Some(meta),
            FieldKind::Leaf | FieldKind::List(_) => None,
        }
    }
}

impl std::fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("segment", &self.segment)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
enum Segment {
    Key(&'static str),
    Index(usize),
}

/// Something that can be shown as a TOML value in a problem.
pub(crate) trait Render {
    fn to_toml(&self) -> Option<toml::Value>;
}

impl<T: Serialize> Render for T {
    fn to_toml(&self) -> Option<toml::Value> {
        toml::Value::try_from(self).ok()
    }
}

/// Validates `raw` as the root section `T`, returning every problem found.
pub(crate) fn validate_root<T: Setting>(
    raw: &T::Raw,
    provenance: &Provenance,
) -> Result<T, Vec<ConfigProblem>> {
    let mut validator = Validator {
        frames: Vec::new(),
        provenance,
        problems: Vec::new(),
    };
    validator.frames.push(Frame {
        segment: Segment::Key(""),
        secrecy: Secrecy::Public,
        value: None,
        kind: T::kind(),
    });
    let validated = T::validate(raw, &mut validator);
    match validated {
        Some(config) if validator.problems.is_empty() => Ok(config),
        _ => Err(validator.problems),
    }
}

impl<'r> Validator<'r> {
    /// Validates the field `key` of the current section.
    pub(crate) fn field<T: Setting>(
        &mut self,
        key: &'static str,
        raw: &'r T::Raw,
        rules: &[Rule],
    ) -> Option<T> {
        self.descend::<T>(Segment::Key(key), raw, rules)
    }

    /// Validates element `index` of the current list.
    pub(crate) fn element<T: Setting>(&mut self, index: usize, raw: &'r T::Raw) -> Option<T> {
        self.descend::<T>(Segment::Index(index), raw, &[])
    }

    fn descend<T: Setting>(
        &mut self,
        segment: Segment,
        raw: &'r T::Raw,
        rules: &[Rule],
    ) -> Option<T> {
        self.frames.push(Frame {
            segment,
            secrecy: T::SECRECY,
            value: Some(raw),
            kind: T::kind(),
        });
        let rules_hold = self.check_rules(raw, rules);
        let validated = T::validate(raw, self);
        self.frames.pop();
        validated.filter(|_| rules_hold)
    }

    /// Reports a problem with the current value.
    pub(crate) fn reject(&mut self, kind: ProblemKind) {
        let value = self.frames.last().and_then(|f| {
            let value = f.value?.to_toml()?;
            Some(redact(&value, f.kind, f.secrecy).to_string())
        });
        let key = self.path();
        self.push(key, value, kind);
    }

    /// Reports a problem with the field `field` of the current section.
    pub(crate) fn reject_field<T: Serialize + ?Sized>(
        &mut self,
        field: &str,
        value: &T,
        kind: ProblemKind,
    ) {
        let (field_kind, secrecy) = self.field_kind(field);
        let key = self.key_of(field);
        let value = value
            .to_toml()
            .map(|v| redact(&v, field_kind, secrecy).to_string());
        self.push(key, value, kind);
    }

    /// Checks `a <= b` for two fields of the current section.
    pub(crate) fn le<T: PartialOrd + Serialize>(&mut self, a: &str, av: &T, b: &str, bv: &T) {
        if av > bv {
            self.relation(a, av, Relation::AtMost, b, bv);
        }
    }

    /// Checks `a < b` for two fields of the current section.
    pub(crate) fn lt<T: PartialOrd + Serialize>(&mut self, a: &str, av: &T, b: &str, bv: &T) {
        if av >= bv {
            self.relation(a, av, Relation::LessThan, b, bv);
        }
    }

    /// Reports that `a` must relate to `b` as `relation`.
    pub(crate) fn relation<T: Serialize + ?Sized>(
        &mut self,
        a: &str,
        av: &T,
        relation: Relation,
        b: &str,
        bv: &T,
    ) {
        let (kind, secrecy) = self.field_kind(b);
        let other_value = bv
            .to_toml()
            .map_or_else(String::new, |v| redact(&v, kind, secrecy).to_string());
        let other_key = self.key_of(b);
        self.reject_field(
            a,
            av,
            ProblemKind::Relation {
                relation,
                other_key,
                other_value,
            },
        );
    }

    /// Reports that `field` (currently `value`) must be set `when` a condition holds.
    pub(crate) fn require<T: Serialize + ?Sized>(&mut self, field: &str, value: &T, when: &str) {
        let when = when.to_owned();
        self.reject_field(field, value, ProblemKind::Required { when });
    }

    /// The full dotted key of `field` in the current section.
    pub(crate) fn key_of(&self, field: &str) -> String {
        let path = self.path();
        if path.is_empty() {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    }

    /// Kind and secrecy of a field of the current section, by relative path
    /// (`min_connections`, `web.bind_address`, `default_backoff_seconds[2]`). Unknown paths
    /// are treated as secret, so a mistake here can only over-redact.
    fn field_kind(&self, path: &str) -> (FieldKind, Secrecy) {
        const UNKNOWN: (FieldKind, Secrecy) = (FieldKind::Leaf, Secrecy::Secret);
        let Some(mut meta) = self.frames.last().and_then(Frame::meta) else {
            return UNKNOWN;
        };
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            let (name, indexed) = match segment.split_once('[') {
                Some((name, _)) => (name, true),
                None => (segment, false),
            };
            let Some(field) = meta.field(name) else {
                return UNKNOWN;
            };
            let mut kind = (field.kind)();
            if indexed {
                let FieldKind::List(element) = kind else {
                    return UNKNOWN;
                };
                kind = element();
            }
            if segments.peek().is_none() {
                return (kind, field.secrecy);
            }
            let FieldKind::Section(next) = kind else {
                return UNKNOWN;
            };
            meta = next;
        }
        UNKNOWN
    }

    fn path(&self) -> String {
        let mut out = String::new();
        for frame in &self.frames {
            match frame.segment {
                Segment::Key("") => {}
                Segment::Key(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Segment::Index(index) => out.push_str(&format!("[{index}]")),
            }
        }
        out
    }

    fn push(&mut self, key: String, value: Option<String>, kind: ProblemKind) {
        let source = self
            .provenance
            .layer(&key)
            .cloned()
            .unwrap_or(Layer::Default);
        self.problems.push(ConfigProblem {
            source,
            key,
            value,
            kind,
        });
    }

    fn check_rules<T: Serialize + ?Sized>(&mut self, raw: &T, rules: &[Rule]) -> bool {
        if rules.is_empty() {
            return true;
        }
        let Some(value) = raw.to_toml() else {
            return true;
        };
        let before = self.problems.len();
        for rule in rules {
            self.check_rule(*rule, &value, None);
        }
        self.problems.len() == before
    }

    fn check_rule(&mut self, rule: Rule, value: &toml::Value, index: Option<usize>) {
        use toml::Value as V;
        let kind = match (rule, value) {
            (Rule::IntRange(..) | Rule::FloatRange(..), V::Array(items)) if index.is_none() => {
                for (i, item) in items.iter().enumerate() {
                    self.check_rule(rule, item, Some(i));
                }
                return;
            }
            (Rule::IntRange(min, max), V::Integer(n)) if !(min..=max).contains(n) => {
                ProblemKind::OutOfRange {
                    min: min.to_string(),
                    max: max.to_string(),
                }
            }
            (Rule::FloatRange(min, max), V::Float(x)) if !(min..=max).contains(x) => {
                ProblemKind::OutOfRange {
                    min: format!("{min:?}"),
                    max: format!("{max:?}"),
                }
            }
            (Rule::FloatRange(min, max), V::Integer(n)) if !(min..=max).contains(&(*n as f64)) => {
                ProblemKind::OutOfRange {
                    min: format!("{min:?}"),
                    max: format!("{max:?}"),
                }
            }
            (Rule::NonEmpty, V::String(s)) if s.trim().is_empty() => ProblemKind::Empty,
            (Rule::NonEmpty, V::Array(a)) if a.is_empty() => ProblemKind::Empty,
            (Rule::Len(min, max), V::Array(a)) if !(min..=max).contains(&a.len()) => {
                ProblemKind::Length {
                    min,
                    max,
                    found: a.len(),
                }
            }
            (Rule::Identifier(max), V::String(s)) if !is_identifier(s, max) => {
                ProblemKind::InvalidIdentifier { max_len: max }
            }
            _ => return,
        };
        let secrecy = self.frames.last().map_or(Secrecy::Public, |f| f.secrecy);
        let mut key = self.path();
        if let Some(i) = index {
            key.push_str(&format!("[{i}]"));
        }
        self.push(key, Some(render_toml(value, secrecy)), kind);
    }
}

fn is_identifier(s: &str, max: usize) -> bool {
    s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Renders a TOML value, redacting every string in it according to `secrecy`.
pub(crate) fn render_toml(value: &toml::Value, secrecy: Secrecy) -> String {
    redact_toml(value, secrecy).to_string()
}

/// A copy of `value` redacted field by field according to the schema: `kind` says whether it
/// is a section (each key redacted by its own field's secrecy; keys the schema does not know
/// are masked), a list or a leaf with the given `secrecy`.
pub(crate) fn redact(value: &toml::Value, kind: FieldKind, secrecy: Secrecy) -> toml::Value {
    match (kind, value) {
        (FieldKind::Section(meta), toml::Value::Table(table)) => toml::Value::Table(
            table
                .iter()
                .map(|(key, v)| {
                    let redacted = match meta.field(key) {
                        Some(field) => redact(v, (field.kind)(), field.secrecy),
                        None => redact_toml(v, Secrecy::Secret),
                    };
                    (key.clone(), redacted)
                })
                .collect(),
        ),
        (FieldKind::List(element), toml::Value::Array(items)) => toml::Value::Array(
            items
                .iter()
                .map(|i| redact(i, element(), secrecy))
                .collect(),
        ),
        _ => redact_toml(value, secrecy),
    }
}

/// A copy of `value` with every string redacted according to `secrecy`.
pub(crate) fn redact_toml(value: &toml::Value, secrecy: Secrecy) -> toml::Value {
    match (value, secrecy) {
        (_, Secrecy::Public) => value.clone(),
        (toml::Value::String(s), Secrecy::Url) => toml::Value::String(redact_url_text(s)),
        (toml::Value::String(s), Secrecy::Secret) => toml::Value::String(if s.is_empty() {
            String::new()
        } else {
            MASK.to_owned()
        }),
        (toml::Value::Array(items), _) => {
            toml::Value::Array(items.iter().map(|i| redact_toml(i, secrecy)).collect())
        }
        (toml::Value::Table(table), _) => toml::Value::Table(
            table
                .iter()
                .map(|(k, v)| (k.clone(), redact_toml(v, secrecy)))
                .collect(),
        ),
        _ => value.clone(),
    }
}
