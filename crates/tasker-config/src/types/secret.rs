//! `Secret`: a string (token, private key, API key) that never appears in `Debug` or `Display`.

use std::fmt;

use crate::{
    schema::{Lit, Secrecy, Setting, Shape},
    validate::Validator,
};

/// A secret string: tokens, private keys, API keys.
///
/// `Debug` and `Display` print `<redacted>` (or `<empty>`), so a secret can sit in a config
/// struct that is logged or shown. Read it with [`Secret::expose`] where it is used.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call this only where the value is handed to its consumer.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn placeholder(&self) -> &'static str {
        if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.placeholder())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.placeholder())
    }
}

impl Lit<String> for Secret {
    fn lit(self) -> String {
        self.0
    }
}

impl Setting for Secret {
    type Raw = String;
    const SHAPE: Shape = Shape::String;
    const SECRECY: Secrecy = Secrecy::Secret;

    fn type_name() -> String {
        "string (secret)".to_owned()
    }

    fn validate<'r>(raw: &'r String, _v: &mut Validator<'r>) -> Option<Self> {
        Some(Self(raw.clone()))
    }
}
