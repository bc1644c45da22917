//! The in-process bus: publish an [`Event`], and every subscription whose pattern matches its
//! name gets it in its own queue.
//!
//! # Guarantees
//!
//! - **Publishing never waits for a subscriber.** [`Bus::publish`] is a synchronous call that
//!   appends the event to each matching subscriber's queue under that queue's lock and returns.
//!   What happens when a queue is full is the subscriber's [`Overflow`] policy, and neither
//!   policy makes the publisher wait:
//!   - [`Overflow::DropOldest`]: the queue never holds more than `capacity` events. An event
//!     published to a full queue evicts the oldest undelivered one, which is counted in
//!     [`SubscriberStats::dropped`]. A slow subscriber loses the oldest events, never the newest.
//!   - [`Overflow::Wait`]: nothing is lost, so it is the *event* that waits, not the publisher.
//!     The queue holds `capacity` events; events published while it is full wait behind them in
//!     the subscriber's overflow, in order, and are counted in [`SubscriberStats::overflowed`].
//!     The overflow is unbounded: its cost is memory in proportion to how far that subscriber
//!     lags. Watch [`SubscriberStats::backlog`] and `overflowed`, and drop the [`Subscription`]
//!     of a subscriber that will not catch up.
//! - **A slow subscriber never slows the others.** Each subscription has its own queue and
//!   lock; a subscriber that never reads only fills (or overflows) its own queue.
//! - **Order.** Publishes are serialised by the bus, so there is one bus-wide order of events,
//!   and every subscriber receives its events in that order (with `DropOldest`, a subsequence of
//!   it). In particular, the events of one task that a caller publishes one after another reach
//!   every subscriber in that order. Events published at the same time from different threads
//!   are ordered by whichever publish takes the bus's lock first.
//! - **No global state and no background task.** A [`Bus`] is a handle (cheap to clone) to its
//!   own subscriber list; nothing is spawned. Dropping a [`Subscription`] unsubscribes; dropping
//!   the last `Bus` handle closes every subscription, whose `recv` then drains its queue and
//!   returns `None`.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::Notify;

use crate::event::Event;
use crate::name::{InvalidPattern, Pattern};

/// A handle to one in-process bus. Clones share the bus.
#[derive(Debug, Clone, Default)]
pub struct Bus {
    inner: Arc<Inner>,
}

/// How big a subscriber's queue is and what happens when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberOptions {
    /// The queue's bound.
    pub capacity: NonZeroUsize,
    /// What a full queue does with the next event.
    pub overflow: Overflow,
}

/// What a subscriber's full queue does with the next event (the module docs say it precisely).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Keep every event: the event waits in the subscriber's unbounded overflow, counted.
    Wait,
    /// Evict the oldest undelivered event, counted, and keep the new one.
    DropOldest,
}

/// One subscriber's queue: receives the events its pattern matches, in bus order.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Subscriber>,
    bus: Weak<Inner>,
}

/// A subscriber's counters, read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriberStats {
    /// Events handed out by `recv`/`try_recv`.
    pub delivered: u64,
    /// Events evicted undelivered ([`Overflow::DropOldest`]).
    pub dropped: u64,
    /// Events that arrived while the queue held `capacity` or more ([`Overflow::Wait`]).
    pub overflowed: u64,
    /// Events queued now, overflow included.
    pub backlog: usize,
}

/// Why [`Subscription::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// The queue is empty for now.
    #[error("no event is queued")]
    Empty,
    /// The queue is empty and the bus is gone.
    #[error("the bus is closed and the queue is drained")]
    Closed,
}

#[derive(Debug, Default)]
struct Inner {
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
}

#[derive(Debug)]
struct Subscriber {
    pattern: Pattern,
    options: SubscriberOptions,
    queue: Mutex<Queue>,
    notify: Notify,
    delivered: AtomicU64,
    dropped: AtomicU64,
    overflowed: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Arc<Event>>,
    closed: bool,
}

impl Bus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to the events whose names `pattern` matches (grammar in [`crate::name`]).
    ///
    /// # Errors
    /// [`InvalidPattern`] when the pattern breaks the grammar.
    pub fn subscribe(
        &self,
        pattern: &str,
        options: SubscriberOptions,
    ) -> Result<Subscription, InvalidPattern> {
        let pattern = Pattern::parse(pattern)?;
        let shared = Arc::new(Subscriber {
            pattern,
            options,
            queue: Mutex::new(Queue {
                events: VecDeque::with_capacity(options.capacity.get().min(1024)),
                closed: false,
            }),
            notify: Notify::new(),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
        });
        lock(&self.inner.subscribers).push(Arc::clone(&shared));
        Ok(Subscription {
            shared,
            bus: Arc::downgrade(&self.inner),
        })
    }

    /// Queues `event` for every subscriber whose pattern matches its name and returns how many
    /// that was. Never waits for a subscriber.
    pub fn publish(&self, event: impl Into<Event>) -> usize {
        let event = Arc::new(event.into());
        let subscribers = lock(&self.inner.subscribers);
        let mut queued = 0;
        for subscriber in subscribers.iter() {
            if subscriber.pattern.matches(event.name()) {
                subscriber.push(Arc::clone(&event));
                queued += 1;
            }
        }
        queued
    }

    /// How many subscriptions are live.
    pub fn subscriber_count(&self) -> usize {
        lock(&self.inner.subscribers).len()
    }
}

impl Subscriber {
    fn push(&self, event: Arc<Event>) {
        let mut queue = lock(&self.queue);
        if queue.events.len() >= self.options.capacity.get() {
            match self.options.overflow {
                Overflow::DropOldest => {
                    queue.events.pop_front();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Overflow::Wait => {
                    self.overflowed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        queue.events.push_back(event);
        drop(queue);
        // Stores a permit when `recv` is not waiting yet, so no wake-up is lost.
        self.notify.notify_one();
    }
}

impl Subscription {
    /// The next event, waiting until one is published; `None` once the bus is gone and the
    /// queue is drained. Cancel-safe: an event leaves the queue only when it is returned.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.try_recv() {
                Ok(event) => return Some(event),
                Err(TryRecvError::Closed) => return None,
                Err(TryRecvError::Empty) => self.shared.notify.notified().await,
            }
        }
    }

    /// The next event if one is queued.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when none is, [`TryRecvError::Closed`] when none ever will be.
    pub fn try_recv(&mut self) -> Result<Arc<Event>, TryRecvError> {
        let mut queue = lock(&self.shared.queue);
        match queue.events.pop_front() {
            Some(event) => {
                self.shared.delivered.fetch_add(1, Ordering::Relaxed);
                Ok(event)
            }
            None if queue.closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// The subscriber's counters.
    pub fn stats(&self) -> SubscriberStats {
        let backlog = lock(&self.shared.queue).events.len();
        SubscriberStats {
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            overflowed: self.shared.overflowed.load(Ordering::Relaxed),
            backlog,
        }
    }

    /// The pattern this subscription was made with.
    pub fn pattern(&self) -> &Pattern {
        &self.shared.pattern
    }

    /// The options this subscription was made with.
    pub fn options(&self) -> SubscriberOptions {
        self.shared.options
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            lock(&bus.subscribers).retain(|subscriber| !Arc::ptr_eq(subscriber, &self.shared));
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let subscribers = self
            .subscribers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for subscriber in subscribers.drain(..) {
            lock(&subscriber.queue).closed = true;
            subscriber.notify.notify_one();
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical section
/// here is a single push, pop or read).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
