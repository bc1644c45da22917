//! "Queue has messages" signals: the hub backends publish into and the [`Subscription`]
//! consumers wait on.
//!
//! Signals coalesce per subscription and queue: while a signal for a queue is pending, another
//! for the same queue adds nothing, because one receive sees every visible message. So a slow
//! subscriber holds at most one pending signal per queue, never blocks the backend, and never
//! loses the fact that a queue has messages.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::{Notify, watch};

use crate::queue_name::QueueName;

/// Why a signal was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalCause {
    /// A message was sent to the queue.
    Sent,
    /// The backend (re)connected its signal source and may have missed sends meanwhile:
    /// receive to catch up.
    CatchUp,
}

/// A hint that `queue` has messages to receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSignal {
    /// The queue.
    pub queue: QueueName,
    /// Why the signal was sent.
    pub cause: SignalCause,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The critical sections cannot panic half-way, so a poisoned lock holds consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct SlotState {
    pending: VecDeque<QueueSignal>,
    closed: bool,
}

#[derive(Debug, Default)]
struct Slot {
    state: Mutex<SlotState>,
    notify: Notify,
}

impl Slot {
    fn push(&self, queue: &QueueName, cause: SignalCause) {
        let mut state = lock(&self.state);
        if state.closed || state.pending.iter().any(|signal| &signal.queue == queue) {
            return;
        }
        state.pending.push_back(QueueSignal {
            queue: queue.clone(),
            cause,
        });
        drop(state);
        self.notify.notify_one();
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.notify.notify_one();
    }
}

#[derive(Debug)]
struct Subscriber {
    queues: Vec<QueueName>,
    slot: Arc<Slot>,
}

#[derive(Debug, Default)]
struct HubState {
    next_id: u64,
    subscribers: HashMap<u64, Subscriber>,
    closed: bool,
}

#[derive(Debug)]
struct HubInner {
    state: Mutex<HubState>,
    /// Bumped whenever the set of subscribed queues may have changed.
    changes: watch::Sender<u64>,
}

/// Fans signals out to subscriptions. Cloning shares the hub.
#[derive(Debug, Clone)]
pub(crate) struct SignalHub {
    inner: Arc<HubInner>,
}

impl Default for SignalHub {
    fn default() -> Self {
        Self {
            inner: Arc::new(HubInner {
                state: Mutex::new(HubState::default()),
                changes: watch::Sender::new(0),
            }),
        }
    }
}

impl SignalHub {
    /// Registers a subscription to `queues`; `None` after [`SignalHub::close`].
    pub(crate) fn subscribe(&self, queues: &[QueueName]) -> Option<Subscription> {
        let slot = Arc::new(Slot::default());
        let mut state = lock(&self.inner.state);
        if state.closed {
            return None;
        }
        let id = state.next_id;
        state.next_id += 1;
        let mut unique: Vec<QueueName> = queues.to_vec();
        unique.sort();
        unique.dedup();
        state.subscribers.insert(
            id,
            Subscriber {
                queues: unique.clone(),
                slot: Arc::clone(&slot),
            },
        );
        drop(state);
        self.inner.changes.send_modify(|version| *version += 1);
        Some(Subscription {
            id,
            queues: unique,
            slot,
            hub: Arc::downgrade(&self.inner),
        })
    }

    /// Signals every subscription to `queue`.
    pub(crate) fn notify(&self, queue: &QueueName, cause: SignalCause) {
        let state = lock(&self.inner.state);
        for subscriber in state.subscribers.values() {
            if subscriber.queues.contains(queue) {
                subscriber.slot.push(queue, cause);
            }
        }
    }

    /// Signals every subscription for each of its queues (after a reconnect).
    pub(crate) fn notify_all(&self, cause: SignalCause) {
        let state = lock(&self.inner.state);
        for subscriber in state.subscribers.values() {
            for queue in &subscriber.queues {
                subscriber.slot.push(queue, cause);
            }
        }
    }

    /// The union of all subscribed queues.
    pub(crate) fn subscribed_queues(&self) -> BTreeSet<QueueName> {
        let state = lock(&self.inner.state);
        state
            .subscribers
            .values()
            .flat_map(|subscriber| subscriber.queues.iter().cloned())
            .collect()
    }

    /// Changes whenever the set of subscribed queues may have changed.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Ends every subscription (their `recv` returns `None`) and refuses new ones.
    pub(crate) fn close(&self) {
        let mut state = lock(&self.inner.state);
        state.closed = true;
        for (_, subscriber) in state.subscribers.drain() {
            subscriber.slot.close();
        }
        drop(state);
        self.inner.changes.send_modify(|version| *version += 1);
    }
}

/// A stream of [`QueueSignal`]s for some queues. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    id: u64,
    queues: Vec<QueueName>,
    slot: Arc<Slot>,
    hub: Weak<HubInner>,
}

impl Subscription {
    /// Waits for the next signal; `None` once the backend is shut down.
    pub async fn recv(&mut self) -> Option<QueueSignal> {
        loop {
            if let Some(signal) = self.try_recv() {
                return Some(signal);
            }
            if lock(&self.slot.state).closed {
                return None;
            }
            // `notify_one` stores a permit when nobody waits, so a signal pushed between the
            // check above and this await is not missed.
            self.slot.notify.notified().await;
        }
    }

    /// The next pending signal, without waiting.
    pub fn try_recv(&mut self) -> Option<QueueSignal> {
        lock(&self.slot.state).pending.pop_front()
    }

    /// The queues this subscription covers.
    pub fn queues(&self) -> &[QueueName] {
        &self.queues
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            lock(&hub.state).subscribers.remove(&self.id);
            hub.changes.send_modify(|version| *version += 1);
        }
    }
}

#[cfg(test)]
mod tests;
