//! The moka backend: an in-process cache bounded by `max_capacity`, with a TTL per entry.
//!
//! Each entry carries its TTL, and moka's [`Expiry`] applies it when the entry is created and
//! again when it is replaced, so `set` on an existing key restarts the clock with the new TTL.
//! A namespace's generation is a counter in this process: nothing else can see this cache, so
//! nothing else needs to see the counter. Entries of old generations are never read again and
//! leave by their TTL or by eviction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::future::Cache as MokaCache;

use crate::backend::CacheBackend;
use crate::config::{BackendKind, MokaConfig};
use crate::error::CacheError;
use crate::namespace::{Namespace, entry_key};

/// The in-process backend.
#[derive(Debug)]
pub struct MokaBackend {
    prefix: Namespace,
    entries: MokaCache<String, Entry>,
    generations: Mutex<HashMap<Namespace, u64>>,
}

#[derive(Debug, Clone)]
struct Entry {
    value: Arc<[u8]>,
    ttl: Duration,
}

/// Applies each entry's own TTL on insert and on update.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl MokaBackend {
    /// An empty cache with the given bound; `prefix` is kept in keys for symmetry with the
    /// shared backends.
    pub fn new(config: &MokaConfig, prefix: Namespace) -> Self {
        let entries = MokaCache::builder()
            .max_capacity(config.max_capacity)
            .expire_after(PerEntryTtl)
            .build();
        Self {
            prefix,
            entries,
            generations: Mutex::new(HashMap::new()),
        }
    }

    fn generation(&self, namespace: &Namespace) -> u64 {
        let generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        generations.get(namespace).copied().unwrap_or(0)
    }

    fn key(&self, namespace: &Namespace, key: &str) -> String {
        entry_key(&self.prefix, namespace, self.generation(namespace), key)
    }
}

#[async_trait]
impl CacheBackend for MokaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Moka
    }

    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = self.key(namespace, key);
        Ok(self
            .entries
            .get(&key)
            .await
            .map(|entry| entry.value.to_vec()))
    }

    async fn set(
        &self,
        namespace: &Namespace,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let key = self.key(namespace, key);
        let entry = Entry {
            value: Arc::from(value),
            ttl,
        };
        self.entries.insert(key, entry).await;
        Ok(())
    }

    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<(), CacheError> {
        let key = self.key(namespace, key);
        self.entries.invalidate(&key).await;
        Ok(())
    }

    async fn invalidate_namespace(&self, namespace: &Namespace) -> Result<(), CacheError> {
        let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        *generations.entry(namespace.clone()).or_insert(0) += 1;
        Ok(())
    }

    async fn health(&self) -> Result<(), CacheError> {
        Ok(())
    }
}
