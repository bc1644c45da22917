//! The no-op backend: every get misses, every write succeeds and is forgotten.
//!
//! It stands in when caching is off (`enabled = false` or `backend = "noop"`), so callers never
//! branch on whether there is a cache.

use std::time::Duration;

use async_trait::async_trait;

use crate::backend::CacheBackend;
use crate::config::BackendKind;
use crate::error::CacheError;
use crate::namespace::Namespace;

/// A cache that holds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopBackend;

#[async_trait]
impl CacheBackend for NoopBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Noop
    }

    async fn get(&self, _: &Namespace, _: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(None)
    }

    async fn set(&self, _: &Namespace, _: &str, _: &[u8], _: Duration) -> Result<(), CacheError> {
        Ok(())
    }

    async fn delete(&self, _: &Namespace, _: &str) -> Result<(), CacheError> {
        Ok(())
    }

    async fn invalidate_namespace(&self, _: &Namespace) -> Result<(), CacheError> {
        Ok(())
    }

    async fn health(&self) -> Result<(), CacheError> {
        Ok(())
    }
}
