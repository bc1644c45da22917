//! 64 tasks on a multi-threaded runtime hammer a half-open breaker: never more trials at once
//! than it allows, and every slot comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tasker_resilience::breaker::CircuitBreaker;
use tasker_resilience::state::BreakerState;

use crate::support::config;

const TASKS: usize = 64;
const ROUNDS: usize = 50;
const ITERATIONS: usize = 200;

#[test]
fn concurrent_tasks_never_exceed_the_trial_limit() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    for iteration in 0..ITERATIONS {
        let max_trials = [1, 2, 3][iteration % 3];
        runtime.block_on(hammer(iteration, max_trials));
    }
}

async fn hammer(iteration: usize, max_trials: u32) {
    // No timeout and no damping: a failed trial reopens the breaker and the next permit
    // request makes it half-open again, so trials and reopenings race. A success threshold out
    // of reach keeps it from closing.
    let breaker = Arc::new(
        CircuitBreaker::new("hammered", config(1, 0, u32::MAX, max_trials)).expect("valid"),
    );
    breaker.permit().expect("closed").failure();
    assert_eq!(breaker.state(), BreakerState::Open);
    let active = Arc::new(AtomicUsize::new(0));
    let high_water = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(TASKS);
    for task in 0..TASKS {
        let breaker = Arc::clone(&breaker);
        let active = Arc::clone(&active);
        let high_water = Arc::clone(&high_water);
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let Ok(permit) = breaker.permit() else {
                    tokio::task::yield_now().await;
                    continue;
                };
                assert!(permit.is_trial(), "the breaker never closes");
                let now_active = active.fetch_add(1, Ordering::SeqCst) + 1;
                high_water.fetch_max(now_active, Ordering::SeqCst);
                tokio::task::yield_now().await;
                active.fetch_sub(1, Ordering::SeqCst);
                match (task * 31 + round * 7 + iteration) % 8 {
                    0 => permit.failure(),
                    1 => drop(permit),
                    2 | 3 => permit.success(),
                    _ => permit.ignore(),
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("no task panicked");
    }
    let high_water = high_water.load(Ordering::SeqCst);
    assert!(
        (1..=max_trials as usize).contains(&high_water),
        "iteration {iteration}: {high_water} trials at once, {max_trials} allowed"
    );
    assert_eq!(
        breaker.trials_in_flight(),
        0,
        "iteration {iteration}: a slot was lost"
    );
    let counters = breaker.counters();
    assert_eq!(
        counters.calls,
        counters.successes + counters.failures + counters.ignored
    );
}
