//! What the engine's loops tell the rest of the process: the shutdown signal they stop on, and
//! the [`Tracker`] of task lifecycles that the driver, the progress bar and the tests wait on
//! (signals, never sleeps).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tasker_shared::models::ids::TaskId;
use tasker_shared::state_machine::TaskState;
use tokio::sync::watch;
use uuid::Uuid;

/// Tells every loop of the engine to stop. Cloned into each loop.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// Raises the shutdown signal.
#[derive(Debug)]
pub(crate) struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// A shutdown signal and its trigger.
pub(crate) fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    /// Tells every loop to stop.
    pub(crate) fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    /// Completes once shutdown is triggered (or its trigger is gone).
    pub(crate) async fn wait(&mut self) {
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown was triggered.
    pub(crate) fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }
}

/// How a submitted request ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Submission {
    /// A task was created (or an identical one existed).
    Created {
        /// The task.
        task_id: TaskId,
        /// Whether an identical task existed already.
        existing: bool,
    },
    /// The request was refused.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// A task that reached a state the tracker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reached {
    /// The state.
    pub(crate) state: TaskState,
    /// When this process saw it committed.
    pub(crate) at: Instant,
}

/// Something the tracker learned, in the order it learned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Request `0` was handled (see [`Tracker::submission`]).
    Submitted(Uuid),
    /// Task `0` reached a terminal state.
    Finished(TaskId),
}

#[derive(Debug, Default)]
struct TrackerState {
    /// Every submission and finish, in order: lets a waiter look only at what is new.
    log: Vec<Change>,
    submissions: HashMap<Uuid, Submission>,
    finished: HashMap<TaskId, Reached>,
    blocked: HashMap<TaskId, Instant>,
    handler_calls: u64,
    step_results: u64,
}

/// The lifecycle of the tasks this process handles, as the engine's loops report it after
/// each commit. Waiters are woken on every change.
#[derive(Debug)]
pub(crate) struct Tracker {
    state: Mutex<TrackerState>,
    version: watch::Sender<u64>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            state: Mutex::new(TrackerState::default()),
            version: watch::Sender::new(0),
        }
    }
}

/// The counters of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counters {
    /// Handler invocations.
    pub(crate) handler_calls: u64,
    /// Step results stored by workers.
    pub(crate) step_results: u64,
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, TrackerState> {
        // No critical section panics half-way, so a poisoned lock holds consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self) {
        self.version.send_modify(|version| *version += 1);
    }

    /// A request became a task (or was refused).
    pub(crate) fn submitted(&self, request_id: Uuid, submission: Submission) {
        let mut state = self.lock();
        state.submissions.insert(request_id, submission);
        state.log.push(Change::Submitted(request_id));
        drop(state);
        self.changed();
    }

    /// A task reached a terminal state.
    pub(crate) fn finished(&self, task_id: TaskId, state: TaskState) {
        let mut tracked = self.lock();
        tracked.finished.insert(
            task_id,
            Reached {
                state,
                at: Instant::now(),
            },
        );
        tracked.log.push(Change::Finished(task_id));
        drop(tracked);
        self.changed();
    }

    /// A task was blocked by a permanent failure.
    pub(crate) fn blocked(&self, task_id: TaskId) {
        self.lock().blocked.insert(task_id, Instant::now());
        self.changed();
    }

    /// A worker is about to invoke a handler.
    pub(crate) fn handler_called(&self) {
        self.lock().handler_calls += 1;
    }

    /// Workers stored `count` step results.
    pub(crate) fn results_stored(&self, count: usize) {
        self.lock().step_results += count as u64;
        self.changed();
    }

    /// The counters so far.
    pub(crate) fn counters(&self) -> Counters {
        let state = self.lock();
        Counters {
            handler_calls: state.handler_calls,
            step_results: state.step_results,
        }
    }

    /// How request `request_id` ended up, if it was handled.
    pub(crate) fn submission(&self, request_id: Uuid) -> Option<Submission> {
        self.lock().submissions.get(&request_id).cloned()
    }

    /// What the tracker learned after the first `seen` changes, and how many it knows now (the
    /// next call's `seen`).
    pub(crate) fn changes_since(&self, seen: usize) -> (Vec<Change>, usize) {
        let state = self.lock();
        let new = state.log.get(seen..).unwrap_or_default().to_vec();
        (new, state.log.len())
    }

    /// The terminal state task `task_id` reached, if it did.
    pub(crate) fn reached(&self, task_id: TaskId) -> Option<Reached> {
        self.lock().finished.get(&task_id).copied()
    }

    /// Whether task `task_id` was blocked by failures.
    #[cfg(test)]
    pub(crate) fn was_blocked(&self, task_id: TaskId) -> bool {
        self.lock().blocked.contains_key(&task_id)
    }

    /// Waits until `condition` holds, re-checking it after every change, at most `limit`.
    #[cfg(test)]
    pub(crate) async fn wait_until(
        &self,
        limit: std::time::Duration,
        mut condition: impl FnMut(&Tracker) -> bool,
    ) -> Result<(), WaitTimedOut> {
        let mut version = self.version.subscribe();
        let waited = tokio::time::timeout(limit, async {
            loop {
                if condition(self) {
                    return;
                }
                if version.changed().await.is_err() {
                    // The tracker is being dropped; nothing will change any more.
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        waited.map_err(|_| WaitTimedOut { limit })
    }

    /// Subscribes to change notifications (the progress bar redraws on them).
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

/// [`Tracker::wait_until`] gave up.
#[cfg(test)]
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the awaited condition did not hold within {limit:?}")]
pub(crate) struct WaitTimedOut {
    /// How long it waited.
    pub(crate) limit: std::time::Duration,
}
