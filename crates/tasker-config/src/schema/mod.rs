//! The schema machinery: the `Setting` trait, field metadata and the macros that define sections.

mod leaf;
mod macros;
mod setting;

pub(crate) use leaf::{reject, suggest_name};
pub(crate) use macros::{config_enum, section};
pub(crate) use setting::{
    FieldKind, FieldMeta, Lit, NON_EMPTY, Rule, Secrecy, SectionMeta, Setting, Shape, decode_check,
    frange, identifier, len, lit, range,
};
