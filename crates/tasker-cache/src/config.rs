//! The settings of the cache crate, with their defaults as named constants.
//!
//! These types mirror `common.cache` in `config/tasker/base/common.toml` and belong to this
//! crate; the composition root maps Tasker's configuration onto them, so this crate does not
//! depend on the config crate.

use std::fmt;
use std::time::Duration;

/// Default TTL of entries stored without a more specific one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Default TTL of cached task templates.
pub const DEFAULT_TEMPLATE_TTL: Duration = Duration::from_secs(3600);
/// Default TTL of cached analytics results.
pub const DEFAULT_ANALYTICS_TTL: Duration = Duration::from_secs(60);
/// Default prefix of every key this crate writes.
pub const DEFAULT_KEY_PREFIX: &str = "tasker";
/// Default interval between attempts to reach a backend that is down. Between attempts every
/// call is answered locally (a miss, a dropped write) without waiting on the network.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// Default Redis URL: a local server.
pub const DEFAULT_REDIS_URL: &str = "redis://localhost:6379";
/// Default number of connections to Redis (each is multiplexed).
pub const DEFAULT_REDIS_MAX_CONNECTIONS: u32 = 10;
/// Default time one connection attempt may take.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time the server may take to answer one request.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Default bound of the moka cache, in entries.
pub const DEFAULT_MOKA_MAX_CAPACITY: u64 = 10_000;
/// Default memcached URL: a local server.
pub const DEFAULT_MEMCACHED_URL: &str = "tcp://localhost:11211";
/// Default size of the memcached connection pool.
pub const DEFAULT_MEMCACHED_MAX_CONNECTIONS: u32 = 10;

/// The backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Redis (feature `redis`).
    Redis,
    /// moka, in this process's memory (feature `moka`).
    Moka,
    /// memcached (feature `memcached`).
    Memcached,
    /// No cache: every get misses, every write succeeds and is forgotten.
    Noop,
}

impl BackendKind {
    /// The spelling used in configuration: `redis`, `moka`, `memcached` or `noop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Moka => "moka",
            Self::Memcached => "memcached",
            Self::Noop => "noop",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(text: &str) -> Result<Self, UnknownBackend> {
        match text {
            "redis" => Ok(Self::Redis),
            "moka" => Ok(Self::Moka),
            "memcached" => Ok(Self::Memcached),
            "noop" => Ok(Self::Noop),
            other => Err(UnknownBackend {
                found: other.to_owned(),
            }),
        }
    }

    /// The cargo feature of this crate that compiles the backend in, if it needs one.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Redis => Some("redis"),
            Self::Moka => Some("moka"),
            Self::Memcached => Some("memcached"),
            Self::Noop => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cache backend {found:?}; expected redis, moka, memcached or noop")]
pub struct UnknownBackend {
    /// The text found.
    pub found: String,
}

/// Settings of the cache: which backend, the TTLs, and each backend's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Whether caching is on. When off, [`crate::Cache::from_config`] builds the no-op backend
    /// and no server is contacted.
    pub enabled: bool,
    /// The backend.
    pub backend: BackendKind,
    /// The TTL of entries written without one ([`crate::Cache::set`]).
    pub default_ttl: Duration,
    /// The TTL consumers use for cached task templates.
    pub template_ttl: Duration,
    /// The TTL consumers use for cached analytics results.
    pub analytics_ttl: Duration,
    /// Put before every key, so that deployments sharing a server never share entries.
    /// Letters, digits, `_`, `.` and `-`; see [`crate::Namespace`].
    pub key_prefix: String,
    /// How often a call goes through to a backend that is down, to notice that it is back.
    pub probe_interval: Duration,
    /// Settings used when `backend` is [`BackendKind::Redis`].
    pub redis: RedisConfig,
    /// Settings used when `backend` is [`BackendKind::Moka`].
    pub moka: MokaConfig,
    /// Settings used when `backend` is [`BackendKind::Memcached`].
    pub memcached: MemcachedConfig,
}

impl Default for CacheConfig {
    /// Caching off, with the defaults of `common.cache` for the rest.
    fn default() -> Self {
        Self {
            enabled: false,
            backend: BackendKind::Redis,
            default_ttl: DEFAULT_TTL,
            template_ttl: DEFAULT_TEMPLATE_TTL,
            analytics_ttl: DEFAULT_ANALYTICS_TTL,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            probe_interval: DEFAULT_PROBE_INTERVAL,
            redis: RedisConfig::default(),
            moka: MokaConfig::default(),
            memcached: MemcachedConfig::default(),
        }
    }
}

/// Settings of the Redis backend.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://`, `rediss://` (feature `redis-tls`), `redis+unix://` or `unix://`. It may hold
    /// a password, so it is never printed.
    pub url: String,
    /// How many multiplexed connections requests are spread over.
    pub max_connections: u32,
    /// How long one connection attempt may take.
    pub connection_timeout: Duration,
    /// How long Redis may take to answer one request.
    pub response_timeout: Duration,
    /// The logical database. It replaces a database named in the URL's path, unless it is 0.
    pub database: u8,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_REDIS_URL.to_owned(),
            max_connections: DEFAULT_REDIS_MAX_CONNECTIONS,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            database: 0,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("database", &self.database)
            .finish()
    }
}

/// Settings of the moka backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MokaConfig {
    /// The most entries kept; beyond it the least useful are evicted.
    pub max_capacity: u64,
}

impl Default for MokaConfig {
    fn default() -> Self {
        Self {
            max_capacity: DEFAULT_MOKA_MAX_CAPACITY,
        }
    }
}

/// Settings of the memcached backend.
#[derive(Clone, PartialEq, Eq)]
pub struct MemcachedConfig {
    /// `tcp://host:port`, `memcache://host:port` or `unix:///path`. Printed redacted, like
    /// every URL.
    pub url: String,
    /// The most connections open at once; a request waits for a free one.
    pub max_connections: u32,
    /// How long one connection attempt, or the wait for a free connection, may take.
    pub connection_timeout: Duration,
    /// How long memcached may take to answer one request.
    pub response_timeout: Duration,
}

impl Default for MemcachedConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_MEMCACHED_URL.to_owned(),
            max_connections: DEFAULT_MEMCACHED_MAX_CONNECTIONS,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }
}

impl fmt::Debug for MemcachedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

/// The URL with any password replaced by `***` (in the user info, and in a `pass` or
/// `password` query parameter, which unix-socket Redis URLs use); text that is not a URL is
/// hidden whole.
pub fn redact_url(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (url, None),
    };
    let mut redacted = redact_authority(url);
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().contains("pass") => {
                    format!("{name}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&pairs.join("&"));
    }
    redacted
}

fn redact_authority(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
