//! The cache-aside path of a task template lookup: a hit (a stored template's row, about 2 KiB
//! of JSON, decoded from the versioned encoding) on Moka and on Redis at 127.0.0.1:6379, the
//! same behind a closed circuit breaker, and a miss that loads and stores. Run with
//! `cargo bench -p tasker-cache --bench cache_aside --features redis,moka` (Redis must answer).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use tasker_cache::config::{BackendKind, CacheConfig};
use tasker_cache::{Cache, Namespace};
use tasker_resilience::breaker::CircuitBreaker;
use tasker_resilience::config::BreakerConfig;

/// Shaped like the registry's cached row: ids, timestamps and the template's JSON.
#[derive(Clone, Serialize, Deserialize)]
struct Row {
    namespace_id: String,
    named_task_id: String,
    configuration: serde_json::Value,
    created_at: String,
    updated_at: String,
}

fn row() -> Row {
    let steps: Vec<serde_json::Value> = (0..8)
        .map(|i| {
            serde_json::json!({
                "name": format!("step_{i}"),
                "handler": {"callable": format!("Reference::Step{i}"), "initialization": {"factor": i}},
                "dependencies": if i == 0 { vec![] } else { vec![format!("step_{}", i - 1)] },
                "retry": {"retryable": true, "max_attempts": 3, "backoff": "exponential"},
                "timeout_seconds": 30,
            })
        })
        .collect();
    Row {
        namespace_id: "01a250f5-2400-7584-bbfa-bcadefe007e0".into(),
        named_task_id: "01a250f5-2400-7584-bbfa-bcadefe007e1".into(),
        configuration: serde_json::json!({
            "name": "orders",
            "namespace_name": "reference",
            "version": "1.0.0",
            "steps": steps,
        }),
        created_at: "2026-12-07T14:00:00Z".into(),
        updated_at: "2026-12-07T14:00:00Z".into(),
    }
}

fn cache(backend: BackendKind, breaker: Option<Arc<CircuitBreaker>>) -> Cache {
    let config = CacheConfig {
        enabled: true,
        backend,
        key_prefix: format!("bench-{}", std::process::id()),
        ..CacheConfig::default()
    };
    match breaker {
        Some(breaker) => Cache::from_config_with_breaker(&config, breaker),
        None => Cache::from_config(&config),
    }
    .expect("a valid cache configuration")
}

fn cache_aside(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let namespace = Namespace::new("templates.reference").expect("valid");
    let row = row();
    let mut group = c.benchmark_group("cache_aside");
    for (label, backend) in [("moka", BackendKind::Moka), ("redis", BackendKind::Redis)] {
        let breaker = Arc::new(
            CircuitBreaker::new("cache", BreakerConfig::default()).expect("a valid breaker"),
        );
        let plain = runtime.block_on(async { cache(backend, None) });
        let guarded = runtime.block_on(async { cache(backend, Some(breaker)) });
        for (guard, cache) in [("", plain), (" behind a closed breaker", guarded)] {
            runtime.block_on(cache.set(&namespace, "orders:1.0.0", &row));
            assert!(
                runtime
                    .block_on(cache.get::<Row>(&namespace, "orders:1.0.0"))
                    .is_some(),
                "{label}: the row is cached (is Redis answering on 127.0.0.1:6379?)"
            );
            group.bench_function(format!("{label}: hit{guard}"), |b| {
                b.iter(|| {
                    runtime.block_on(async {
                        black_box(cache.get::<Row>(&namespace, "orders:1.0.0").await)
                    })
                });
            });
        }
        let cache = runtime.block_on(async { cache(backend, None) });
        let mut round = 0_u64;
        group.bench_function(format!("{label}: miss, load and store"), |b| {
            b.iter(|| {
                round += 1;
                let key = format!("miss:{round}");
                runtime.block_on(async {
                    black_box(
                        cache
                            .get_or_load(
                                &namespace,
                                &key,
                                Some(Duration::from_secs(60)),
                                || async { Ok::<_, std::convert::Infallible>(row.clone()) },
                            )
                            .await,
                    )
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, cache_aside);
criterion_main!(benches);
