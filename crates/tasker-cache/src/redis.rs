//! The Redis backend: the `redis` crate's reconnecting `ConnectionManager`, connected lazily.
//!
//! Building the backend contacts no server. Each of the `max_connections` managers connects on
//! its first request, and reconnects after a connection is lost or refused, for as long as the
//! process lives: a Redis that is down at start, or goes away later, is retried and never given
//! up on. Requests spread over the managers round robin; each manager multiplexes its requests
//! over one connection.
//!
//! Every request is bounded by the connection timeout plus the response timeout, so a call never
//! waits longer than one connection attempt and one answer, whatever the manager is doing.
//! A namespace's generation is read from Redis on every call (one extra `GET`); invalidation is
//! `INCR`.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, Value};

use crate::backend::CacheBackend;
use crate::config::{BackendKind, RedisConfig, redact_url};
use crate::error::{CacheError, ConnectError, Operation};
use crate::namespace::{Namespace, entry_key, generation_key, initial_generation};

/// How often a manager retries one reconnect before reporting the failure; the next request
/// starts a new reconnect, so this only shapes how long one attempt lasts.
const RECONNECT_RETRIES: usize = 2;
/// The first delay between those retries.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// The longest delay between those retries.
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// The Redis backend.
pub struct RedisBackend {
    prefix: Namespace,
    managers: Vec<ConnectionManager>,
    next: AtomicUsize,
    url: String,
    limit: Duration,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("connections", &self.managers.len())
            .field("limit", &self.limit)
            .finish()
    }
}

impl RedisBackend {
    /// Prepares the connections without opening them. Must run inside a tokio runtime.
    pub fn new(config: &RedisConfig, prefix: Namespace) -> Result<Self, ConnectError> {
        let redacted = redact_url(&config.url);
        let invalid = |problem: String| ConnectError::InvalidUrl {
            backend: BackendKind::Redis,
            url: redacted.clone(),
            problem,
        };
        let scheme = config.url.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some("redis" | "redis+unix" | "unix" | "valkey" | "valkey+unix") => {}
            Some("rediss" | "valkeys") => {
                tls_available().map_err(|problem| invalid(problem.to_owned()))?
            }
            _ => {
                return Err(invalid(
                    "expected a redis://, rediss://, redis+unix:// or unix:// URL".to_owned(),
                ));
            }
        }
        if config.max_connections == 0 {
            return Err(ConnectError::InvalidSetting {
                setting: "redis.max_connections",
                problem: "it must be at least 1",
            });
        }
        // The client's own message may quote the URL, so only the redacted URL is reported.
        let info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(|error| invalid(format!("{:?}", error.kind())))?;
        let info = if config.database == 0 {
            info
        } else {
            let redis = info
                .redis_settings()
                .clone()
                .set_db(i64::from(config.database));
            info.set_redis_settings(redis)
        };
        let client = Client::open(info).map_err(ConnectError::Redis)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connection_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let managers = (0..config.max_connections)
            .map(|_| {
                ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(ConnectError::Redis)?;
        Ok(Self {
            prefix,
            managers,
            next: AtomicUsize::new(0),
            url: redacted,
            limit: config.connection_timeout + config.response_timeout,
        })
    }

    fn manager(&self) -> ConnectionManager {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.managers.len();
        self.managers[index].clone()
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        operation: Operation,
        command: &redis::Cmd,
    ) -> Result<T, CacheError> {
        let mut manager = self.manager();
        within(BackendKind::Redis, operation, self.limit, async move {
            command
                .query_async::<T>(&mut manager)
                .await
                .map_err(|error| CacheError::backend(BackendKind::Redis, operation, error))
        })
        .await
    }

    /// The namespace's current generation, starting it when it is missing.
    async fn generation(&self, namespace: &Namespace) -> Result<u64, CacheError> {
        let key = generation_key(&self.prefix, namespace);
        let operation = Operation::Generation;
        if let Some(generation) = self
            .query::<Option<u64>>(operation, redis::cmd("GET").arg(&key))
            .await?
        {
            return Ok(generation);
        }
        self.start_generation(&key, operation).await?;
        let generation: Option<u64> = self.query(operation, redis::cmd("GET").arg(&key)).await?;
        Ok(generation.unwrap_or(0))
    }

    async fn start_generation(&self, key: &str, operation: Operation) -> Result<(), CacheError> {
        let _: Value = self
            .query(
                operation,
                redis::cmd("SET")
                    .arg(key)
                    .arg(initial_generation())
                    .arg("NX"),
            )
            .await?;
        Ok(())
    }
}

#[cfg(feature = "redis-tls")]
fn tls_available() -> Result<(), &'static str> {
    // The redis client builds its TLS settings from rustls's process-wide provider. This crate
    // enables rustls's ring provider only, which rustls then installs by itself; a process that
    // enables a second provider elsewhere must install its choice at start.
    Ok(())
}

#[cfg(not(feature = "redis-tls"))]
fn tls_available() -> Result<(), &'static str> {
    Err(
        "TLS (rediss://) needs the `redis-tls` feature of tasker-cache (`cache-redis-tls` of tasker-shared)",
    )
}

#[async_trait]
impl CacheBackend for RedisBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Redis
    }

    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let generation = self.generation(namespace).await?;
        let key = entry_key(&self.prefix, namespace, generation, key);
        self.query(Operation::Get, redis::cmd("GET").arg(key)).await
    }

    async fn set(
        &self,
        namespace: &Namespace,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let generation = self.generation(namespace).await?;
        let key = entry_key(&self.prefix, namespace, generation, key);
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _: Value = self
            .query(
                Operation::Set,
                redis::cmd("SET").arg(key).arg(value).arg("PX").arg(millis),
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<(), CacheError> {
        let generation = self.generation(namespace).await?;
        let key = entry_key(&self.prefix, namespace, generation, key);
        let _: Value = self
            .query(Operation::Delete, redis::cmd("DEL").arg(key))
            .await?;
        Ok(())
    }

    async fn invalidate_namespace(&self, namespace: &Namespace) -> Result<(), CacheError> {
        let key = generation_key(&self.prefix, namespace);
        // Starting a missing generation first keeps INCR from creating it at 1, a generation
        // an earlier life of the key may have used.
        self.start_generation(&key, Operation::Invalidate).await?;
        let _: u64 = self
            .query(Operation::Invalidate, redis::cmd("INCR").arg(&key))
            .await?;
        Ok(())
    }

    async fn health(&self) -> Result<(), CacheError> {
        let _: Value = self.query(Operation::Health, &redis::cmd("PING")).await?;
        Ok(())
    }
}

/// Runs `future` with a time limit, reporting [`CacheError::TimedOut`] when it passes.
pub(crate) async fn within<T>(
    backend: BackendKind,
    operation: Operation,
    after: Duration,
    future: impl Future<Output = Result<T, CacheError>>,
) -> Result<T, CacheError> {
    match tokio::time::timeout(after, future).await {
        Ok(result) => result,
        Err(_) => Err(CacheError::TimedOut {
            backend,
            operation,
            after,
        }),
    }
}
