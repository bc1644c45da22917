//! The RabbitMQ backend's shared state: the current link, prefetched deliveries waiting to be
//! received, messages in flight with their visibility deadlines, and the reaper that requeues
//! the expired ones.
//!
//! RabbitMQ has no visibility timeout: an unacknowledged message stays with its consumer until
//! the channel closes. The backend gives it one: each received message is held with a deadline,
//! and the reaper gives expired messages back to the broker (`basic.nack` with requeue), which
//! delivers them again. Whoever removes a message's in-flight entry (ack, nack or the reaper)
//! settles it; a receipt whose entry is gone is no longer valid.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::options::BasicNackOptions;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::link::Link;
use crate::config::RabbitMqConfig;
use crate::queue::MessageId;
use crate::queue_name::QueueName;
use crate::signal::SignalHub;

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No critical section can panic half-way, so a poisoned lock holds consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The connection as operations see it.
#[derive(Debug, Default, Clone)]
pub(super) struct LinkState {
    /// The live link, or `None` while reconnecting.
    pub(super) link: Option<Arc<Link>>,
    /// How many times the backend connected so far.
    pub(super) connections: u64,
    /// Why the latest connection attempt or connection failed.
    pub(super) last_error: Option<String>,
}

/// The connection's status, as [`super::RabbitMqQueue::connection_status`] reports it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// Whether a connection is up now.
    pub connected: bool,
    /// How many times the backend connected so far (2 after the first reconnect).
    pub connections: u64,
    /// Why the latest connection attempt or connection failed.
    pub last_error: Option<String>,
}

/// A delivery prefetched by a consumer and not yet handed out by `receive`.
#[derive(Debug)]
pub(super) struct Buffered {
    pub(super) generation: u64,
    pub(super) delivery: Delivery,
}

/// A message handed out by `receive` and not yet settled.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) queue: QueueName,
    pub(super) id: MessageId,
    pub(super) deadline: Instant,
    pub(super) read_count: u32,
    pub(super) body: Vec<u8>,
    pub(super) properties: BasicProperties,
}

/// Identifies a delivery: the link generation, the queue, and the delivery tag on that queue's
/// channel. Delivery tags are numbered per channel and every consumed queue has its own channel,
/// so the tag alone repeats across queues.
pub(super) type DeliveryKey = (u64, QueueName, u64);

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: RabbitMqConfig,
    pub(super) hub: SignalHub,
    pub(super) link: watch::Sender<LinkState>,
    /// Mirrors `link` for callers: connected, connections, last error.
    pub(super) status: watch::Sender<ConnectionStatus>,
    /// Queues this backend declared; re-declared after each reconnect.
    pub(super) declared: Mutex<BTreeSet<QueueName>>,
    /// Queues this backend consumes; consumers restart after each reconnect.
    pub(super) consumed: Mutex<BTreeSet<QueueName>>,
    pub(super) buffers: Mutex<HashMap<QueueName, VecDeque<Buffered>>>,
    pub(super) in_flight: Mutex<HashMap<DeliveryKey, InFlight>>,
    /// Wakes the reaper when a deadline may have moved earlier.
    pub(super) reaper: Notify,
    /// Consumers and operations report a broken link generation here.
    pub(super) broken: mpsc::UnboundedSender<u64>,
}

impl Shared {
    /// Updates the link state and its public mirror together.
    pub(super) fn set_link(&self, update: impl FnOnce(&mut LinkState)) {
        self.link.send_modify(update);
        let state = self.link.borrow().clone();
        self.status.send_replace(ConnectionStatus {
            connected: state.link.is_some(),
            connections: state.connections,
            last_error: state.last_error,
        });
    }

    pub(super) fn current_link(&self) -> Option<Arc<Link>> {
        self.link.borrow().link.clone()
    }

    /// Reports that the link of `generation` failed, so the supervisor reconnects.
    pub(super) fn report_broken(&self, generation: u64) {
        let _ = self.broken.send(generation);
    }

    /// Queues a prefetched delivery for `receive`.
    pub(super) fn buffer(&self, queue: &QueueName, generation: u64, delivery: Delivery) {
        lock(&self.buffers)
            .entry(queue.clone())
            .or_default()
            .push_back(Buffered {
                generation,
                delivery,
            });
    }

    /// Takes up to `max` deliveries of the live generation from `queue`'s buffer.
    pub(super) fn take(&self, queue: &QueueName, generation: u64, max: usize) -> Vec<Delivery> {
        let mut buffers = lock(&self.buffers);
        let Some(buffer) = buffers.get_mut(queue) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        while taken.len() < max {
            match buffer.pop_front() {
                Some(buffered) if buffered.generation == generation => {
                    taken.push(buffered.delivery);
                }
                Some(_) => {}
                None => break,
            }
        }
        taken
    }

    /// How many deliveries of `queue` wait in the buffer.
    pub(super) fn buffered(&self, queue: &QueueName) -> usize {
        lock(&self.buffers).get(queue).map_or(0, VecDeque::len)
    }

    /// Drops the buffered deliveries of a deleted queue.
    pub(super) fn forget_buffered(&self, queue: &QueueName) {
        lock(&self.buffers).remove(queue);
        lock(&self.in_flight).retain(|(_, held, _), _| held != queue);
    }

    /// Forgets everything delivered on the link of `generation`: the broker returns those
    /// messages to their queues when the connection closes.
    pub(super) fn forget_generation(&self, generation: u64) {
        for buffer in lock(&self.buffers).values_mut() {
            buffer.retain(|buffered| buffered.generation != generation);
        }
        lock(&self.in_flight).retain(|(held, _, _), _| *held != generation);
    }

    /// Removes and returns the in-flight entry of a delivery: the caller now settles it.
    pub(super) fn claim(&self, key: DeliveryKey) -> Option<InFlight> {
        lock(&self.in_flight).remove(&key)
    }

    /// Removes the in-flight entries whose deadline passed.
    fn claim_expired(&self, now: Instant) -> Vec<(DeliveryKey, InFlight)> {
        let mut in_flight = lock(&self.in_flight);
        let expired: Vec<DeliveryKey> = in_flight
            .iter()
            .filter(|(_, held)| held.deadline <= now)
            .map(|(key, _)| key.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|key| in_flight.remove(&key).map(|held| (key, held)))
            .collect()
    }

    fn next_deadline(&self) -> Option<Instant> {
        lock(&self.in_flight)
            .values()
            .map(|held| held.deadline)
            .min()
    }
}

/// Gives expired in-flight messages back to the broker, until `shutdown` changes.
pub(super) async fn reap(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let wake = shared.reaper.notified();
        let sleep = async {
            match shared.next_deadline() {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            () = wake => continue,
            () = sleep => {}
        }
        let expired = shared.claim_expired(Instant::now());
        let Some(link) = shared.current_link() else {
            continue;
        };
        for ((generation, _, tag), held) in expired {
            if generation != link.generation {
                continue;
            }
            let Some(channel) = link.channel(&held.queue) else {
                continue;
            };
            let requeue = BasicNackOptions {
                multiple: false,
                requeue: true,
            };
            if let Err(error) = channel.basic_nack(tag, requeue).await {
                tracing::warn!(
                    queue = %held.queue,
                    error = &error as &dyn std::error::Error,
                    "could not requeue a message whose visibility timeout expired"
                );
                shared.report_broken(generation);
            }
        }
    }
}
