//! The memcached backend: this crate's own meta-protocol client over tokio, with a pool.
//!
//! No published async client was both maintained and safe under cancellation (a request whose
//! future is dropped mid-flight must not leave its reply for the next request on the same
//! connection), so this backend speaks the five meta commands it needs itself
//! (`protocol`), over a pool that closes any connection whose request did not read its whole
//! reply (`pool`). docs/design/cache.md records the choice.
//!
//! A namespace's generation is a counter read and started in one round trip (`ma` with delta
//! 0 and auto-create); invalidation is `ma` with delta 1. Keys that memcached cannot take as
//! they are (longer than 250 bytes, or holding spaces or control characters) are replaced by
//! a SHA-256 digest of the key within the same namespace and generation.

mod pool;
mod protocol;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use self::pool::{AcquireError, Address, Connection, Pool};
use crate::backend::CacheBackend;
use crate::config::{BackendKind, MemcachedConfig, redact_url};
use crate::error::{BackendError, CacheError, ConnectError, Operation};
use crate::namespace::{Namespace, entry_key, generation_key, initial_generation};

/// memcached's longest key.
const MAX_KEY_LEN: usize = 250;
/// The port memcached listens on unless the URL says otherwise.
const DEFAULT_PORT: u16 = 11211;
/// TTLs longer than this many seconds are read by memcached as a unix time.
const MAX_RELATIVE_TTL: u64 = 60 * 60 * 24 * 30;

/// The memcached backend.
pub struct MemcachedBackend {
    prefix: Namespace,
    pool: Pool,
    url: String,
    response_timeout: Duration,
}

impl fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("pool", &self.pool)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

/// One request of the subset this backend speaks.
enum Request<'a> {
    Get(&'a str),
    Set {
        key: &'a str,
        value: &'a [u8],
        ttl_seconds: u64,
    },
    Delete(&'a str),
    Increment {
        key: &'a str,
        initial: u64,
        delta: u64,
    },
    Noop,
}

/// The reply to a [`Request`].
enum Reply {
    Value(Option<Vec<u8>>),
    Number(u64),
    Done,
}

impl MemcachedBackend {
    /// Prepares the pool without connecting; connections open on demand.
    pub fn new(config: &MemcachedConfig, prefix: Namespace) -> Result<Self, ConnectError> {
        let address = parse_url(&config.url).map_err(|problem| ConnectError::InvalidUrl {
            backend: BackendKind::Memcached,
            url: redact_url(&config.url),
            problem: problem.to_owned(),
        })?;
        if config.max_connections == 0 {
            return Err(ConnectError::InvalidSetting {
                setting: "memcached.max_connections",
                problem: "it must be at least 1",
            });
        }
        Ok(Self {
            prefix,
            pool: Pool::new(address, config.max_connections, config.connection_timeout),
            url: redact_url(&config.url),
            response_timeout: config.response_timeout,
        })
    }

    async fn request(
        &self,
        operation: Operation,
        request: Request<'_>,
    ) -> Result<Reply, CacheError> {
        let mut retried = false;
        loop {
            let mut lease = self.pool.acquire().await.map_err(|error| match error {
                AcquireError::Io(error) => {
                    CacheError::backend(BackendKind::Memcached, Operation::Connect, error)
                }
                AcquireError::TimedOut => CacheError::TimedOut {
                    backend: BackendKind::Memcached,
                    operation: Operation::Connect,
                    after: self.pool.connect_timeout(),
                },
            })?;
            let reused = lease.reused();
            let reply =
                tokio::time::timeout(self.response_timeout, execute(lease.connection(), &request))
                    .await;
            match reply {
                Ok(Ok(reply)) => {
                    lease.finish();
                    return Ok(reply);
                }
                // An idle connection may have died with a server that restarted since; so have
                // its siblings, most likely. Drop them all and try once on a new connection.
                // Every request here is safe to repeat (a repeated invalidation only skips a
                // generation).
                Ok(Err(BackendError::Io(_))) if reused && !retried => {
                    drop(lease);
                    self.pool.clear_idle();
                    retried = true;
                }
                Ok(Err(error)) => {
                    return Err(CacheError::backend(
                        BackendKind::Memcached,
                        operation,
                        error,
                    ));
                }
                Err(_) => {
                    return Err(CacheError::TimedOut {
                        backend: BackendKind::Memcached,
                        operation,
                        after: self.response_timeout,
                    });
                }
            }
        }
    }

    async fn generation(
        &self,
        namespace: &Namespace,
        delta: u64,
        operation: Operation,
    ) -> Result<u64, CacheError> {
        let key = generation_key(&self.prefix, namespace);
        let request = Request::Increment {
            key: &key,
            initial: initial_generation(),
            delta,
        };
        match self.request(operation, request).await? {
            Reply::Number(generation) => Ok(generation),
            Reply::Value(_) | Reply::Done => unreachable!("an increment replies with a number"),
        }
    }

    async fn key(&self, namespace: &Namespace, key: &str) -> Result<String, CacheError> {
        let generation = self.generation(namespace, 0, Operation::Generation).await?;
        Ok(storable_key(&self.prefix, namespace, generation, key))
    }
}

async fn execute(
    connection: &mut Connection,
    request: &Request<'_>,
) -> Result<Reply, BackendError> {
    match *request {
        Request::Get(key) => protocol::get(connection, key).await.map(Reply::Value),
        Request::Set {
            key,
            value,
            ttl_seconds,
        } => protocol::set(connection, key, value, ttl_seconds)
            .await
            .map(|()| Reply::Done),
        Request::Delete(key) => protocol::delete(connection, key)
            .await
            .map(|()| Reply::Done),
        Request::Increment {
            key,
            initial,
            delta,
        } => protocol::increment(connection, key, initial, delta)
            .await
            .map(Reply::Number),
        Request::Noop => protocol::noop(connection).await.map(|()| Reply::Done),
    }
}

/// The entry's key as memcached stores it: as composed when memcached accepts that, otherwise
/// `#` and the SHA-256 of the caller's key (a raw key never starts with `#`).
pub(crate) fn storable_key(
    prefix: &Namespace,
    namespace: &Namespace,
    generation: u64,
    key: &str,
) -> String {
    let plain = entry_key(prefix, namespace, generation, key);
    let acceptable = !key.starts_with('#')
        && plain.len() <= MAX_KEY_LEN
        && plain.bytes().all(|byte| byte.is_ascii_graphic());
    if acceptable {
        plain
    } else {
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        entry_key(prefix, namespace, generation, &format!("#{digest}"))
    }
}

/// The TTL in memcached's terms: whole seconds, rounded up, at least 1; beyond 30 days, the unix
/// time of expiry.
pub(crate) fn ttl_seconds(ttl: Duration) -> u64 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    if seconds <= MAX_RELATIVE_TTL {
        return seconds;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    now.saturating_add(seconds)
}

/// `tcp://host[:port]`, `memcache://host[:port]` or `unix:///path`.
pub(crate) fn parse_url(url: &str) -> Result<Address, &'static str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("expected tcp://host:port, memcache://host:port or unix:///path");
    };
    match scheme {
        "unix" => {
            if rest.is_empty() || !rest.starts_with('/') {
                return Err("a unix URL needs an absolute path: unix:///path/to/socket");
            }
            Ok(Address::Unix(rest.to_owned()))
        }
        "tcp" | "memcache" | "memcached" => {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            if authority.is_empty() {
                return Err("the URL names no host");
            }
            if authority.contains(['/', '@', '?']) {
                return Err(
                    "expected only host and port (memcached has no users, paths or options)",
                );
            }
            let has_port = match authority.rsplit_once(':') {
                // `[::1]` has colons but no port after its closing bracket.
                Some((host, port)) if !port.ends_with(']') => {
                    if host.is_empty() || port.parse::<u16>().is_err() {
                        return Err("the port is not a number from 1 to 65535");
                    }
                    true
                }
                _ => false,
            };
            Ok(Address::Tcp(if has_port {
                authority.to_owned()
            } else {
                format!("{authority}:{DEFAULT_PORT}")
            }))
        }
        _ => Err("expected tcp://host:port, memcache://host:port or unix:///path"),
    }
}

#[async_trait]
impl CacheBackend for MemcachedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Memcached
    }

    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = self.key(namespace, key).await?;
        match self.request(Operation::Get, Request::Get(&key)).await? {
            Reply::Value(value) => Ok(value),
            Reply::Number(_) | Reply::Done => unreachable!("a get replies with a value"),
        }
    }

    async fn set(
        &self,
        namespace: &Namespace,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let key = self.key(namespace, key).await?;
        let request = Request::Set {
            key: &key,
            value,
            ttl_seconds: ttl_seconds(ttl),
        };
        self.request(Operation::Set, request).await.map(drop)
    }

    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<(), CacheError> {
        let key = self.key(namespace, key).await?;
        self.request(Operation::Delete, Request::Delete(&key))
            .await
            .map(drop)
    }

    async fn invalidate_namespace(&self, namespace: &Namespace) -> Result<(), CacheError> {
        self.generation(namespace, 1, Operation::Invalidate)
            .await
            .map(drop)
    }

    async fn health(&self) -> Result<(), CacheError> {
        self.request(Operation::Health, Request::Noop)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests;
