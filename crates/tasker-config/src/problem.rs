//! One configuration problem: where it came from, which key, the (redacted) value, the rule
//! it breaks and a hint.

use std::fmt;

use crate::{provenance::Layer, types::UrlError};

/// A problem found while loading the configuration.
///
/// Loading reports every problem at once (see [`crate::ConfigError::Invalid`]); in lenient
/// mode, unknown and misplaced keys are returned as warnings instead.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    /// The file or environment variable that supplied the value.
    pub source: Layer,
    /// The dotted key, e.g. `common.database.pool.max_connections`.
    pub key: String,
    /// The offending value as TOML, with secrets redacted; `None` when there is no value
    /// (a missing file, an unknown table).
    pub value: Option<String>,
    /// The rule that was broken.
    pub kind: ProblemKind,
}

impl ConfigProblem {
    /// A suggestion for fixing the problem.
    pub fn hint(&self) -> Option<String> {
        self.kind.hint()
    }

    /// Whether lenient mode turns this problem into a warning.
    pub fn is_lenient(&self) -> bool {
        matches!(
            self.kind,
            ProblemKind::UnknownKey { .. }
                | ProblemKind::UnknownFile { .. }
                | ProblemKind::MisplacedKey { .. }
        )
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        if let Some(value) = &self.value {
            write!(f, " = {value}")?;
        }
        write!(f, ": {}", self.kind)?;
        if let Some(hint) = self.hint() {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// The rule a [`ConfigProblem`] breaks.
#[derive(Debug, Clone, PartialEq)]
pub enum ProblemKind {
    /// The key is not part of the schema.
    UnknownKey {
        /// The closest known key at the same level (full dotted path).
        suggestion: Option<String>,
    },
    /// A file in the config root that no section reads.
    UnknownFile {
        /// The file names that are read.
        expected: Vec<String>,
    },
    /// A key defined in the file of another section (`worker.*` in `common.toml`).
    MisplacedKey {
        /// The section the file is for.
        file_section: String,
    },
    /// The value has the wrong TOML type.
    WrongType {
        /// The type the schema expects.
        expected: String,
        /// The TOML type found.
        found: &'static str,
        /// The decoder's explanation, for composite values (omitted for secrets).
        detail: Option<String>,
    },
    /// A number outside its allowed range.
    OutOfRange {
        /// Smallest allowed value.
        min: String,
        /// Largest allowed value.
        max: String,
    },
    /// A string or list that must not be empty.
    Empty,
    /// A list with too few or too many entries.
    Length {
        /// Fewest entries allowed.
        min: usize,
        /// Most entries allowed.
        max: usize,
        /// Entries found.
        found: usize,
    },
    /// Not a valid identifier (queue or channel name).
    InvalidIdentifier {
        /// Longest allowed name in bytes.
        max_len: usize,
    },
    /// A string that is not one of the allowed values.
    UnknownVariant {
        /// The allowed values.
        allowed: &'static [&'static str],
        /// The closest allowed value.
        suggestion: Option<&'static str>,
    },
    /// A malformed URL, or one with a scheme that is not allowed here.
    InvalidUrl(UrlError),
    /// A bind address that is not `ip:port`.
    InvalidBindAddress,
    /// A rule relating this key to another one.
    Relation {
        /// The relation this value must have to the other one, e.g. `<=`.
        relation: Relation,
        /// The other key (full dotted path).
        other_key: String,
        /// The other key's value.
        other_value: String,
    },
    /// A value required by another setting.
    Required {
        /// The condition that makes it required, e.g. "`web.auth.enabled` is true".
        when: String,
    },
    /// A `${VAR}` placeholder names an unset variable and has no default.
    UnsetVariable {
        /// The variable.
        variable: String,
    },
    /// A malformed `${...}` placeholder.
    MalformedPlaceholder {
        /// What is wrong with it.
        reason: String,
    },
    /// A required section has no source: its base file (or table) is missing.
    MissingSection {
        /// The section, e.g. `orchestration`.
        section: String,
    },
}

/// How a value must relate to another key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// At most the other value.
    AtMost,
    /// Strictly less than the other value.
    LessThan,
    /// Different from the other value.
    DifferentFrom,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::UnknownKey { .. } => f.write_str("unknown key"),
            ProblemKind::UnknownFile { expected } => {
                write!(
                    f,
                    "unknown configuration file; expected one of {}",
                    expected.join(", ")
                )
            }
            ProblemKind::MisplacedKey { file_section } => write!(
                f,
                "the file for section `{file_section}` may only define keys under `{file_section}`"
            ),
            ProblemKind::WrongType {
                expected,
                found,
                detail,
            } => {
                write!(f, "expected {expected}, found {found}")?;
                if let Some(detail) = detail {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            ProblemKind::OutOfRange { min, max } => {
                write!(f, "must be between {min} and {max} inclusive")
            }
            ProblemKind::Empty => f.write_str("must not be empty"),
            ProblemKind::Length { min, max, found } => {
                write!(f, "must have between {min} and {max} entries, has {found}")
            }
            ProblemKind::InvalidIdentifier { max_len } => write!(
                f,
                "must start with a lowercase letter, contain only lowercase letters, digits and \
                 underscores, and be at most {max_len} bytes long"
            ),
            ProblemKind::UnknownVariant { allowed, .. } => {
                let allowed: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
                write!(f, "must be one of {}", allowed.join(", "))
            }
            ProblemKind::InvalidUrl(err) => write!(f, "invalid URL: {err}"),
            ProblemKind::InvalidBindAddress => f.write_str("must be a socket address `ip:port`"),
            ProblemKind::Relation {
                relation,
                other_key,
                other_value,
            } => {
                let relation = match relation {
                    Relation::AtMost => "at most",
                    Relation::LessThan => "less than",
                    Relation::DifferentFrom => "different from",
                };
                write!(f, "must be {relation} `{other_key}` ({other_value})")
            }
            ProblemKind::Required { when } => write!(f, "must be set when {when}"),
            ProblemKind::UnsetVariable { variable } => write!(
                f,
                "placeholder `${{{variable}}}` names an unset environment variable and has no default"
            ),
            ProblemKind::MalformedPlaceholder { reason } => {
                write!(f, "malformed placeholder: {reason}")
            }
            ProblemKind::MissingSection { section } => {
                write!(
                    f,
                    "section `{section}` is required by this service but has no source"
                )
            }
        }
    }
}

impl ProblemKind {
    fn hint(&self) -> Option<String> {
        match self {
            ProblemKind::UnknownKey {
                suggestion: Some(s),
            } => Some(format!("did you mean `{s}`?")),
            ProblemKind::UnknownKey { suggestion: None } => Some(
                "remove it, or check `docs/configuration.md` for the supported keys".to_owned(),
            ),
            ProblemKind::UnknownFile { .. } => {
                Some("rename or remove the file; only section files are read".to_owned())
            }
            ProblemKind::MisplacedKey { .. } => {
                Some("move the key into the file named after its section".to_owned())
            }
            ProblemKind::UnknownVariant {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean `{s}`?")),
            ProblemKind::InvalidUrl(UrlError::Scheme { allowed, .. }) => Some(format!(
                "use one of the schemes {}",
                allowed
                    .iter()
                    .map(|s| format!("`{s}://`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            ProblemKind::InvalidBindAddress => {
                Some("use an IP literal and port, e.g. `0.0.0.0:8080` or `[::]:8080`".to_owned())
            }
            ProblemKind::UnsetVariable { variable } => Some(format!(
                "set {variable}, or give the placeholder a default: `${{{variable}:-default}}`"
            )),
            ProblemKind::MalformedPlaceholder { .. } => Some(
                "write `${NAME}` or `${NAME:-default}`; write `$${` for a literal `${`".to_owned(),
            ),
            ProblemKind::MissingSection { section } => Some(format!(
                "add `base/{section}.toml` to the config root (or a `[{section}]` table to the \
                 pre-merged file)"
            )),
            _ => None,
        }
    }
}
