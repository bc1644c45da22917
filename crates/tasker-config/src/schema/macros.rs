//! `section!` and `config_enum!`: one declaration per section yields the validated struct, its
//! raw serde twin, the compiled defaults, the validation code and the metadata table.
//!
//! A section is written once:
//!
//! ```text
//! section! {
//!     /// Connection pool settings.
//!     pub struct PoolConfig => RawPoolConfig {
//!         /// Maximum number of connections.
//!         max_connections: u32 = 25, range(1, 1000);
//!     }
//!     cross(raw, v) { v.le("min_connections", &raw.min_connections, "max_connections", &raw.max_connections); }
//! }
//! ```
//!
//! Each field has a type implementing `Setting`, a default written in the raw form (converted
//! with `lit`, so `"text"` and `[1, 2]` work), and any number of declarative rules. The
//! optional `cross` block receives the raw section and the validator and checks rules that
//! span fields. Doc comments become the struct docs *and* the generated reference
//! (`docs::configuration_markdown`), so the two cannot drift.

macro_rules! section {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident => $raw:ident {
            $(
                $(#[doc = $fdoc:literal])*
                $field:ident : $ty:ty = $default:expr $(, $rule:expr)* ;
            )*
        }
        $(cross($r:ident, $v:ident) $body:block)?
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[doc = $fdoc])*
                pub $field: $ty,
            )*
        }

        #[doc = concat!("Raw form of [`", stringify!($name), "`]: the TOML table as written, before validation.")]
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub(crate) struct $raw {
            $(
                pub(crate) $field: <$ty as $crate::schema::Setting>::Raw,
            )*
        }

        impl ::std::default::Default for $raw {
            fn default() -> Self {
                Self {
                    $( $field: $crate::schema::lit($default), )*
                }
            }
        }

        impl $name {
            /// The metadata table of this section.
            pub(crate) fn meta() -> &'static $crate::schema::SectionMeta {
                static META: $crate::schema::SectionMeta = $crate::schema::SectionMeta {
                    name: stringify!($name),
                    doc: &[$($sdoc),*],
                    fields: &[
                        $(
                            $crate::schema::FieldMeta {
                                key: stringify!($field),
                                doc: &[$($fdoc),*],
                                rules: &[$($rule),*],
                                type_name: <$ty as $crate::schema::Setting>::type_name,
                                constraint: <$ty as $crate::schema::Setting>::constraint,
                                kind: <$ty as $crate::schema::Setting>::kind,
                                shape: <$ty as $crate::schema::Setting>::SHAPE,
                                secrecy: <$ty as $crate::schema::Setting>::SECRECY,
                                decode: $crate::schema::decode_check::<$ty>,
                            },
                        )*
                    ],
                };
                &META
            }
        }

        impl $crate::schema::Setting for $name {
            type Raw = $raw;
            const SHAPE: $crate::schema::Shape = $crate::schema::Shape::Table;

            fn type_name() -> String {
                "table".to_owned()
            }

            fn kind() -> $crate::schema::FieldKind {
                $crate::schema::FieldKind::Section(Self::meta())
            }

            fn validate<'r>(
                raw: &'r $raw,
                v: &mut $crate::validate::Validator<'r>,
            ) -> Option<Self> {
                $(
                    let $field = v.field::<$ty>(stringify!($field), &raw.$field, &[$($rule),*]);
                )*
                $(
                    {
                        let $r: &'r $raw = raw;
                        let $v: &mut $crate::validate::Validator<'r> = &mut *v;
                        $body
                    }
                )?
                Some(Self {
                    $( $field: $field?, )*
                })
            }
        }
    };
}

macro_rules! config_enum {
    (
        $(#[doc = $edoc:literal])*
        pub enum $name:ident {
            $(
                $(#[doc = $vdoc:literal])*
                $variant:ident = $text:literal $(| $alias:literal)*
            ),* $(,)?
        }
    ) => {
        $(#[doc = $edoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[doc = $vdoc])*
                $variant,
            )*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The canonical spelling of every variant, as written in TOML.
            pub const NAMES: &'static [&'static str] = &[$($text),*];

            /// The canonical spelling of this variant, as written in TOML.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )*
                }
            }

            /// Parses the canonical spelling or an accepted legacy alias.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $text $(| $alias)* => Some(Self::$variant), )*
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::schema::Lit<String> for $name {
            fn lit(self) -> String {
                self.as_str().to_owned()
            }
        }

        impl $crate::schema::Setting for $name {
            type Raw = String;
            const SHAPE: $crate::schema::Shape = $crate::schema::Shape::String;

            fn type_name() -> String {
                "string".to_owned()
            }

            fn constraint() -> Option<String> {
                let names: Vec<String> = Self::NAMES.iter().map(|n| format!("`{n}`")).collect();
                let aliases: &[&str] = &[$($($alias,)*)*];
                let mut out = format!("one of {}", names.join(", "));
                if !aliases.is_empty() {
                    let aliases: Vec<String> = aliases.iter().map(|n| format!("`{n}`")).collect();
                    out.push_str(&format!(" (legacy spellings {} accepted)", aliases.join(", ")));
                }
                Some(out)
            }

            fn validate<'r>(
                raw: &'r String,
                v: &mut $crate::validate::Validator<'r>,
            ) -> Option<Self> {
                let parsed = Self::from_name(raw);
                if parsed.is_none() {
                    v.reject($crate::problem::ProblemKind::UnknownVariant {
                        allowed: Self::NAMES,
                        suggestion: $crate::schema::suggest_name(raw, Self::NAMES),
                    });
                }
                parsed
            }
        }
    };
}

pub(crate) use {config_enum, section};
