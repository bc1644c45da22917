//! Event names and the subscription patterns that select them.
//!
//! # Names
//!
//! An event name is lowercase ASCII letters, digits and `_` in segments separated by single
//! dots, with at least two segments and at most [`EVENT_NAME_MAX_LEN`] characters:
//! `task.completed`, `step.enqueue_requested`, `payment.refund.failed`. This is the rule
//! tasker-models applies to a template's `domain_events`. Names whose first segment is `task` or
//! `step` belong to the lifecycle events (tasker-state's rule tables), so a domain event may not
//! use them and `task.*` never selects a domain event.
//!
//! # Pattern grammar
//!
//! ```text
//! pattern := "*"                   every event
//!          | prefix ".*"           every event whose name starts with `prefix.` (any depth)
//!          | name                  exactly this event
//! prefix  := segment ("." segment)*
//! segment := [a-z0-9_]+
//! ```
//!
//! So `task.*` selects every task lifecycle event, `payment.*` both `payment.processed` and
//! `payment.refund.failed`, and `step.failed` only itself. A `*` anywhere else (`*.failed`,
//! `task.*.x`, `task*`) is refused, as is anything that breaks the name rule.

use std::fmt;
use std::str::FromStr;

/// Longest event name, in characters (tasker-models' limit).
pub const EVENT_NAME_MAX_LEN: usize = 255;

/// First segments reserved for lifecycle events.
pub const LIFECYCLE_PREFIXES: [&str; 2] = ["task", "step"];

/// Why a string is not an event name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEventName {
    /// Empty or longer than [`EVENT_NAME_MAX_LEN`].
    #[error("must be 1 to {EVENT_NAME_MAX_LEN} characters long")]
    Length,
    /// A single segment.
    #[error("must have the form namespace.action")]
    NoDot,
    /// A dot at the start or end, or two dots in a row.
    #[error("has an empty segment (a leading, trailing or doubled '.')")]
    EmptySegment,
    /// A character other than `a-z`, `0-9`, `_` and `.`.
    #[error("contains {found:?}; only lowercase letters, digits, '_' and '.' are allowed")]
    InvalidChar {
        /// The offending character.
        found: char,
    },
    /// A domain event name in the `task.` or `step.` namespace.
    #[error("uses the namespace `{prefix}`, which is reserved for lifecycle events")]
    Reserved {
        /// `task` or `step`.
        prefix: &'static str,
    },
}

/// Checks the name rule (not the reservation of `task.` and `step.`).
pub(crate) fn check_name(name: &str) -> Result<(), InvalidEventName> {
    check_segments(name)?;
    if !name.contains('.') {
        return Err(InvalidEventName::NoDot);
    }
    Ok(())
}

/// Checks a domain event name: the name rule, and not in a lifecycle namespace.
pub(crate) fn check_domain_name(name: &str) -> Result<(), InvalidEventName> {
    check_name(name)?;
    let first = name.split('.').next().unwrap_or_default();
    match LIFECYCLE_PREFIXES.iter().find(|prefix| **prefix == first) {
        Some(prefix) => Err(InvalidEventName::Reserved { prefix }),
        None => Ok(()),
    }
}

/// One or more segments: the characters, the length, no empty segment.
fn check_segments(text: &str) -> Result<(), InvalidEventName> {
    if text.is_empty() || text.chars().count() > EVENT_NAME_MAX_LEN {
        return Err(InvalidEventName::Length);
    }
    if let Some(found) = text
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '.'))
    {
        return Err(InvalidEventName::InvalidChar { found });
    }
    if text.split('.').any(str::is_empty) {
        return Err(InvalidEventName::EmptySegment);
    }
    Ok(())
}

/// A parsed subscription pattern (see the module docs for the grammar).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern(Kind);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    All,
    /// Stored with its trailing dot, so matching is one `starts_with`.
    Prefix(String),
    Exact(String),
}

/// Why a string is not a pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPattern {
    /// A `*` that is not the whole pattern or the whole last segment.
    #[error(
        "pattern {pattern:?} has a '*' that is not the whole last segment; write `*` or `prefix.*`"
    )]
    MisplacedWildcard {
        /// The pattern as given.
        pattern: String,
    },
    /// The name or prefix breaks the name rule.
    #[error("pattern {pattern:?} {reason}")]
    Name {
        /// The pattern as given.
        pattern: String,
        /// The rule it breaks.
        reason: InvalidEventName,
    },
}

impl Pattern {
    /// Parses a pattern.
    ///
    /// # Errors
    /// [`InvalidPattern`] naming the pattern and the rule it breaks.
    pub fn parse(pattern: &str) -> Result<Self, InvalidPattern> {
        if pattern == "*" {
            return Ok(Self(Kind::All));
        }
        let (body, prefix) = match pattern.strip_suffix(".*") {
            Some(prefix) => (prefix, true),
            None => (pattern, false),
        };
        if body.contains('*') {
            return Err(InvalidPattern::MisplacedWildcard {
                pattern: pattern.to_owned(),
            });
        }
        let checked = if prefix {
            check_segments(body)
        } else {
            check_name(body)
        };
        checked.map_err(|reason| InvalidPattern::Name {
            pattern: pattern.to_owned(),
            reason,
        })?;
        Ok(Self(if prefix {
            Kind::Prefix(format!("{body}."))
        } else {
            Kind::Exact(body.to_owned())
        }))
    }

    /// Whether the pattern selects the event named `name`.
    pub fn matches(&self, name: &str) -> bool {
        match &self.0 {
            Kind::All => true,
            Kind::Prefix(prefix) => name.starts_with(prefix.as_str()),
            Kind::Exact(exact) => name == exact,
        }
    }
}

impl FromStr for Pattern {
    type Err = InvalidPattern;

    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        Self::parse(pattern)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::All => f.write_str("*"),
            Kind::Prefix(prefix) => write!(f, "{prefix}*"),
            Kind::Exact(exact) => f.write_str(exact),
        }
    }
}
