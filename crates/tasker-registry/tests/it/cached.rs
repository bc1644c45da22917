//! Cache-aside lookups: a second lookup is a hit, registering a namespace's templates again
//! invalidates them for every registry sharing the cache (two processes on one Redis, or one
//! process's Moka), and a cache behind an open breaker only means reading the database.

use std::sync::Arc;
use std::time::Duration;

use tasker_cache::Cache;
use tasker_cache::config::{BackendKind, CacheConfig, RedisConfig};
use tasker_models::names::{NamespaceName, TaskName, TemplateVersion};
use tasker_registry::registry::{RegisterOptions, TemplateRegistry};
use tasker_resilience::breaker::CircuitBreaker;
use tasker_resilience::config::BreakerConfig;

use crate::harness::{self, Scratch, template};

/// A cache on `backend`, its keys under a prefix of this test's own.
fn cache(backend: BackendKind, prefix: &str) -> anyhow::Result<Cache> {
    Ok(Cache::from_config(&CacheConfig {
        enabled: true,
        backend,
        key_prefix: prefix.to_owned(),
        redis: RedisConfig {
            url: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            ..RedisConfig::default()
        },
        ..CacheConfig::default()
    })?)
}

/// Registers `scratch/orders:1.0.0` whose second step runs `handler`.
async fn register(registry: &TemplateRegistry, handler: &str) -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let path = scratch.write(
        "orders.yaml",
        &template("orders", "1.0.0", &format!("{{callable: {handler}}}")),
    )?;
    registry
        .register_paths(&[path], RegisterOptions::forced())
        .await?;
    Ok(())
}

/// The callable of the stored template's second step.
async fn second_handler(registry: &TemplateRegistry) -> anyhow::Result<String> {
    let namespace: NamespaceName = "scratch".parse()?;
    let name: TaskName = "orders".parse()?;
    let version: TemplateVersion = "1.0.0".parse()?;
    let stored = registry.get(&namespace, &name, Some(&version)).await?;
    let json = stored.template.to_json();
    Ok(json["steps"][1]["handler"]["callable"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
async fn lookups_are_cache_aside_and_registration_invalidates_every_sharer() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        for backend in [BackendKind::Moka, BackendKind::Redis] {
            let prefix = format!("registry-it-{}", uuid::Uuid::now_v7().simple());
            // Two registries, as two processes: on Redis each has a cache of its own on the
            // shared server; Moka is in-process, so they share one.
            let first_cache = cache(backend, &prefix)?;
            let second_cache = match backend {
                BackendKind::Redis => cache(backend, &prefix)?,
                _ => first_cache.clone(),
            };
            let ttl = Duration::from_secs(60);
            let first = TemplateRegistry::new(pool.clone()).with_cache(first_cache, ttl);
            let second = TemplateRegistry::new(pool.clone()).with_cache(second_cache.clone(), ttl);
            register(&first, "Orders::Charge").await?;

            let before = second_cache.stats();
            assert_eq!(
                second_handler(&second).await?,
                "Orders::Charge",
                "{backend}"
            );
            assert_eq!(
                second_handler(&second).await?,
                "Orders::Charge",
                "{backend}"
            );
            let after = second_cache.stats();
            assert_eq!(
                after.misses - before.misses,
                1,
                "{backend}: the first lookup misses"
            );
            assert_eq!(
                after.hits - before.hits,
                1,
                "{backend}: the second one hits"
            );

            // Registered again, changed: every sharer reads the new definition at once.
            register(&first, "Orders::ChargeTwice").await?;
            assert_eq!(
                second_handler(&second).await?,
                "Orders::ChargeTwice",
                "{backend}"
            );
            assert_eq!(
                second_handler(&second).await?,
                "Orders::ChargeTwice",
                "{backend}"
            );
            assert_eq!(second_cache.stats().hits - after.hits, 1, "{backend}");
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn an_open_cache_breaker_means_reading_the_database() -> anyhow::Result<()> {
    harness::run(|pool| async move {
        let breaker = Arc::new(CircuitBreaker::new(
            "cache",
            BreakerConfig {
                failure_threshold: 1,
                timeout: Duration::from_secs(300),
                min_state_transition_interval: Duration::ZERO,
                ..BreakerConfig::default()
            },
        )?);
        // Opened by a failure of the dependency.
        breaker.permit()?.failure();
        let prefix = format!("registry-it-{}", uuid::Uuid::now_v7().simple());
        let guarded = Cache::from_config_with_breaker(
            &CacheConfig {
                enabled: true,
                backend: BackendKind::Moka,
                key_prefix: prefix,
                ..CacheConfig::default()
            },
            Arc::clone(&breaker),
        )?;
        let registry = TemplateRegistry::new(pool.clone())
            .with_cache(guarded.clone(), Duration::from_secs(60));
        register(&registry, "Orders::Charge").await?;
        assert_eq!(second_handler(&registry).await?, "Orders::Charge");
        assert_eq!(second_handler(&registry).await?, "Orders::Charge");
        let stats = guarded.stats();
        assert_eq!(stats.hits, 0, "nothing comes from the cache: {stats:?}");
        assert!(
            stats.short_circuited >= 2,
            "the cache was not asked: {stats:?}"
        );
        Ok(())
    })
    .await
}
