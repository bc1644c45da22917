//! `Setting` implementations for plain values: integers, floats, booleans, strings, lists and
//! optional values.

use crate::{
    problem::ProblemKind,
    schema::{FieldKind, Setting, Shape},
    validate::Validator,
};

macro_rules! plain {
    ($($ty:ty => $shape:ident, $name:literal;)*) => {
        $(
            impl Setting for $ty {
                type Raw = $ty;
                const SHAPE: Shape = Shape::$shape;

                fn type_name() -> String {
                    $name.to_owned()
                }

                fn validate<'r>(raw: &'r $ty, _v: &mut Validator<'r>) -> Option<Self> {
                    Some(raw.clone())
                }
            }
        )*
    };
}

plain! {
    u16 => Integer, "integer (u16)";
    u32 => Integer, "integer (u32)";
    u64 => Integer, "integer (u64)";
    f64 => Float, "float";
    bool => Bool, "boolean";
    String => String, "string";
}

fn element_shape<T: Setting>() -> Shape {
    T::SHAPE
}

impl<T: Setting> Setting for Vec<T> {
    type Raw = Vec<T::Raw>;
    const SHAPE: Shape = Shape::List(element_shape::<T>);
    const SECRECY: crate::schema::Secrecy = T::SECRECY;

    fn type_name() -> String {
        format!("array of {}", T::type_name())
    }

    fn constraint() -> Option<String> {
        T::constraint().map(|c| format!("each {c}"))
    }

    fn kind() -> FieldKind {
        FieldKind::List(T::kind)
    }

    fn validate<'r>(raw: &'r Self::Raw, v: &mut Validator<'r>) -> Option<Self> {
        let items: Vec<Option<T>> = raw
            .iter()
            .enumerate()
            .map(|(index, item)| v.element::<T>(index, item))
            .collect();
        items.into_iter().collect()
    }
}

/// An optional value, written as the empty string when absent (TOML has no null).
///
/// Used for settings such as `common.pgmq_database.url`, where "empty" has a documented meaning
/// ("use the main database"), not for whole sections.
impl<T: Setting<Raw = String>> Setting for Option<T> {
    type Raw = String;
    const SHAPE: Shape = Shape::String;
    const SECRECY: crate::schema::Secrecy = T::SECRECY;

    fn type_name() -> String {
        format!("{} (empty = unset)", T::type_name())
    }

    fn constraint() -> Option<String> {
        T::constraint()
    }

    fn validate<'r>(raw: &'r String, v: &mut Validator<'r>) -> Option<Self> {
        if raw.is_empty() {
            Some(None)
        } else {
            T::validate(raw, v).map(Some)
        }
    }
}

/// The closest of `names` to `input`, if close enough to be a plausible typo.
pub(crate) fn suggest_name(input: &str, names: &[&'static str]) -> Option<&'static str> {
    let lowered = input.to_ascii_lowercase();
    names
        .iter()
        .map(|name| {
            (
                *name,
                strsim::jaro_winkler(&lowered, &name.to_ascii_lowercase()),
            )
        })
        .filter(|&(_, score)| score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(name, _)| name)
}

/// Reports a rule violation for the current value, used by types that parse their raw text.
pub(crate) fn reject<T>(v: &mut Validator<'_>, kind: ProblemKind) -> Option<T> {
    v.reject(kind);
    None
}
