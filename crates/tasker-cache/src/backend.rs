//! The [`CacheBackend`] trait every backend implements.
//!
//! A backend stores bytes under a namespace and a key with a TTL, and invalidates a namespace
//! by moving it to its next generation (see [`crate::namespace`]). It reports every failure;
//! turning failures into misses is the typed [`crate::Cache`]'s job, so a backend stays honest
//! and testable.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::BackendKind;
use crate::error::CacheError;
use crate::namespace::Namespace;

/// One cache backend: Redis, moka, memcached or no-op.
///
/// Object-safe (through `async_trait`, like tasker-messaging's `MessageQueue`), so the typed
/// cache holds an `Arc<dyn CacheBackend>` chosen at run time.
#[async_trait]
pub trait CacheBackend: fmt::Debug + Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// The entry's bytes, or `None` when it is missing, expired or of an older generation.
    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Stores the entry for `ttl` (at least a second on backends that count whole seconds),
    /// replacing any earlier value and its TTL.
    async fn set(
        &self,
        namespace: &Namespace,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), CacheError>;

    /// Removes the entry; a missing entry is not an error.
    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<(), CacheError>;

    /// Makes every entry of the namespace unreachable, at once and for every process sharing
    /// the backend. The entries themselves expire by their TTL.
    async fn invalidate_namespace(&self, namespace: &Namespace) -> Result<(), CacheError>;

    /// Checks that the backend answers (`PING`, memcached's `mn`).
    async fn health(&self) -> Result<(), CacheError>;
}
