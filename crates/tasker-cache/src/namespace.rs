//! Namespaces, and the one spelling of the keys every backend stores.
//!
//! An entry of namespace `ns` lives under `<prefix>:<ns>:<generation>:<key>`; the namespace's
//! current generation lives under `<prefix>:<ns>:gen`. Invalidating a namespace moves it to the
//! next generation, so its old entries are never read again and expire by their TTL: no backend
//! has to enumerate keys (`KEYS`, `SCAN`). Because neither the prefix nor a namespace may
//! contain `:`, and a generation is a number, no entry key can equal a generation key.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest namespace (and key prefix), in bytes.
pub const MAX_NAMESPACE_LEN: usize = 64;

/// A group of entries that is invalidated as a whole, such as `templates`.
///
/// Letters, digits, `_`, `.` and `-`; 1 to [`MAX_NAMESPACE_LEN`] bytes. The same rule holds for
/// the key prefix of [`crate::config::CacheConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    /// Checks the namespace rule.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidNamespace> {
        let name = name.into();
        if name.is_empty() {
            return Err(InvalidNamespace {
                name,
                problem: "it is empty",
            });
        }
        if name.len() > MAX_NAMESPACE_LEN {
            return Err(InvalidNamespace {
                name,
                problem: "it is longer than 64 bytes",
            });
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(InvalidNamespace {
                name,
                problem: "it may hold only letters, digits, '_', '.' and '-'",
            });
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A namespace (or key prefix) that breaks the rule of [`Namespace`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cache namespace {name:?}: {problem}")]
pub struct InvalidNamespace {
    /// The name given.
    pub name: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// The full key of an entry.
pub(crate) fn entry_key(
    prefix: &Namespace,
    namespace: &Namespace,
    generation: u64,
    key: &str,
) -> String {
    format!("{prefix}:{namespace}:{generation}:{key}")
}

/// The key under which a namespace's current generation is stored.
pub(crate) fn generation_key(prefix: &Namespace, namespace: &Namespace) -> String {
    format!("{prefix}:{namespace}:gen")
}

/// The generation a namespace starts at when its generation key is missing: the current time
/// in milliseconds. A generation key that was evicted or lost therefore restarts far above any
/// generation it ever held (one invalidation a millisecond would be needed to catch up), so
/// entries written under the lost generations are never read again.
pub(crate) fn initial_generation() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX / 2)
        })
}
