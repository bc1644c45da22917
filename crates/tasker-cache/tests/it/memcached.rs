//! The conformance suite on memcached (127.0.0.1:11211, a key prefix per test), and the fault
//! tests: a private memcached stopped and started again, and requests cancelled mid-flight.

use std::time::Duration;

use anyhow::ensure;
use tasker_cache::config::{BackendKind, CacheConfig, MemcachedConfig};
use tasker_cache::{Cache, Namespace};

use crate::server::{Server, free_port, require_service};
use crate::suite::{self, Harness, conformance};
use crate::support::{eventually, unique_prefix};

fn config(url: String, max_connections: u32) -> CacheConfig {
    CacheConfig {
        enabled: true,
        backend: BackendKind::Memcached,
        key_prefix: unique_prefix(),
        probe_interval: Duration::from_millis(100),
        memcached: MemcachedConfig {
            url,
            max_connections,
            connection_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
        },
        ..CacheConfig::default()
    }
}

fn setup() -> anyhow::Result<Harness> {
    require_service("memcached", 11211)?;
    let cache = Cache::from_config(&config("tcp://127.0.0.1:11211".to_owned(), 4))?;
    Ok(Harness {
        cache,
        stores: true,
    })
}

conformance!(setup());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_isolate() -> anyhow::Result<()> {
    let harness = setup()?;
    let other = setup()?.cache;
    suite::prefixes_isolate(&harness, &other).await
}

/// Requests abandoned at every point of their flight never hand their replies to later
/// requests: each later read gets its own key's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_do_not_mix_replies() -> anyhow::Result<()> {
    require_service("memcached", 11211)?;
    // One connection, so a reused connection would be the very one a request abandoned.
    let cache = Cache::from_config(&config("tcp://127.0.0.1:11211".to_owned(), 1))?;
    let ns = Namespace::new("cancel")?;
    let large = "v".repeat(256 * 1024);
    cache.set(&ns, "large", &large).await;
    cache.set(&ns, "small", "small").await;
    for attempt in 0..200u64 {
        // Cut the large read short after a varying number of microseconds.
        let cut = Duration::from_micros(attempt * 7 % 900);
        let _ = tokio::time::timeout(cut, cache.get::<String>(&ns, "large")).await;
        let small = cache.get::<String>(&ns, "small").await;
        ensure!(
            small.as_deref() == Some("small"),
            "attempt {attempt}: read {small:?}"
        );
    }
    Ok(())
}

/// memcached stops and starts again: no caller sees an error, and hits resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_restart_heals() -> anyhow::Result<()> {
    let port = free_port()?;
    let server = Server::memcached(port);
    server.start().await?;
    let cache = Cache::from_config(&config(format!("tcp://127.0.0.1:{port}"), 4))?;
    let ns = Namespace::new("restart")?;
    cache.set(&ns, "k", &1).await;
    ensure!(cache.get::<i32>(&ns, "k").await == Some(1), "warm");

    server.stop().await?;
    eventually("the cache notices memcached is gone", || async {
        cache.get::<i32>(&ns, "k").await.is_none() && !cache.is_up()
    })
    .await?;
    cache.set(&ns, "k", &2).await;
    ensure!(
        cache.get::<i32>(&ns, "k").await.is_none(),
        "misses while down"
    );

    server.start().await?;
    eventually("hits resume", || async {
        cache.set(&ns, "k", &3).await;
        cache.get::<i32>(&ns, "k").await == Some(3)
    })
    .await?;
    let stats = cache.stats();
    ensure!(
        cache.is_up() && stats.errors > 0 && stats.short_circuited > 0,
        "{stats:?}"
    );
    server.stop().await
}

#[tokio::test]
async fn feature_or_bad_url_is_a_clear_error() -> anyhow::Result<()> {
    let error =
        Cache::from_config(&config("http://127.0.0.1:11211".to_owned(), 1)).expect_err("refused");
    ensure!(
        error.to_string().contains("invalid memcached URL"),
        "{error}"
    );
    Ok(())
}
