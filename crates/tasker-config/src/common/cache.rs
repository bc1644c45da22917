//! `common.cache`: the cache backend and its TTLs.

use crate::{
    schema::{config_enum, range, section},
    types::{MemcachedUrl, RedisUrl},
};

config_enum! {
    /// The cache backend.
    pub enum CacheBackend {
        /// Redis (shared between processes).
        Redis = "redis",
        /// Moka, an in-process cache (per process, no extra service).
        Moka = "moka",
        /// Memcached (shared between processes).
        Memcached = "memcached",
        /// No caching.
        Noop = "noop",
    }
}

section! {
    /// Caching of templates and analytics.
    pub struct CacheConfig => RawCacheConfig {
        /// Whether caching is on; when off the backend is not contacted.
        enabled: bool = false;
        /// The cache backend.
        backend: CacheBackend = CacheBackend::Redis;
        /// TTL of entries without a more specific TTL, in seconds.
        default_ttl_seconds: u32 = 3600, range(1, 86_400);
        /// TTL of cached task templates, in seconds.
        template_ttl_seconds: u32 = 3600, range(1, 86_400);
        /// TTL of cached analytics results, in seconds.
        analytics_ttl_seconds: u32 = 60, range(1, 86_400);
        /// Settings used when `backend = "redis"`.
        redis: RedisConfig = RawRedisConfig::default();
        /// Settings used when `backend = "moka"`.
        moka: MokaConfig = RawMokaConfig::default();
        /// Settings used when `backend = "memcached"`.
        memcached: MemcachedConfig = RawMemcachedConfig::default();
    }
}

section! {
    /// Redis cache settings.
    pub struct RedisConfig => RawRedisConfig {
        /// Redis URL (`redis://`, `rediss://`, `redis+unix://`, `unix://`); the password is
        /// redacted when displayed.
        url: RedisUrl = "${REDIS_URL:-redis://localhost:6379}";
        /// Maximum connections to Redis.
        max_connections: u32 = 10, range(1, 100);
        /// Connection timeout in seconds.
        connection_timeout_seconds: u32 = 5, range(1, 60);
        /// Redis logical database number.
        database: u32 = 0, range(0, 15);
    }
}

section! {
    /// Moka in-process cache settings.
    pub struct MokaConfig => RawMokaConfig {
        /// Maximum number of cached entries.
        max_capacity: u64 = 10_000, range(1, 1_000_000);
    }
}

section! {
    /// Memcached cache settings.
    pub struct MemcachedConfig => RawMemcachedConfig {
        /// Memcached URL (`tcp://host:port`, `memcache://host:port`, `unix:///path`).
        url: MemcachedUrl = "${MEMCACHED_URL:-tcp://localhost:11211}";
        /// Maximum connections to memcached.
        max_connections: u32 = 10, range(1, 100);
        /// Connection timeout in seconds.
        connection_timeout_seconds: u32 = 5, range(1, 60);
    }
}
