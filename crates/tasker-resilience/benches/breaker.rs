//! The cost of a call through a breaker that lets it pass: permit plus success on a closed
//! breaker, the same on a disabled one, `call` around a ready future, and a rejection by an
//! open breaker. Run with `cargo bench -p tasker-resilience --bench breaker`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tasker_resilience::breaker::CircuitBreaker;
use tasker_resilience::config::BreakerConfig;
use tasker_resilience::permit::ErrorClass;

/// Polls a future that is ready on its first poll, without a runtime.
fn ready<F: Future>(future: F) -> F::Output {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the benchmarked futures never wait"),
    }
}

fn breaker(c: &mut Criterion) {
    let closed = CircuitBreaker::new("bench", BreakerConfig::default()).expect("valid");
    let disabled = CircuitBreaker::pass_through("bench");
    let open = CircuitBreaker::new(
        "bench",
        BreakerConfig {
            failure_threshold: 1,
            timeout: Duration::from_secs(3600),
            ..BreakerConfig::default()
        },
    )
    .expect("valid");
    open.permit().expect("closed").failure();

    let mut group = c.benchmark_group("breaker");
    group.bench_function("closed: permit + success", |b| {
        b.iter(|| black_box(&closed).permit().expect("closed").success());
    });
    group.bench_function("disabled: permit + success", |b| {
        b.iter(|| black_box(&disabled).permit().expect("granted").success());
    });
    group.bench_function("closed: call (ready future)", |b| {
        b.iter(|| {
            ready(black_box(&closed).call(
                || async { Ok::<_, std::io::Error>(black_box(1)) },
                |_| ErrorClass::Dependency,
            ))
        });
    });
    group.bench_function("open: rejected", |b| {
        b.iter(|| black_box(&open).permit().expect_err("open"));
    });
    group.finish();
}

criterion_group!(benches, breaker);
criterion_main!(benches);
