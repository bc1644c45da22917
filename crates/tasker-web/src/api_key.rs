//! API keys: kept as SHA-256 hashes, compared in constant time, each with its own grants.
//!
//! Several keys may be valid at once, so a key is rotated by adding the new one, moving the
//! clients, then removing the old one. The plaintext is dropped once hashed. The hash is not
//! salted: keys must be long random strings (at least [`MIN_KEY_LEN`] characters, checked),
//! for which a salt adds nothing.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::permission::{Grants, UnknownGrant};
use crate::principal::{AuthMethod, Principal};

/// The shortest API key accepted in the configuration.
pub const MIN_KEY_LEN: usize = 16;

/// One configured API key (the composition root maps `*.web.auth.api_keys[]` onto it).
#[derive(Clone)]
pub struct ApiKeyEntry {
    /// The key. Never logged: `Debug` shows only its length.
    pub key: String,
    /// The grants, as configured (`tasks:read`, `templates:*`).
    pub permissions: Vec<String>,
    /// Who or what holds the key; it becomes the principal's subject.
    pub description: String,
}

impl std::fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("key", &format_args!("<redacted, {} chars>", self.key.len()))
            .field("permissions", &self.permissions)
            .field("description", &self.description)
            .finish()
    }
}

/// Why the API keys could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyConfigError {
    /// A key is shorter than [`MIN_KEY_LEN`].
    #[error(
        "API key #{index} ({description:?}) is {len} characters long; keys must have at least {MIN_KEY_LEN} (hint: generate one with `openssl rand -hex 32`)"
    )]
    TooShort {
        /// Its position in the list, from 0.
        index: usize,
        /// Its description.
        description: String,
        /// Its length.
        len: usize,
    },
    /// Two entries have the same key.
    #[error("API keys #{first} and #{second} are the same key (hint: each holder needs its own)")]
    Duplicate {
        /// The first entry.
        first: usize,
        /// The second entry.
        second: usize,
    },
    /// A key grants a permission outside the vocabulary.
    #[error("API key #{index} ({description:?}): {source}")]
    UnknownPermission {
        /// Its position in the list, from 0.
        index: usize,
        /// Its description.
        description: String,
        /// The grant.
        #[source]
        source: UnknownGrant,
    },
}

struct StoredKey {
    hash: [u8; 32],
    grants: Grants,
    description: String,
}

/// The configured API keys.
pub struct ApiKeys {
    keys: Vec<StoredKey>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|key| key.description.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ApiKeys {
    /// Hashes the keys and parses their grants. Every grant must be in the vocabulary: a key is
    /// configuration, so a typo is an error at startup, not a silently smaller key.
    pub fn new(entries: Vec<ApiKeyEntry>) -> Result<Self, ApiKeyConfigError> {
        let mut keys: Vec<StoredKey> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            if entry.key.chars().count() < MIN_KEY_LEN {
                return Err(ApiKeyConfigError::TooShort {
                    index,
                    description: entry.description,
                    len: entry.key.chars().count(),
                });
            }
            let hash = hash(&entry.key);
            if let Some(first) = keys.iter().position(|key| key.hash == hash) {
                return Err(ApiKeyConfigError::Duplicate {
                    first,
                    second: index,
                });
            }
            let (grants, unknown) = Grants::parse(entry.permissions.iter().map(String::as_str));
            if let Some(source) = unknown.into_iter().next() {
                return Err(ApiKeyConfigError::UnknownPermission {
                    index,
                    description: entry.description,
                    source,
                });
            }
            keys.push(StoredKey {
                hash,
                grants,
                description: entry.description,
            });
        }
        Ok(Self { keys })
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The principal of `presented`, if it is one of the keys. Every stored hash is compared,
    /// in constant time, whatever matches, so the time taken says nothing about the keys.
    pub fn verify(&self, presented: &str) -> Option<Principal> {
        let presented = hash(presented);
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.hash.ct_eq(&presented)) {
                found = Some(key);
            }
        }
        found.map(|key| Principal {
            subject: key.description.clone(),
            method: AuthMethod::ApiKey {
                description: key.description.clone(),
            },
            grants: key.grants.clone(),
            expires_at: None,
        })
    }
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permission::Permission;

    fn entry(key: &str, permissions: &[&str], description: &str) -> ApiKeyEntry {
        ApiKeyEntry {
            key: key.to_owned(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            description: description.to_owned(),
        }
    }

    const OLD: &str = "0123456789abcdef0123456789abcdef";
    const NEW: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn two_keys_are_valid_at_once_each_with_its_grants() {
        let keys = ApiKeys::new(vec![
            entry(OLD, &["tasks:read"], "old"),
            entry(NEW, &["tasks:*"], "new"),
        ])
        .unwrap();
        let old = keys.verify(OLD).unwrap();
        assert_eq!(old.subject, "old");
        assert!(old.allows(Permission::TasksRead));
        assert!(!old.allows(Permission::TasksCreate));
        let new = keys.verify(NEW).unwrap();
        assert!(new.allows(Permission::TasksCreate));
    }

    #[test]
    fn a_key_differing_in_any_byte_or_length_is_refused() {
        let keys = ApiKeys::new(vec![entry(OLD, &["tasks:read"], "old")]).unwrap();
        let mut last = OLD.to_owned();
        last.pop();
        last.push('0');
        for presented in [
            last.as_str(),
            &OLD[..OLD.len() - 1],
            &format!("{OLD}0"),
            "",
            &OLD.to_uppercase(),
        ] {
            assert!(keys.verify(presented).is_none(), "{presented:?}");
        }
    }

    #[test]
    fn configuration_problems_are_specific() {
        let cases = [
            (
                vec![entry("short", &[], "ci")],
                "API key #0 (\"ci\") is 5 characters long; keys must have at least 16 (hint: generate one with `openssl rand -hex 32`)",
            ),
            (
                vec![entry(OLD, &[], "a"), entry(OLD, &[], "b")],
                "API keys #0 and #1 are the same key (hint: each holder needs its own)",
            ),
            (
                vec![entry(OLD, &["*"], "legacy")],
                "API key #0 (\"legacy\"): unknown permission \"*\": not of the form `resource:action` or `resource:*`",
            ),
        ];
        for (entries, message) in cases {
            assert_eq!(ApiKeys::new(entries).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn debug_never_shows_a_key() {
        let shown = format!("{:?}", entry(OLD, &[], "ci"));
        assert!(!shown.contains(OLD), "{shown}");
        let keys = ApiKeys::new(vec![entry(OLD, &[], "ci")]).unwrap();
        assert!(!format!("{keys:?}").contains(OLD));
    }
}
