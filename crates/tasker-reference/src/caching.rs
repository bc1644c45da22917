//! `common.cache` mapped onto tasker-cache: the configured backend behind the `cache` circuit
//! breaker, its keys prefixed with the database's name (every database is its own deployment,
//! on one cache server as on one PostgreSQL server).

use std::time::Duration;

use anyhow::Context as _;
use tasker_shared::cache::Cache;
use tasker_shared::cache::config::{
    BackendKind, CacheConfig, MemcachedConfig, MokaConfig, RedisConfig,
};
use tasker_shared::config::common::{CacheBackend, CacheConfig as Configured};
use tasker_shared::resilience::registry::CircuitBreakers;

/// The cache the configuration describes; with `enabled = false`, the no-op one. Nothing is
/// contacted here: a server that is down is retried while calls are misses.
pub(crate) fn cache(
    configured: &Configured,
    database: &str,
    breakers: &CircuitBreakers,
) -> anyhow::Result<Cache> {
    let seconds = |value: u32| Duration::from_secs(u64::from(value));
    let defaults = CacheConfig::default();
    let config = CacheConfig {
        enabled: configured.enabled,
        backend: match configured.backend {
            CacheBackend::Redis => BackendKind::Redis,
            CacheBackend::Moka => BackendKind::Moka,
            CacheBackend::Memcached => BackendKind::Memcached,
            CacheBackend::Noop => BackendKind::Noop,
        },
        default_ttl: seconds(configured.default_ttl_seconds),
        template_ttl: seconds(configured.template_ttl_seconds),
        analytics_ttl: seconds(configured.analytics_ttl_seconds),
        key_prefix: format!("tasker.{database}"),
        redis: RedisConfig {
            url: configured.redis.url.expose().to_owned(),
            max_connections: configured.redis.max_connections,
            connection_timeout: seconds(configured.redis.connection_timeout_seconds),
            database: u8::try_from(configured.redis.database).unwrap_or(u8::MAX),
            ..defaults.redis.clone()
        },
        moka: MokaConfig {
            max_capacity: configured.moka.max_capacity,
        },
        memcached: MemcachedConfig {
            url: configured.memcached.url.expose().to_owned(),
            max_connections: configured.memcached.max_connections,
            connection_timeout: seconds(configured.memcached.connection_timeout_seconds),
            ..defaults.memcached.clone()
        },
        ..defaults
    };
    Cache::from_config_with_breaker(&config, breakers.get("cache"))
        .with_context(|| format!("common.cache ({} backend)", config.backend.as_str()))
}
