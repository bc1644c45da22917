//! The conformance suite: every backend must pass each of these functions.
//!
//! A backend module builds a [`Harness`] (a cache with a key prefix no other test uses) and
//! instantiates the suite with `conformance!`. The no-op backend runs it too, with `stores`
//! false: every get must miss. Waits poll a condition against a deadline; where a test must
//! show that something did *not* expire, it waits for a control entry with a shorter TTL to
//! expire instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use serde::{Deserialize, Serialize};
use tasker_cache::encoding::{FORMAT_VERSION, MAGIC};
use tasker_cache::state::HealthStatus;
use tasker_cache::{Cache, Namespace};

use crate::support::eventually;

/// A backend under test.
pub(crate) struct Harness {
    pub(crate) cache: Cache,
    /// Whether the backend keeps what it is given (false for the no-op backend).
    pub(crate) stores: bool,
}

impl Harness {
    /// `Some(value)` when the backend stores, `None` for the no-op backend.
    fn expect<T>(&self, value: T) -> Option<T> {
        self.stores.then_some(value)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Template {
    name: String,
    version: u32,
    steps: Vec<String>,
}

fn ns(name: &str) -> Namespace {
    Namespace::new(name).expect("test namespaces are valid")
}

fn template(n: u32) -> Template {
    Template {
        name: format!("template-{n}"),
        version: n,
        steps: (0..n).map(|i| format!("step-{i}")).collect(),
    }
}

pub(crate) async fn get_set_delete(h: &Harness) -> anyhow::Result<()> {
    let (cache, ns) = (&h.cache, ns("templates"));
    ensure!(
        cache.get::<Template>(&ns, "a").await.is_none(),
        "an unknown key misses"
    );
    cache.set(&ns, "a", &template(3)).await;
    ensure!(
        cache.get(&ns, "a").await == h.expect(template(3)),
        "a set value is read back"
    );
    cache.set(&ns, "a", &template(4)).await;
    ensure!(
        cache.get(&ns, "a").await == h.expect(template(4)),
        "a second set replaces it"
    );
    cache.delete(&ns, "a").await;
    ensure!(
        cache.get::<Template>(&ns, "a").await.is_none(),
        "a deleted key misses"
    );
    cache.delete(&ns, "never-set").await;
    let stats = cache.stats();
    ensure!(
        stats.errors == 0 && stats.dropped_writes == 0,
        "no errors: {stats:?}"
    );
    ensure!(
        stats.hits == if h.stores { 2 } else { 0 },
        "hits counted: {stats:?}"
    );
    Ok(())
}

pub(crate) async fn awkward_keys(h: &Harness) -> anyhow::Result<()> {
    let (cache, ns) = (&h.cache, ns("keys"));
    let long = "k".repeat(400);
    let keys = [
        "with space",
        "new\nline",
        "ünïcödé",
        "#hash",
        "a:b:c",
        long.as_str(),
    ];
    for (n, key) in keys.iter().enumerate() {
        cache.set(&ns, key, &n).await;
    }
    for (n, key) in keys.iter().enumerate() {
        ensure!(
            cache.get::<usize>(&ns, key).await == h.expect(n),
            "key {key:?} reads back"
        );
    }
    Ok(())
}

pub(crate) async fn ttl_expiry(h: &Harness) -> anyhow::Result<()> {
    let (cache, ns) = (&h.cache, ns("ttl"));
    cache
        .set_with_ttl(&ns, "short", "gone soon", Duration::from_secs(1))
        .await;
    ensure!(
        cache.get::<String>(&ns, "short").await == h.expect("gone soon".to_owned()),
        "fresh entry hits"
    );
    eventually("the entry expires", || async {
        cache.get::<String>(&ns, "short").await.is_none()
    })
    .await
}

pub(crate) async fn ttl_replaced_on_update(h: &Harness) -> anyhow::Result<()> {
    let (cache, ns) = (&h.cache, ns("ttl-update"));
    let (short, long) = (Duration::from_secs(1), Duration::from_secs(120));
    cache.set_with_ttl(&ns, "control", &0, short).await;
    cache.set_with_ttl(&ns, "extended", &1, short).await;
    cache.set_with_ttl(&ns, "extended", &2, long).await;
    cache.set_with_ttl(&ns, "shortened", &3, long).await;
    cache.set_with_ttl(&ns, "shortened", &4, short).await;
    eventually("the control entry expires", || async {
        cache.get::<i32>(&ns, "control").await.is_none()
    })
    .await?;
    eventually("the shortened entry expires", || async {
        cache.get::<i32>(&ns, "shortened").await.is_none()
    })
    .await?;
    ensure!(
        cache.get::<i32>(&ns, "extended").await == h.expect(2),
        "an update's longer TTL replaced the first"
    );
    Ok(())
}

pub(crate) async fn namespace_invalidation(h: &Harness) -> anyhow::Result<()> {
    let cache = &h.cache;
    let (templates, steps) = (ns("templates"), ns("steps"));
    for key in ["a", "b", "c"] {
        cache.set(&templates, key, key).await;
        cache.set(&steps, key, key).await;
    }
    cache.invalidate(&templates).await?;
    for key in ["a", "b", "c"] {
        ensure!(
            cache.get::<String>(&templates, key).await.is_none(),
            "{key} is invalidated"
        );
        ensure!(
            cache.get::<String>(&steps, key).await == h.expect(key.to_owned()),
            "other namespaces stay"
        );
    }
    cache.set(&templates, "a", "new").await;
    ensure!(
        cache.get::<String>(&templates, "a").await == h.expect("new".to_owned()),
        "new entries are read"
    );
    cache.invalidate(&templates).await?;
    cache.invalidate(&templates).await?;
    ensure!(
        cache.get::<String>(&templates, "a").await.is_none(),
        "invalidated again"
    );
    ensure!(cache.stats().invalidations == 3, "invalidations counted");
    Ok(())
}

/// Two caches with different prefixes on one server never see each other's entries, and one's
/// invalidation does not touch the other.
#[cfg(any(feature = "redis", feature = "memcached"))]
pub(crate) async fn prefixes_isolate(h: &Harness, other: &Cache) -> anyhow::Result<()> {
    let ns = ns("shared-name");
    h.cache.set(&ns, "k", "mine").await;
    ensure!(
        other.get::<String>(&ns, "k").await.is_none(),
        "another prefix does not see it"
    );
    other.set(&ns, "k", "theirs").await;
    other.invalidate(&ns).await?;
    ensure!(
        h.cache.get::<String>(&ns, "k").await == h.expect("mine".to_owned()),
        "mine stays"
    );
    Ok(())
}

pub(crate) async fn undecodable_values_miss_and_are_deleted(h: &Harness) -> anyhow::Result<()> {
    let (cache, ns) = (&h.cache, ns("versions"));
    let backend = cache.backend();
    let ttl = Duration::from_secs(60);
    let mut newer = vec![MAGIC, FORMAT_VERSION + 1];
    newer.extend_from_slice(br#"{"name":"x"}"#);
    backend.set(&ns, "newer-format", &newer, ttl).await?;
    backend.set(&ns, "foreign", b"plain bytes", ttl).await?;
    cache.set(&ns, "other-shape", &42u64).await;
    ensure!(
        cache.get::<Template>(&ns, "newer-format").await.is_none(),
        "another format misses"
    );
    ensure!(
        cache.get::<Template>(&ns, "foreign").await.is_none(),
        "foreign bytes miss"
    );
    ensure!(
        cache.get::<Template>(&ns, "other-shape").await.is_none(),
        "another shape misses"
    );
    for key in ["newer-format", "foreign", "other-shape"] {
        ensure!(backend.get(&ns, key).await?.is_none(), "{key} was deleted");
    }
    let stats = cache.stats();
    ensure!(
        stats.decode_failures == if h.stores { 3 } else { 0 },
        "counted: {stats:?}"
    );
    ensure!(cache.is_up(), "a bad value does not mark the backend down");
    Ok(())
}

pub(crate) async fn large_values(h: &Harness) -> anyhow::Result<()> {
    let (cache, ns) = (&h.cache, ns("large"));
    let large: String = (0..512 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    cache.set(&ns, "large", &large).await;
    ensure!(
        cache.get::<String>(&ns, "large").await == h.expect(large),
        "512 KiB round-trips"
    );
    // Beyond some backends' item limit (memcached's default is 1 MiB): stored, or dropped
    // without an error reaching the caller and without marking the backend down.
    let huge = "x".repeat(4 * 1024 * 1024);
    cache.set(&ns, "huge", &huge).await;
    let read = cache.get::<String>(&ns, "huge").await;
    ensure!(
        read.is_none() || read.as_ref() == Some(&huge),
        "a huge value is intact or absent"
    );
    ensure!(
        cache.is_up(),
        "a refused value does not mark the backend down"
    );
    cache.set(&ns, "after", &1).await;
    ensure!(
        cache.get::<i32>(&ns, "after").await == h.expect(1),
        "the cache works after it"
    );
    Ok(())
}

pub(crate) async fn concurrent_access(h: &Harness) -> anyhow::Result<()> {
    let cache = h.cache.clone();
    let stores = h.stores;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16 {
        let cache = cache.clone();
        tasks.spawn(async move {
            let ns = ns(&format!("task-{}", task % 4));
            for n in 0..40u32 {
                let key = format!("{task}-{n}");
                cache.set(&ns, &key, &template(n % 5)).await;
                let read = cache.get::<Template>(&ns, &key).await;
                ensure!(
                    read == stores.then(|| template(n % 5)),
                    "task {task} read {key}"
                );
                // Everyone also races on one shared key; any complete value may win.
                cache.set(&ns, "shared", &template(task % 5)).await;
                if let Some(shared) = cache.get::<Template>(&ns, "shared").await {
                    ensure!(
                        shared.steps.len() == shared.version as usize,
                        "no torn values"
                    );
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let stats = cache.stats();
    ensure!(
        stats.errors == 0 && stats.decode_failures == 0,
        "no errors: {stats:?}"
    );
    Ok(())
}

pub(crate) async fn get_or_load(h: &Harness) -> anyhow::Result<()> {
    let (cache, ns) = (&h.cache, ns("aside"));
    let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..3 {
        let loads = Arc::clone(&loads);
        let value: Template = cache
            .get_or_load(&ns, "t", None, || async move {
                loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                anyhow::Ok(template(2))
            })
            .await?;
        ensure!(value == template(2), "the loaded or cached value");
    }
    let loads = loads.load(std::sync::atomic::Ordering::SeqCst);
    ensure!(
        loads == if h.stores { 1 } else { 3 },
        "loaded {loads} times"
    );
    let failed: Result<Template, &str> = cache
        .get_or_load(&ns, "u", None, || async { Err("db down") })
        .await;
    ensure!(failed == Err("db down"), "the loader's error is returned");
    ensure!(
        cache.get::<Template>(&ns, "u").await.is_none(),
        "and nothing is stored"
    );
    Ok(())
}

pub(crate) async fn health_is_reported(h: &Harness) -> anyhow::Result<()> {
    let health = h.cache.health().await;
    ensure!(health.status == HealthStatus::Up, "health: {health:?}");
    ensure!(
        health.backend == h.cache.backend_kind(),
        "health names the backend"
    );
    Ok(())
}

macro_rules! conformance {
    ($setup:expr) => {
        conformance!(@tests $setup;
            get_set_delete,
            awkward_keys,
            ttl_expiry,
            ttl_replaced_on_update,
            namespace_invalidation,
            undecodable_values_miss_and_are_deleted,
            large_values,
            concurrent_access,
            get_or_load,
            health_is_reported,
        );
    };
    (@tests $setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> anyhow::Result<()> {
                let harness = $setup?;
                $crate::suite::$name(&harness).await
            }
        )*
    };
}

pub(crate) use conformance;
