//! Tests for [`GuardedQueue`] over a backend that fails on demand, under tokio's paused clock:
//! which errors open the breaker, what an open breaker answers, trials, and cancellation.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::FutureExt as _;
use tasker_resilience::breaker::BreakerCounters;
use tasker_resilience::config::BreakerConfig;
use tasker_resilience::state::BreakerState;

use super::*;
use crate::config::MessagingConfig;
use crate::memory::InMemoryQueue;
use crate::queue::{Health, Nack};

/// How [`Flaky`] fails its sends and receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The connection is down (transient).
    Unavailable,
    /// No answer in time (transient).
    TimedOut,
    /// The queue does not exist (the caller's error).
    QueueNotFound,
    /// The message is too large (the caller's error).
    TooLarge,
    /// Never answers, until the call is dropped.
    Stall,
}

/// The in-memory backend whose sends and receives fail with the fault set, if any. Everything
/// else passes straight to the in-memory backend.
#[derive(Debug)]
struct Flaky {
    inner: InMemoryQueue,
    fault: Mutex<Option<Fault>>,
    /// Sends and receives that reached this backend.
    calls: AtomicU32,
}

impl Flaky {
    fn new() -> Self {
        Self {
            inner: InMemoryQueue::new(&MessagingConfig::default()),
            fault: Mutex::new(None),
            calls: AtomicU32::new(0),
        }
    }

    fn set(&self, fault: Option<Fault>) {
        *self.fault.lock().unwrap() = fault;
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Counts the call and fails it with the fault set, if any.
    async fn check(&self, queue: &QueueName, operation: Operation) -> Result<(), QueueError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let fault = *self.fault.lock().unwrap();
        let error = match fault {
            None => return Ok(()),
            Some(Fault::Unavailable) => QueueError::Unavailable {
                backend: BackendKind::InMemory,
                operation,
                waited: Duration::from_secs(2),
            },
            Some(Fault::TimedOut) => QueueError::TimedOut {
                backend: BackendKind::InMemory,
                operation,
                queue: Some(queue.clone()),
                after: Duration::from_secs(10),
            },
            Some(Fault::QueueNotFound) => QueueError::QueueNotFound {
                queue: queue.clone(),
            },
            Some(Fault::TooLarge) => QueueError::TooLarge {
                queue: queue.clone(),
                size: 2,
                limit: 1,
            },
            Some(Fault::Stall) => std::future::pending().await,
        };
        Err(error)
    }
}

#[async_trait]
impl MessageQueue for Flaky {
    fn backend(&self) -> BackendKind {
        self.inner.backend()
    }

    async fn ensure_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        self.inner.ensure_queue(queue).await
    }

    async fn delete_queue(&self, queue: &QueueName) -> Result<(), QueueError> {
        self.inner.delete_queue(queue).await
    }

    async fn send(&self, queue: &QueueName, payload: &Payload) -> Result<MessageId, QueueError> {
        self.check(queue, Operation::Send).await?;
        self.inner.send(queue, payload).await
    }

    async fn send_batch(
        &self,
        queue: &QueueName,
        payloads: &[Payload],
    ) -> Result<Vec<MessageId>, QueueError> {
        self.check(queue, Operation::SendBatch).await?;
        self.inner.send_batch(queue, payloads).await
    }

    async fn receive(
        &self,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.check(queue, Operation::Receive).await?;
        self.inner.receive(queue, max, visibility_timeout).await
    }

    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.inner.ack(receipt).await
    }

    async fn ack_batch(
        &self,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        self.inner.ack_batch(receipts).await
    }

    async fn nack(&self, receipt: &Receipt, action: Nack) -> Result<(), QueueError> {
        self.inner.nack(receipt, action).await
    }

    async fn extend_visibility(
        &self,
        receipt: &Receipt,
        by: Duration,
    ) -> Result<Receipt, QueueError> {
        self.inner.extend_visibility(receipt, by).await
    }

    async fn depth(&self, queue: &QueueName) -> Result<QueueDepth, QueueError> {
        self.inner.depth(queue).await
    }

    async fn health(&self) -> HealthReport {
        self.inner.health().await
    }

    async fn subscribe(&self, queues: &[QueueName]) -> Result<Subscription, QueueError> {
        self.inner.subscribe(queues).await
    }
}

const OPEN_FOR: Duration = Duration::from_secs(1);
const VISIBILITY: Duration = Duration::from_secs(30);

/// A `messaging` breaker: opens after 3 failures in a row, tries again after 1 s, closes on
/// one trial success, no damping.
fn breaker() -> Arc<CircuitBreaker> {
    let config = BreakerConfig {
        failure_threshold: 3,
        timeout: OPEN_FOR,
        success_threshold: 1,
        min_state_transition_interval: Duration::ZERO,
        ..BreakerConfig::default()
    };
    Arc::new(CircuitBreaker::new("messaging", config).unwrap())
}

async fn setup() -> (Arc<Flaky>, GuardedQueue, QueueName) {
    let flaky = Arc::new(Flaky::new());
    let queue = QueueName::new("guarded_test").unwrap();
    flaky.ensure_queue(&queue).await.unwrap();
    let guarded = GuardedQueue::new(flaky.clone(), breaker());
    (flaky, guarded, queue)
}

fn payload() -> Payload {
    Payload::from_json(&serde_json::json!({ "v": 1 }))
}

/// Calls `operation` (a send, a batch or a receive) through `guarded`.
async fn call(
    guarded: &GuardedQueue,
    queue: &QueueName,
    operation: Operation,
) -> Result<(), QueueError> {
    match operation {
        Operation::Send => guarded.send(queue, &payload()).await.map(drop),
        Operation::SendBatch => guarded.send_batch(queue, &[payload()]).await.map(drop),
        Operation::Receive => guarded.receive(queue, 1, VISIBILITY).await.map(drop),
        other => unreachable!("{other:?} is not guarded"),
    }
}

/// Opens the breaker with three transient failures of sends.
async fn open(flaky: &Flaky, guarded: &GuardedQueue, queue: &QueueName) {
    flaky.set(Some(Fault::Unavailable));
    for _ in 0..3 {
        let error = call(guarded, queue, Operation::Send).await.unwrap_err();
        assert!(matches!(error, QueueError::Unavailable { .. }), "{error}");
    }
    assert_eq!(guarded.breaker().state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn three_transient_failures_open_it_and_the_fourth_call_fails_fast() {
    for operation in [Operation::Send, Operation::SendBatch, Operation::Receive] {
        let (flaky, guarded, queue) = setup().await;
        flaky.set(Some(Fault::Unavailable));
        for _ in 0..3 {
            let error = call(&guarded, &queue, operation).await.unwrap_err();
            assert!(matches!(error, QueueError::Unavailable { .. }), "{error}");
        }
        assert_eq!(
            guarded.breaker().state(),
            BreakerState::Open,
            "{operation:?}"
        );

        let error = call(&guarded, &queue, operation).await.unwrap_err();
        let QueueError::CircuitOpen {
            backend,
            operation: failed,
            component,
            next_trial_in,
        } = &error
        else {
            panic!("{operation:?}: expected CircuitOpen, got {error}");
        };
        assert_eq!(*backend, BackendKind::InMemory);
        assert_eq!(*failed, operation);
        assert_eq!(component, "messaging");
        assert_eq!(*next_trial_in, OPEN_FOR);
        assert!(error.is_transient());
        assert_eq!(
            flaky.calls(),
            3,
            "{operation:?}: the fourth call reached the backend"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_names_its_component_and_the_next_trial() {
    let (flaky, guarded, queue) = setup().await;
    open(&flaky, &guarded, &queue).await;
    tokio::time::advance(Duration::from_millis(400)).await;
    let error = call(&guarded, &queue, Operation::Receive)
        .await
        .unwrap_err();
    insta::assert_snapshot!(
        error,
        @"in_memory is failing: the `messaging` circuit breaker is open, so it was not asked to receive messages; the next trial call is due in 600ms"
    );
}

#[tokio::test(start_paused = true)]
async fn only_transient_errors_count_as_failures() {
    // (fault, the state after three calls failing with it)
    let cases = [
        (Fault::Unavailable, BreakerState::Open),
        (Fault::TimedOut, BreakerState::Open),
        (Fault::QueueNotFound, BreakerState::Closed),
        (Fault::TooLarge, BreakerState::Closed),
    ];
    for (fault, expected) in cases {
        let (flaky, guarded, queue) = setup().await;
        flaky.set(Some(fault));
        for _ in 0..3 {
            call(&guarded, &queue, Operation::Send).await.unwrap_err();
        }
        assert_eq!(guarded.breaker().state(), expected, "{fault:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn caller_errors_never_open_it_and_do_not_reset_the_failures() {
    let (flaky, guarded, queue) = setup().await;
    flaky.set(Some(Fault::QueueNotFound));
    for _ in 0..10 {
        let error = call(&guarded, &queue, Operation::Send).await.unwrap_err();
        assert!(matches!(error, QueueError::QueueNotFound { .. }), "{error}");
    }
    assert_eq!(guarded.breaker().state(), BreakerState::Closed);

    // A caller error is neither a failure nor a success: it does not break a run of failures.
    for fault in [
        Fault::Unavailable,
        Fault::Unavailable,
        Fault::QueueNotFound,
        Fault::Unavailable,
    ] {
        flaky.set(Some(fault));
        call(&guarded, &queue, Operation::Receive)
            .await
            .unwrap_err();
    }
    assert_eq!(guarded.breaker().state(), BreakerState::Open);
    assert_eq!(
        guarded.breaker().counters(),
        BreakerCounters {
            calls: 14,
            successes: 0,
            failures: 3,
            rejected: 0,
            ignored: 11,
        }
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_timeout_a_successful_trial_closes_it() {
    let (flaky, guarded, queue) = setup().await;
    open(&flaky, &guarded, &queue).await;
    flaky.set(None);
    tokio::time::advance(OPEN_FOR - Duration::from_millis(1)).await;
    let error = call(&guarded, &queue, Operation::Send).await.unwrap_err();
    assert!(matches!(error, QueueError::CircuitOpen { .. }), "{error}");

    tokio::time::advance(Duration::from_millis(1)).await;
    call(&guarded, &queue, Operation::Send).await.unwrap();
    assert_eq!(guarded.breaker().state(), BreakerState::Closed);
    call(&guarded, &queue, Operation::Receive).await.unwrap();
    assert_eq!(flaky.calls(), 5);
    assert_eq!(flaky.depth(&queue).await.unwrap().ready, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_opens_it_again() {
    let (flaky, guarded, queue) = setup().await;
    open(&flaky, &guarded, &queue).await;
    tokio::time::advance(OPEN_FOR).await;
    let error = call(&guarded, &queue, Operation::Send).await.unwrap_err();
    assert!(matches!(error, QueueError::Unavailable { .. }), "{error}");
    assert_eq!(flaky.calls(), 4, "the trial reached the backend");
    assert_eq!(guarded.breaker().state(), BreakerState::Open);

    let error = call(&guarded, &queue, Operation::Send).await.unwrap_err();
    assert!(
        matches!(error, QueueError::CircuitOpen { next_trial_in, .. } if next_trial_in == OPEN_FOR),
        "{error}"
    );
    assert_eq!(guarded.breaker().trials_in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn acks_nacks_depth_and_queue_management_pass_through_while_open() {
    let (flaky, guarded, queue) = setup().await;
    for _ in 0..4 {
        call(&guarded, &queue, Operation::Send).await.unwrap();
    }
    let received = guarded.receive(&queue, 4, VISIBILITY).await.unwrap();
    let [first, second, third, fourth] = &received[..] else {
        panic!("expected 4 messages, got {}", received.len());
    };
    open(&flaky, &guarded, &queue).await;
    let before = guarded.breaker().counters();

    guarded.ack(first.receipt()).await.unwrap();
    let outcomes = guarded
        .ack_batch(&[second.receipt().clone()])
        .await
        .unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    guarded
        .extend_visibility(third.receipt(), VISIBILITY)
        .await
        .unwrap();
    guarded.nack(fourth.receipt(), Nack::Requeue).await.unwrap();
    assert_eq!(
        guarded.depth(&queue).await.unwrap(),
        QueueDepth {
            ready: 1,
            in_flight: Some(1),
        }
    );
    let other = QueueName::new("guarded_other").unwrap();
    guarded.ensure_queue(&other).await.unwrap();
    guarded.delete_queue(&other).await.unwrap();
    assert_eq!(guarded.health().await.health, Health::Healthy);
    guarded
        .subscribe(std::slice::from_ref(&queue))
        .await
        .unwrap();

    assert_eq!(
        guarded.breaker().counters(),
        before,
        "nothing went through the breaker"
    );
    assert_eq!(guarded.breaker().state(), BreakerState::Open);
    assert_eq!(flaky.calls(), 8, "4 sends, 1 receive, 3 failed sends");
}

#[tokio::test(start_paused = true)]
async fn receives_dropped_mid_flight_count_as_failures() {
    let (flaky, guarded, queue) = setup().await;
    flaky.set(Some(Fault::Stall));
    for _ in 0..3 {
        // What the engines' `within(operation_timeout, ...)` does to a receive that hangs.
        let timed_out = tokio::time::timeout(
            Duration::from_secs(5),
            call(&guarded, &queue, Operation::Receive),
        )
        .await;
        assert!(timed_out.is_err());
    }
    assert_eq!(guarded.breaker().state(), BreakerState::Open);
    let counters = guarded.breaker().counters();
    assert_eq!((counters.calls, counters.failures), (3, 3));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_trial_opens_it_again_and_frees_its_slot() {
    let (flaky, guarded, queue) = setup().await;
    open(&flaky, &guarded, &queue).await;
    tokio::time::advance(OPEN_FOR).await;

    // The trial hangs; while it is in flight every other call is refused, with no wait.
    flaky.set(Some(Fault::Stall));
    let mut trial = guarded.receive(&queue, 1, VISIBILITY);
    assert!((&mut trial).now_or_never().is_none());
    assert_eq!(guarded.breaker().state(), BreakerState::HalfOpen);
    assert_eq!(guarded.breaker().trials_in_flight(), 1);
    let error = call(&guarded, &queue, Operation::Send).await.unwrap_err();
    assert!(
        matches!(error, QueueError::CircuitOpen { next_trial_in, .. } if next_trial_in.is_zero()),
        "{error}"
    );

    // Dropping it is a failed trial: open again for the whole timeout, slot given back.
    drop(trial);
    assert_eq!(guarded.breaker().trials_in_flight(), 0);
    assert_eq!(guarded.breaker().state(), BreakerState::Open);
    let error = call(&guarded, &queue, Operation::Send).await.unwrap_err();
    assert!(
        matches!(error, QueueError::CircuitOpen { next_trial_in, .. } if next_trial_in == OPEN_FOR),
        "{error}"
    );

    // The next trial is admitted, not refused as busy, and closes it.
    flaky.set(None);
    tokio::time::advance(OPEN_FOR).await;
    call(&guarded, &queue, Operation::Receive).await.unwrap();
    assert_eq!(guarded.breaker().state(), BreakerState::Closed);
    assert_eq!(guarded.breaker().trials_in_flight(), 0);
}
