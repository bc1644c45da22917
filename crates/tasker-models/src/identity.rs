//! Task identity for deduplication: the strategy a template uses, idempotency keys and the
//! identity hash stored in `tasks.identity_hash` (unique), which makes a second request for
//! "the same task" fail instead of silently creating a duplicate.
//!
//! # The hash
//!
//! The identity hash is the lowercase hex SHA-256 of
//!
//! ```text
//! "tasker.identity.v1" LF <kind> LF <named task uuid> LF <payload>
//! ```
//!
//! where LF is one `\n` byte, the uuid is the lowercase hyphenated form, and:
//!
//! | kind              | payload                                              | used when |
//! |-------------------|------------------------------------------------------|-----------|
//! | `idempotency_key` | the key's UTF-8 bytes                                | a key is given (whatever the strategy) |
//! | `context`         | the canonical JSON of the context ([`canonical_json`]) | `strict` |
//! | `unique`          | a freshly generated UUID v7                          | `always_unique` |
//!
//! Including the named task uuid keeps equal contexts or keys of different templates apart;
//! the version prefix lets a future scheme coexist with stored hashes. SHA-256 and the
//! canonical form are fully specified, so the hash is stable across Rust versions, platforms
//! and implementations in other languages (golden values in the tests pin it).

mod canonical;

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::ids::NamedTaskId;

pub use canonical::{canonical_json, write_canonical_json};

/// How tasks of a template are deduplicated (`named_tasks.identity_strategy`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStrategy {
    /// Same template and same canonical context means the same task.
    #[default]
    Strict,
    /// The caller decides: every request must carry an idempotency key.
    CallerProvided,
    /// Every request creates a new task (unless it carries an idempotency key).
    AlwaysUnique,
}

impl IdentityStrategy {
    /// Every strategy, in declaration order.
    pub const ALL: [Self; 3] = [Self::Strict, Self::CallerProvided, Self::AlwaysUnique];

    /// The database and wire spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::CallerProvided => "caller_provided",
            Self::AlwaysUnique => "always_unique",
        }
    }
}

impl fmt::Display for IdentityStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not an identity strategy.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown identity strategy {value:?}; expected one of: strict, caller_provided, always_unique"
)]
pub struct UnknownIdentityStrategy {
    value: String,
}

impl FromStr for IdentityStrategy {
    type Err = UnknownIdentityStrategy;

    /// Parses case-insensitively and ignores `_` and `-`, so `STRICT`, `CallerProvided`,
    /// `caller-provided` and `alwaysunique` are all accepted.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let folded: String = text
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match folded.as_str() {
            "strict" => Ok(Self::Strict),
            "callerprovided" => Ok(Self::CallerProvided),
            "alwaysunique" => Ok(Self::AlwaysUnique),
            _ => Err(UnknownIdentityStrategy {
                value: text.to_owned(),
            }),
        }
    }
}

/// Longest accepted idempotency key, in characters.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

/// A caller-chosen key that identifies a task request; it overrides the identity strategy.
///
/// 1 to [`IDEMPOTENCY_KEY_MAX_LEN`] characters, no control characters and no leading or
/// trailing whitespace (keys that differ only in invisible characters would be a trap).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

/// Why a string is not a valid idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidIdempotencyKey {
    /// The key is empty.
    #[error("idempotency key must not be empty")]
    Empty,
    /// The key is too long.
    #[error("idempotency key is {len} characters long; the limit is {IDEMPOTENCY_KEY_MAX_LEN}")]
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// The key contains a control character.
    #[error("idempotency key contains a control character at position {position}")]
    ControlCharacter {
        /// Zero-based character position.
        position: usize,
    },
    /// The key starts or ends with whitespace.
    #[error("idempotency key starts or ends with whitespace")]
    SurroundingWhitespace,
}

impl IdempotencyKey {
    /// Validates and wraps a key.
    ///
    /// # Errors
    /// If the key breaks one of the rules in the type docs.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidIdempotencyKey> {
        let key = key.into();
        if key.is_empty() {
            return Err(InvalidIdempotencyKey::Empty);
        }
        let len = key.chars().count();
        if len > IDEMPOTENCY_KEY_MAX_LEN {
            return Err(InvalidIdempotencyKey::TooLong { len });
        }
        if let Some(position) = key.chars().position(char::is_control) {
            return Err(InvalidIdempotencyKey::ControlCharacter { position });
        }
        if key.trim() != key {
            return Err(InvalidIdempotencyKey::SurroundingWhitespace);
        }
        Ok(Self(key))
    }

    /// The key as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidIdempotencyKey;

    fn try_from(key: String) -> Result<Self, Self::Error> {
        Self::new(key)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> Self {
        key.0
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task identity hash: 64 lowercase hex digits (see the module docs).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdentityHash(String);

/// The text is not an identity hash.
#[derive(Debug, thiserror::Error)]
#[error("invalid identity hash {value:?}: expected 64 lowercase hex digits")]
pub struct InvalidIdentityHash {
    value: String,
}

impl IdentityHash {
    /// The hash as hex text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_digest(hasher: Sha256) -> Self {
        Self(hex::encode(hasher.finalize()))
    }
}

impl FromStr for IdentityHash {
    type Err = InvalidIdentityHash;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidIdentityHash {
                value: text.to_owned(),
            })
        }
    }
}

impl TryFrom<String> for IdentityHash {
    type Error = InvalidIdentityHash;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<IdentityHash> for String {
    fn from(hash: IdentityHash) -> Self {
        hash.0
    }
}

impl fmt::Display for IdentityHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdentityHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityHash({})", self.0)
    }
}

/// The identity of a task could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The template uses `caller_provided` and the request has no idempotency key.
    #[error(
        "an idempotency_key is required: template {named_task} uses the caller_provided identity strategy"
    )]
    IdempotencyKeyRequired {
        /// The template whose strategy demands a key.
        named_task: NamedTaskId,
    },
}

const HASH_VERSION: &[u8] = b"tasker.identity.v1";

fn hasher_for(kind: &str, named_task: NamedTaskId) -> Sha256 {
    let mut hasher = Sha256::new();
    hasher.update(HASH_VERSION);
    hasher.update(b"\n");
    hasher.update(kind.as_bytes());
    hasher.update(b"\n");
    hasher.update(named_task.as_uuid().hyphenated().to_string().as_bytes());
    hasher.update(b"\n");
    hasher
}

/// The strict identity of a context: the hash of the template and the canonical context.
#[must_use]
pub fn context_identity_hash(named_task: NamedTaskId, context: &serde_json::Value) -> IdentityHash {
    let mut hasher = hasher_for("context", named_task);
    hasher.update(canonical_json(context).as_bytes());
    IdentityHash::from_digest(hasher)
}

/// The identity of a request that carries an idempotency key.
#[must_use]
pub fn key_identity_hash(named_task: NamedTaskId, key: &IdempotencyKey) -> IdentityHash {
    let mut hasher = hasher_for("idempotency_key", named_task);
    hasher.update(key.as_str().as_bytes());
    IdentityHash::from_digest(hasher)
}

/// Computes the identity hash of a task request: the single place where strategies apply.
///
/// An idempotency key, when given, wins over every strategy.
///
/// # Errors
/// [`IdentityError::IdempotencyKeyRequired`] for `caller_provided` without a key.
pub fn compute_identity_hash(
    strategy: IdentityStrategy,
    named_task: NamedTaskId,
    context: &serde_json::Value,
    idempotency_key: Option<&IdempotencyKey>,
) -> Result<IdentityHash, IdentityError> {
    if let Some(key) = idempotency_key {
        return Ok(key_identity_hash(named_task, key));
    }
    match strategy {
        IdentityStrategy::Strict => Ok(context_identity_hash(named_task, context)),
        IdentityStrategy::CallerProvided => {
            Err(IdentityError::IdempotencyKeyRequired { named_task })
        }
        IdentityStrategy::AlwaysUnique => {
            let mut hasher = hasher_for("unique", named_task);
            hasher.update(uuid::Uuid::now_v7().hyphenated().to_string().as_bytes());
            Ok(IdentityHash::from_digest(hasher))
        }
    }
}

#[cfg(test)]
mod tests;
