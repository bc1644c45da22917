//! The conformance suite on Redis (127.0.0.1:6379, database 1, a key prefix per test), and the
//! fault tests: a Redis that is down at start, and connections killed mid-run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::ensure;
use tasker_cache::config::{BackendKind, CacheConfig, RedisConfig};
use tasker_cache::error::ConnectError;
use tasker_cache::{Cache, Namespace};

use crate::server::{Server, free_port, require_service};
use crate::suite::{self, Harness, conformance};
use crate::support::{eventually, unique_prefix};

fn config(url: String) -> CacheConfig {
    CacheConfig {
        enabled: true,
        backend: BackendKind::Redis,
        key_prefix: unique_prefix(),
        probe_interval: Duration::from_millis(100),
        redis: RedisConfig {
            url,
            max_connections: 2,
            connection_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            database: 1,
        },
        ..CacheConfig::default()
    }
}

fn setup() -> anyhow::Result<Harness> {
    require_service("Redis", 6379)?;
    let cache = Cache::from_config(&config("redis://127.0.0.1:6379".to_owned()))?;
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

#[tokio::test]
async fn secrets_stay_out_of_errors_and_debug() -> anyhow::Result<()> {
    let cache = Cache::from_config(&config("redis://:hunter2@127.0.0.1:6379".to_owned()))?;
    ensure!(!format!("{cache:?}").contains("hunter2"), "{cache:?}");
    let error = Cache::from_config(&config("redis://:hunter2@127.0.0.1:notaport".to_owned()))
        .expect_err("a bad port is refused");
    let text = format!("{error} {error:?}");
    ensure!(!text.contains("hunter2"), "{text}");
    Ok(())
}

#[tokio::test]
async fn tls_needs_its_feature() -> anyhow::Result<()> {
    let result = Cache::from_config(&config("rediss://127.0.0.1:6379".to_owned()));
    if cfg!(feature = "redis-tls") {
        ensure!(result.is_ok(), "rediss:// is accepted with redis-tls");
    } else {
        let error = result.expect_err("rediss:// needs redis-tls");
        ensure!(matches!(error, ConnectError::InvalidUrl { .. }), "{error}");
        ensure!(error.to_string().contains("redis-tls"), "{error}");
    }
    Ok(())
}

/// A Redis that is not there at start: calls miss without an error, and once a server
/// appears on the port the cache serves from it without being rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_then_up() -> anyhow::Result<()> {
    let port = free_port()?;
    let cache = Cache::from_config(&config(format!("redis://127.0.0.1:{port}")))?;
    let ns = Namespace::new("early")?;
    cache.set(&ns, "k", "v").await;
    ensure!(
        cache.get::<String>(&ns, "k").await.is_none(),
        "a miss while Redis is down"
    );
    ensure!(
        cache.invalidate(&ns).await.is_err(),
        "a lost invalidation is reported"
    );
    let stats = cache.stats();
    ensure!(
        !cache.is_up() && stats.errors > 0 && stats.dropped_writes == 1,
        "{stats:?}"
    );

    let server = Server::redis(port);
    server.start().await?;
    eventually("the cache serves from the new Redis", || async {
        cache.set(&ns, "k", "v").await;
        cache.get::<String>(&ns, "k").await.as_deref() == Some("v")
    })
    .await?;
    ensure!(cache.is_up(), "the cache is up again");
    server.stop().await
}

/// Every connection is killed while callers keep using the cache: none sees an error (the
/// typed API has none to show), and hits resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_heal() -> anyhow::Result<()> {
    let port = free_port()?;
    let server = Server::redis(port);
    server.start().await?;
    let cache = Cache::from_config(&config(format!("redis://127.0.0.1:{port}")))?;
    let ns = Namespace::new("steady")?;
    cache.set(&ns, "k", &7).await;
    ensure!(cache.get::<i32>(&ns, "k").await == Some(7), "warm");

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (cache, ns, stop) = (cache.clone(), ns.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut calls = 0u32;
            while !stop.load(Ordering::Relaxed) {
                cache.set(&ns, "busy", &calls).await;
                let _ = cache.get::<u32>(&ns, "busy").await;
                calls += 1;
            }
            calls
        })
    };
    let admin = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut admin = admin.get_multiplexed_async_connection().await?;
    for _ in 0..3 {
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query_async(&mut admin)
            .await?;
        ensure!(killed >= 1, "the cache's connections were killed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("hits resume after the kills", || async {
        cache.set(&ns, "k", &8).await;
        cache.get::<i32>(&ns, "k").await == Some(8)
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    let calls = load.await?;
    ensure!(calls > 0, "the load ran");
    let stats = cache.stats();
    ensure!(stats.errors > 0, "the kills were noticed: {stats:?}");
    ensure!(cache.is_up(), "up again: {stats:?}");
    server.stop().await
}
