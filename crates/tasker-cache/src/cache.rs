//! The typed [`Cache`] handle: values through serde in the versioned encoding, and graceful
//! degradation in front of any [`CacheBackend`].
//!
//! `get`, `set` and `delete` never fail: a backend error or a backend that is down makes a get
//! a miss and drops a write, counted in [`CacheStats`] and logged once per change of state. A
//! stored value that does not decode is a miss and is deleted.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::backend::CacheBackend;
use crate::config::{BackendKind, CacheConfig};
use crate::encoding::{self, DecodeError};
use crate::error::{CacheError, ConnectError};
use crate::namespace::Namespace;
use crate::noop::NoopBackend;
use crate::state::{CacheStats, Circuit, Counters, Health, HealthStatus, chain};
use tasker_resilience::breaker::CircuitBreaker;
use tasker_resilience::permit::{ErrorClass, Permit};

/// A shared, typed cache. Cloning it is cheap; clones share the backend, state and counters.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn CacheBackend>,
    default_ttl: Duration,
    circuit: Circuit,
    counters: Counters,
    /// The `cache` circuit breaker every backend call goes through, if any: while it is open,
    /// gets are misses and writes are dropped without asking the backend.
    breaker: Option<Arc<CircuitBreaker>>,
}

/// A call admitted by the breaker (or no breaker): report its outcome.
struct Admitted<'a>(Option<Permit<'a>>);

impl Admitted<'_> {
    fn report(self, outcome: Result<(), &CacheError>) {
        if let Some(permit) = self.0 {
            match outcome {
                Ok(()) => permit.success(),
                Err(error) if error.is_transient() => permit.error(ErrorClass::Dependency),
                Err(_) => permit.error(ErrorClass::Caller),
            }
        }
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.inner.backend)
            .field("default_ttl", &self.inner.default_ttl)
            .field("up", &self.inner.circuit.is_up())
            .finish()
    }
}

impl Cache {
    /// Builds the configured backend, without contacting it: Redis and memcached connect on
    /// first use and keep trying while they are down. With `enabled = false` the backend is
    /// the no-op one. Must run inside a tokio runtime.
    ///
    /// Fails when the settings are invalid or the backend's feature is not compiled in.
    pub fn from_config(config: &CacheConfig) -> Result<Self, ConnectError> {
        let prefix =
            Namespace::new(config.key_prefix.clone()).map_err(ConnectError::InvalidPrefix)?;
        if config.default_ttl.is_zero() {
            return Err(ConnectError::InvalidSetting {
                setting: "default_ttl",
                problem: "it must be longer than zero",
            });
        }
        if config.probe_interval.is_zero() {
            return Err(ConnectError::InvalidSetting {
                setting: "probe_interval",
                problem: "it must be longer than zero",
            });
        }
        let kind = if config.enabled {
            config.backend
        } else {
            BackendKind::Noop
        };
        let backend = build(kind, config, prefix)?;
        Ok(Self::with_backend(
            backend,
            config.default_ttl,
            config.probe_interval,
        ))
    }

    /// Wraps a backend built by the caller.
    pub fn with_backend(
        backend: Arc<dyn CacheBackend>,
        default_ttl: Duration,
        probe_interval: Duration,
    ) -> Self {
        Self::build(backend, default_ttl, probe_interval, None)
    }

    /// [`Cache::from_config`], with every backend call going through `breaker` (the `cache`
    /// component of `common.circuit_breakers`): while it is open the backend is not asked;
    /// gets are misses and writes are dropped (counted as short-circuited).
    pub fn from_config_with_breaker(
        config: &CacheConfig,
        breaker: Arc<CircuitBreaker>,
    ) -> Result<Self, ConnectError> {
        let cache = Self::from_config(config)?;
        Ok(Self::build(
            Arc::clone(&cache.inner.backend),
            cache.inner.default_ttl,
            config.probe_interval,
            Some(breaker),
        ))
    }

    fn build(
        backend: Arc<dyn CacheBackend>,
        default_ttl: Duration,
        probe_interval: Duration,
        breaker: Option<Arc<CircuitBreaker>>,
    ) -> Self {
        let circuit = Circuit::new(backend.kind(), probe_interval);
        Self {
            inner: Arc::new(Inner {
                backend,
                default_ttl,
                circuit,
                counters: Counters::default(),
                breaker,
            }),
        }
    }

    /// Whether a call may go to the backend: the breaker (if any) admits it, and the backend
    /// is up or due for a probe. `None` means short-circuited.
    fn admit(&self) -> Option<Admitted<'_>> {
        let permit = match self.inner.breaker.as_deref().map(CircuitBreaker::permit) {
            None => None,
            Some(Ok(permit)) => Some(permit),
            Some(Err(_)) => return None,
        };
        if !self.inner.circuit.admit() {
            if let Some(permit) = permit {
                // Not asked: neither a success nor a failure of the backend.
                permit.ignore();
            }
            return None;
        }
        Some(Admitted(permit))
    }

    /// The value stored under the key, or `None`: missing, expired, invalidated, undecodable
    /// (then also deleted), or the backend failed or is down.
    pub async fn get<T: DeserializeOwned>(&self, namespace: &Namespace, key: &str) -> Option<T> {
        let bytes = self.get_bytes(namespace, key).await?;
        match encoding::decode(&bytes) {
            Ok(value) => {
                Counters::bump(&self.inner.counters.hits);
                Some(value)
            }
            Err(error) => {
                self.undecodable(namespace, key, &error).await;
                None
            }
        }
    }

    /// Stores the value for the default TTL. A failure is counted and logged, not returned.
    pub async fn set<T: Serialize + ?Sized>(&self, namespace: &Namespace, key: &str, value: &T) {
        self.set_with_ttl(namespace, key, value, self.inner.default_ttl)
            .await;
    }

    /// Stores the value for `ttl`, replacing any earlier value and its TTL.
    pub async fn set_with_ttl<T: Serialize + ?Sized>(
        &self,
        namespace: &Namespace,
        key: &str,
        value: &T,
        ttl: Duration,
    ) {
        match encoding::encode(value) {
            Ok(bytes) => self.set_bytes(namespace, key, &bytes, ttl).await,
            Err(error) => {
                Counters::bump(&self.inner.counters.dropped_writes);
                tracing::warn!(%namespace, key, error = %chain(&error), "value not cached: it does not encode");
            }
        }
    }

    /// Removes the entry. A failure is counted and logged, not returned.
    pub async fn delete(&self, namespace: &Namespace, key: &str) {
        let counters = &self.inner.counters;
        let Some(admitted) = self.admit() else {
            Counters::bump(&counters.short_circuited);
            Counters::bump(&counters.dropped_writes);
            return;
        };
        match self.inner.backend.delete(namespace, key).await {
            Ok(()) => {
                admitted.report(Ok(()));
                self.inner.circuit.succeeded();
                Counters::bump(&counters.deletes);
            }
            Err(error) => {
                admitted.report(Err(&error));
                self.failed(&error);
                Counters::bump(&counters.dropped_writes);
            }
        }
    }

    /// Makes every entry of the namespace unreachable, for every process sharing the backend.
    ///
    /// Unlike the other operations this reports a failure, because a lost invalidation leaves
    /// stale entries readable until their TTL ends; the caller may retry or shorten what it
    /// trusts. While the backend is down the invalidation is attempted anyway.
    pub async fn invalidate(&self, namespace: &Namespace) -> Result<(), CacheError> {
        match self.inner.backend.invalidate_namespace(namespace).await {
            Ok(()) => {
                self.inner.circuit.succeeded();
                Counters::bump(&self.inner.counters.invalidations);
                Ok(())
            }
            Err(error) => {
                self.failed(&error);
                Err(error)
            }
        }
    }

    /// The cache-aside path: the cached value, or else `load`'s, which is then stored for `ttl`
    /// (the default TTL when `None`). `load`'s error is returned and nothing is stored.
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        namespace: &Namespace,
        key: &str,
        ttl: Option<Duration>,
        load: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.get(namespace, key).await {
            return Ok(value);
        }
        let value = load().await?;
        let ttl = ttl.unwrap_or(self.inner.default_ttl);
        self.set_with_ttl(namespace, key, &value, ttl).await;
        Ok(value)
    }

    /// Asks the backend whether it answers, whatever state it was last seen in, and records
    /// the answer (a backend that answers is up again).
    pub async fn health(&self) -> Health {
        let started = Instant::now();
        let result = self.inner.backend.health().await;
        let latency = started.elapsed();
        let backend = self.inner.backend.kind();
        match result {
            Ok(()) => {
                self.inner.circuit.succeeded();
                Health {
                    backend,
                    status: HealthStatus::Up,
                    latency,
                    error: None,
                }
            }
            Err(error) => {
                self.failed(&error);
                Health {
                    backend,
                    status: HealthStatus::Down,
                    latency,
                    error: Some(chain(&error)),
                }
            }
        }
    }

    /// Whether the backend answered the last call that reached it.
    pub fn is_up(&self) -> bool {
        self.inner.circuit.is_up()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// Which backend serves this cache.
    pub fn backend_kind(&self) -> BackendKind {
        self.inner.backend.kind()
    }

    /// The backend itself, for raw bytes and tests.
    pub fn backend(&self) -> &Arc<dyn CacheBackend> {
        &self.inner.backend
    }

    /// The TTL of [`Cache::set`].
    pub fn default_ttl(&self) -> Duration {
        self.inner.default_ttl
    }

    async fn get_bytes(&self, namespace: &Namespace, key: &str) -> Option<Vec<u8>> {
        let counters = &self.inner.counters;
        let Some(admitted) = self.admit() else {
            Counters::bump(&counters.short_circuited);
            Counters::bump(&counters.misses);
            return None;
        };
        match self.inner.backend.get(namespace, key).await {
            Ok(Some(bytes)) => {
                admitted.report(Ok(()));
                self.inner.circuit.succeeded();
                Some(bytes)
            }
            Ok(None) => {
                admitted.report(Ok(()));
                self.inner.circuit.succeeded();
                Counters::bump(&counters.misses);
                None
            }
            Err(error) => {
                admitted.report(Err(&error));
                self.failed(&error);
                Counters::bump(&counters.misses);
                None
            }
        }
    }

    async fn set_bytes(&self, namespace: &Namespace, key: &str, bytes: &[u8], ttl: Duration) {
        let counters = &self.inner.counters;
        let Some(admitted) = self.admit() else {
            Counters::bump(&counters.short_circuited);
            Counters::bump(&counters.dropped_writes);
            return;
        };
        match self.inner.backend.set(namespace, key, bytes, ttl).await {
            Ok(()) => {
                admitted.report(Ok(()));
                self.inner.circuit.succeeded();
                Counters::bump(&counters.sets);
            }
            Err(error) => {
                admitted.report(Err(&error));
                self.failed(&error);
                Counters::bump(&counters.dropped_writes);
            }
        }
    }

    async fn undecodable(&self, namespace: &Namespace, key: &str, error: &DecodeError) {
        let counters = &self.inner.counters;
        Counters::bump(&counters.decode_failures);
        Counters::bump(&counters.misses);
        tracing::debug!(%namespace, key, error = %chain(error), "cached value does not decode; deleting it");
        if let Err(error) = self.inner.backend.delete(namespace, key).await {
            self.failed(&error);
        }
    }

    fn failed(&self, error: &CacheError) {
        Counters::bump(&self.inner.counters.errors);
        self.inner.circuit.failed(error);
    }
}

fn build(
    kind: BackendKind,
    config: &CacheConfig,
    prefix: Namespace,
) -> Result<Arc<dyn CacheBackend>, ConnectError> {
    match kind {
        BackendKind::Noop => Ok(Arc::new(NoopBackend)),
        #[cfg(feature = "redis")]
        BackendKind::Redis => Ok(Arc::new(crate::redis::RedisBackend::new(
            &config.redis,
            prefix,
        )?)),
        #[cfg(feature = "moka")]
        BackendKind::Moka => Ok(Arc::new(crate::moka::MokaBackend::new(
            &config.moka,
            prefix,
        ))),
        #[cfg(feature = "memcached")]
        BackendKind::Memcached => Ok(Arc::new(crate::memcached::MemcachedBackend::new(
            &config.memcached,
            prefix,
        )?)),
        #[cfg_attr(
            all(feature = "redis", feature = "moka", feature = "memcached"),
            expect(unreachable_patterns, reason = "every backend is compiled in")
        )]
        other => {
            let _ = (config, prefix);
            Err(ConnectError::FeatureDisabled {
                backend: other,
                feature: other.feature().unwrap_or("none"),
            })
        }
    }
}
