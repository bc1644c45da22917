//! Validated names: namespaces, task (template) names, step names and template versions.
//!
//! Names follow identifier rules: ASCII, starting with a letter (or `_`), followed by letters,
//! digits or `_`. Names are used as parts of queue names, routing keys
//! (`namespace/name:version`), metric labels and handler lookups, so anything else (spaces,
//! `-`, `.`, `/`, `:`) is rejected rather than escaped. The length limits match the columns
//! that store the names and, for namespaces, the PGMQ queue-name limit.
//!
//! Task and step names use [`Alphabet::Identifier`]. A namespace uses [`Alphabet::Lowercase`]
//! (a lowercase letter first, then lowercase letters, digits and `_`), because it becomes part
//! of queue names and pgmq lowercases the table names a queue name becomes: `Orders` and
//! `orders` would share a table there. [`NamespaceName`] is the one implementation of the
//! namespace rule: tasker-messaging's queue namespaces are this type, and the database's
//! `task_namespaces_name_format` check spells the same rule in SQL (a test holds all three
//! to one table of names).

use std::fmt;
use std::str::FromStr;

/// Longest namespace name. PGMQ limits queue names to 47 characters and a namespace becomes
/// part of `worker_<namespace>_queue` and `<namespace>_domain_events_dlq` (18 extra characters).
pub const NAMESPACE_NAME_MAX_LEN: usize = 29;
/// Longest task template name (the `named_tasks.name` column).
pub const TASK_NAME_MAX_LEN: usize = 64;
/// Longest step name (the `named_steps.name` column). Batch workers are instantiated as
/// `<step>_001`, `<step>_002`, ..., so worker templates should leave room for the suffix.
pub const STEP_NAME_MAX_LEN: usize = 128;
/// Longest template version string (the `named_tasks.version` column).
pub const VERSION_MAX_LEN: usize = 32;

/// The characters a kind of name may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alphabet {
    /// ASCII letters, digits and `_`, starting with a letter or `_` (task and step names,
    /// handler methods).
    Identifier,
    /// Lowercase ASCII letters, digits and `_`, starting with a lowercase letter (namespaces
    /// and queue names).
    Lowercase,
}

impl Alphabet {
    /// Whether a name may start with `byte`.
    fn starts(self, byte: u8) -> bool {
        match self {
            Alphabet::Identifier => byte.is_ascii_alphabetic() || byte == b'_',
            Alphabet::Lowercase => byte.is_ascii_lowercase(),
        }
    }

    /// Whether `byte` may follow the first character.
    fn continues(self, byte: u8) -> bool {
        match self {
            Alphabet::Identifier => byte.is_ascii_alphanumeric() || byte == b'_',
            Alphabet::Lowercase => {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_'
            }
        }
    }

    /// What a name must start with, for messages.
    #[must_use]
    pub fn first_character(self) -> &'static str {
        match self {
            Alphabet::Identifier => "an ASCII letter or '_'",
            Alphabet::Lowercase => "a lowercase letter a-z",
        }
    }

    /// The characters a name may contain, for messages.
    #[must_use]
    pub fn characters(self) -> &'static str {
        match self {
            Alphabet::Identifier => "ASCII letters, digits and '_'",
            Alphabet::Lowercase => "lowercase letters a-z, digits and '_'",
        }
    }
}

/// Why a string is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("must not be empty")]
    Empty,
    /// The name is longer than allowed.
    #[error("is {len} characters long; the limit is {max}")]
    TooLong {
        /// Length of the name in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The first character is not one a name may start with.
    #[error("must start with {}, not {found:?}", alphabet.first_character())]
    InvalidStart {
        /// The offending first character.
        found: char,
        /// The alphabet of the name.
        alphabet: Alphabet,
    },
    /// A character outside the name's alphabet.
    #[error(
        "contains {found:?} at position {position}; only {} are allowed",
        alphabet.characters()
    )]
    InvalidChar {
        /// The offending character.
        found: char,
        /// Its zero-based character position.
        position: usize,
        /// The alphabet of the name.
        alphabet: Alphabet,
    },
}

/// Checks a name against `alphabet` and the length limit `max` (in characters).
///
/// # Errors
/// The first rule the name breaks: empty, too long, its first character, then any other
/// character.
pub fn check_name(name: &str, alphabet: Alphabet, max: usize) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    // The common case, checked byte by byte: ASCII, short enough, only allowed bytes.
    if bytes.len() <= max
        && bytes.first().is_some_and(|&first| alphabet.starts(first))
        && bytes[1..].iter().all(|&byte| alphabet.continues(byte))
    {
        return Ok(());
    }
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(NameError::Empty);
    };
    let len = if name.is_ascii() {
        name.len()
    } else {
        name.chars().count()
    };
    if len > max {
        return Err(NameError::TooLong { len, max });
    }
    // A non-ASCII character is never allowed; `u8::try_from` fails for it.
    let allowed = |c: char, test: fn(Alphabet, u8) -> bool| {
        u8::try_from(c).is_ok_and(|byte| test(alphabet, byte))
    };
    if !allowed(first, Alphabet::starts) {
        return Err(NameError::InvalidStart {
            found: first,
            alphabet,
        });
    }
    for (offset, found) in chars.enumerate() {
        if !allowed(found, Alphabet::continues) {
            return Err(NameError::InvalidChar {
                found,
                position: offset + 1,
                alphabet,
            });
        }
    }
    Ok(())
}

/// Checks the identifier rule of task and step names ([`Alphabet::Identifier`]) with the
/// length limit `max`.
///
/// # Errors
/// The first rule the name breaks.
pub fn check_identifier(name: &str, max: usize) -> Result<(), NameError> {
    check_name(name, Alphabet::Identifier, max)
}

/// A string that is not a valid name of a given kind.
///
/// The rule the name breaks is part of the message and of the value ([`InvalidName::reason`]),
/// not a [`source`](std::error::Error::source): it is a detail of this error, not a failure
/// underneath it, and a chain printer would otherwise print it twice.
#[derive(Debug, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidName {
    kind: &'static str,
    value: String,
    reason: NameError,
}

impl InvalidName {
    /// The rule the name breaks.
    #[must_use]
    pub fn reason(&self) -> &NameError {
        &self.reason
    }
}

macro_rules! define_name {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $alphabet:expr, $max:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest accepted name.
            pub const MAX_LEN: usize = $max;
            /// The characters the name may use.
            pub const ALPHABET: Alphabet = $alphabet;

            /// Validates and wraps a name.
            ///
            /// # Errors
            /// If the name breaks its alphabet's rule or is too long.
            pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
                let name = name.into();
                match Self::check(&name) {
                    Ok(()) => Ok(Self(name)),
                    Err(reason) => Err(InvalidName { kind: $kind, value: name, reason }),
                }
            }

            /// Checks a name without wrapping it: the rule [`Self::new`] applies.
            ///
            /// # Errors
            /// The first rule the name breaks.
            pub fn check(name: &str) -> Result<(), NameError> {
                check_name(name, Self::ALPHABET, Self::MAX_LEN)
            }

            /// Wraps a name that [`Self::check`] accepted.
            pub(crate) fn from_checked(name: &str) -> Self {
                debug_assert!(Self::check(name).is_ok());
                Self(name.to_owned())
            }

            /// The name as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;

            fn try_from(name: String) -> Result<Self, Self::Error> {
                Self::new(name)
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                Self::new(name)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> Self {
                name.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

define_name!(
    /// A task namespace: a lowercase letter, then lowercase letters, digits and `_`
    /// ([`Alphabet::Lowercase`]), at most [`NAMESPACE_NAME_MAX_LEN`] characters. The one
    /// namespace rule (see the module docs): queue namespaces are this type.
    NamespaceName,
    "namespace name",
    Alphabet::Lowercase,
    NAMESPACE_NAME_MAX_LEN
);
define_name!(
    /// A task template name ([`Alphabet::Identifier`]), at most [`TASK_NAME_MAX_LEN`]
    /// characters.
    TaskName,
    "task name",
    Alphabet::Identifier,
    TASK_NAME_MAX_LEN
);
define_name!(
    /// A step name ([`Alphabet::Identifier`]), at most [`STEP_NAME_MAX_LEN`] characters.
    StepName,
    "step name",
    Alphabet::Identifier,
    STEP_NAME_MAX_LEN
);

/// A template version: a semantic version (`MAJOR.MINOR.PATCH`, optionally with pre-release
/// and build metadata), at most [`VERSION_MAX_LEN`] characters.
///
/// The original text is kept: `1.0.0` and `1.0.0+build` are different registrations.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TemplateVersion {
    text: String,
    parsed: semver::Version,
}

/// Why a string is not a valid template version.
#[derive(Debug, thiserror::Error)]
pub enum InvalidVersion {
    /// Longer than [`VERSION_MAX_LEN`].
    #[error("version {value:?} is {len} characters long; the limit is {VERSION_MAX_LEN}")]
    TooLong {
        /// The rejected text.
        value: String,
        /// Its length in characters.
        len: usize,
    },
    /// Not a semantic version.
    #[error("version {value:?} is not a semantic version (MAJOR.MINOR.PATCH)")]
    NotSemver {
        /// The rejected text.
        value: String,
        /// The parser's complaint.
        #[source]
        source: semver::Error,
    },
}

impl TemplateVersion {
    /// Parses a version.
    ///
    /// # Errors
    /// If the text is too long or not a semantic version.
    pub fn new(text: impl Into<String>) -> Result<Self, InvalidVersion> {
        let text = text.into();
        let len = text.chars().count();
        if len > VERSION_MAX_LEN {
            return Err(InvalidVersion::TooLong { value: text, len });
        }
        match semver::Version::parse(&text) {
            Ok(parsed) => Ok(Self { text, parsed }),
            Err(source) => Err(InvalidVersion::NotSemver {
                value: text,
                source,
            }),
        }
    }

    /// The version as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed semantic version, for ordering and compatibility checks.
    #[must_use]
    pub fn semver(&self) -> &semver::Version {
        &self.parsed
    }
}

impl TryFrom<String> for TemplateVersion {
    type Error = InvalidVersion;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::new(text)
    }
}

impl FromStr for TemplateVersion {
    type Err = InvalidVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text)
    }
}

impl From<TemplateVersion> for String {
    fn from(version: TemplateVersion) -> Self {
        version.text
    }
}

impl fmt::Display for TemplateVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for TemplateVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

#[cfg(test)]
mod tests;
