//! The `Setting` trait and the static metadata every configuration key carries.
//!
//! Each field of a configuration section has a type implementing [`Setting`]. The trait ties
//! the validated type (`BindAddress`, `DatabaseUrl`, `u32`, a nested section ...) to its raw
//! TOML form, says how environment-variable text becomes that raw form ([`Shape`]), whether
//! the value is secret ([`Secrecy`]), and how the raw value is validated. The section macro
//! records one [`FieldMeta`] per field, so docs, unknown-key detection, type checks,
//! redaction and provenance all read the same table that the struct definitions produce.

use serde::{Deserialize as _, Serialize, de::DeserializeOwned};

use crate::validate::Validator;

/// A type that can appear as the value of a configuration key.
pub(crate) trait Setting: Sized {
    /// The form the value has in TOML (what serde reads in the raw stage).
    type Raw: Serialize + DeserializeOwned + Clone + Default + PartialEq + std::fmt::Debug;

    /// How environment-variable text is turned into a TOML value for this key.
    const SHAPE: Shape;

    /// Whether the value (or part of it) must be redacted when displayed.
    const SECRECY: Secrecy = Secrecy::Public;

    /// The type as shown in the generated documentation.
    fn type_name() -> String;

    /// Constraints implied by the type itself (allowed enum values, URL schemes ...).
    fn constraint() -> Option<String> {
        None
    }

    /// Whether this is a leaf value, a nested section or a list.
    fn kind() -> FieldKind {
        FieldKind::Leaf
    }

    /// Validates the raw value; problems are reported to `v` at its current key.
    fn validate<'r>(raw: &'r Self::Raw, v: &mut Validator<'r>) -> Option<Self>;
}

/// The TOML shape of a key, used to type environment-variable overrides.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    Integer,
    Float,
    Bool,
    String,
    /// A list whose elements have the given shape.
    List(fn() -> Shape),
    /// A table (a section, or an element of a list of sections).
    Table,
}

/// How much of a value may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secrecy {
    /// Shown as is.
    Public,
    /// A URL: the password and credential-like query parameters are masked.
    Url,
    /// Never shown: rendered as `<redacted>` (or `""` when empty).
    Secret,
}

/// What a field holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldKind {
    Leaf,
    Section(&'static SectionMeta),
    /// A list whose elements are of the given kind.
    List(fn() -> FieldKind),
}

/// Metadata of one section (a TOML table with a fixed set of keys).
#[derive(Debug)]
pub(crate) struct SectionMeta {
    /// The Rust type name of the validated section.
    pub(crate) name: &'static str,
    /// The doc comment of the section type, one string per line.
    pub(crate) doc: &'static [&'static str],
    pub(crate) fields: &'static [FieldMeta],
}

impl SectionMeta {
    pub(crate) fn field(&self, key: &str) -> Option<&'static FieldMeta> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// The closest known key to `unknown`, if any is close enough to be a plausible typo.
    pub(crate) fn suggest(&self, unknown: &str) -> Option<&'static str> {
        let keys: Vec<&'static str> = self.fields.iter().map(|f| f.key).collect();
        super::suggest_name(unknown, &keys)
    }
}

/// Metadata of one key.
#[derive(Debug)]
pub(crate) struct FieldMeta {
    pub(crate) key: &'static str,
    /// The field's doc comment, one string per line.
    pub(crate) doc: &'static [&'static str],
    pub(crate) rules: &'static [Rule],
    pub(crate) type_name: fn() -> String,
    pub(crate) constraint: fn() -> Option<String>,
    pub(crate) kind: fn() -> FieldKind,
    pub(crate) shape: Shape,
    pub(crate) secrecy: Secrecy,
    /// Checks that a TOML value decodes as the field's raw type.
    pub(crate) decode: fn(&toml::Value) -> Result<(), toml::de::Error>,
}

impl FieldMeta {
    /// The doc comment joined into one paragraph.
    pub(crate) fn description(&self) -> String {
        self.doc
            .iter()
            .map(|line| line.trim())
            .collect::<Vec<_>>()
            .join(" ")
            .trim()
            .to_owned()
    }
}

/// Checks that `value` decodes as `T::Raw`.
pub(crate) fn decode_check<T: Setting>(value: &toml::Value) -> Result<(), toml::de::Error> {
    T::Raw::deserialize(value.clone()).map(drop)
}

/// A declarative validation rule attached to a field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rule {
    /// An integer (or each integer of a list) within `min..=max`.
    IntRange(i64, i64),
    /// A float (or each float of a list) within `min..=max`.
    FloatRange(f64, f64),
    /// A string or list that is not empty.
    NonEmpty,
    /// A list with between `min` and `max` entries.
    Len(usize, usize),
    /// A lowercase identifier usable as a queue or channel name, at most `max` bytes.
    Identifier(usize),
}

/// An integer range rule, `min..=max`.
pub(crate) const fn range(min: i64, max: i64) -> Rule {
    Rule::IntRange(min, max)
}

/// A float range rule, `min..=max`.
pub(crate) const fn frange(min: f64, max: f64) -> Rule {
    Rule::FloatRange(min, max)
}

/// The value is not empty.
pub(crate) const NON_EMPTY: Rule = Rule::NonEmpty;

/// A list with `min..=max` entries.
pub(crate) const fn len(min: usize, max: usize) -> Rule {
    Rule::Len(min, max)
}

/// A lowercase identifier of at most `max` bytes.
pub(crate) const fn identifier(max: usize) -> Rule {
    Rule::Identifier(max)
}

impl Rule {
    /// The rule as shown in the "range" column of the docs.
    pub(crate) fn describe(&self) -> String {
        match *self {
            Rule::IntRange(min, max) => format!("{min}..={max}"),
            Rule::FloatRange(min, max) => format!("{min:?}..={max:?}"),
            Rule::NonEmpty => "non-empty".to_owned(),
            Rule::Len(min, max) => format!("{min}..={max} entries"),
            Rule::Identifier(max) => format!("identifier `[a-z][a-z0-9_]*`, at most {max} bytes"),
        }
    }
}

/// Converts a default written in the section macro into the raw type.
///
/// Lets a default be written as `"text"` for a `String` raw value, `[1, 2]` for a list, or as
/// the raw value itself.
pub(crate) trait Lit<R> {
    fn lit(self) -> R;
}

impl<T> Lit<T> for T {
    fn lit(self) -> T {
        self
    }
}

impl Lit<String> for &str {
    fn lit(self) -> String {
        self.to_owned()
    }
}

impl<const N: usize> Lit<Vec<String>> for [&str; N] {
    fn lit(self) -> Vec<String> {
        self.iter().map(|s| (*s).to_owned()).collect()
    }
}

impl<T, const N: usize> Lit<Vec<T>> for [T; N] {
    fn lit(self) -> Vec<T> {
        self.into()
    }
}

/// See [`Lit`].
pub(crate) fn lit<R, T: Lit<R>>(value: T) -> R {
    value.lit()
}
