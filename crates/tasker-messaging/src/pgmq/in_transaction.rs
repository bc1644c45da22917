//! The PGMQ backend's operations inside the caller's transaction (or on any connection): sends,
//! acknowledgements, reads, pops and dead-lettering that commit or roll back with the caller's
//! state changes.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::value::RawValue;

use super::{DeadLetterOut, PgmqQueue, SYSTEM, invalid, sql};
use crate::config::{AckMode, ReadCommit};
use crate::envelope::Payload;
use crate::error::{BackendError, Operation, QueueError};
use crate::instrumented::{record_acked, record_received, record_sent};
use crate::queue::{BackendKind, DeadLetterInfo, MessageId, Receipt, ReceivedMessage, check_size};
use crate::queue_name::QueueName;

impl PgmqQueue {
    /// Sends inside the caller's transaction (or on any connection): the message becomes
    /// visible, and its notification is delivered, only when that transaction commits; a
    /// rollback leaves no trace. Lets a state change and its message commit together.
    pub async fn send_in(
        &self,
        connection: &mut sqlx::PgConnection,
        queue: &QueueName,
        payload: &Payload,
    ) -> Result<MessageId, QueueError> {
        check_size(queue, payload, self.config.messaging.max_message_bytes)?;
        let began = Instant::now();
        self.layout(&mut *connection, Operation::Send, queue)
            .await?;
        let id = sql::send(&mut *connection, queue, payload.as_str())
            .await
            .map(MessageId::Sequence)
            .map_err(|e| self.error(Operation::Send, queue, e))?;
        record_sent(&self.metrics, SYSTEM, queue, 1, began.elapsed());
        Ok(id)
    }

    /// Sends several messages to `queue` inside the caller's transaction (or on any
    /// connection), in order, in one statement with one notification: as with
    /// [`PgmqQueue::send_in`], they become visible and their notification is delivered only
    /// when that transaction commits. Returns their ids in order.
    pub async fn send_batch_in(
        &self,
        connection: &mut sqlx::PgConnection,
        queue: &QueueName,
        payloads: &[Payload],
    ) -> Result<Vec<MessageId>, QueueError> {
        for payload in payloads {
            check_size(queue, payload, self.config.messaging.max_message_bytes)?;
        }
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let bodies: Vec<&str> = payloads.iter().map(Payload::as_str).collect();
        let began = Instant::now();
        self.layout(&mut *connection, Operation::SendBatch, queue)
            .await?;
        let ids = sql::send_batch(&mut *connection, queue, &bodies)
            .await
            .map_err(|e| self.error(Operation::SendBatch, queue, e))?;
        record_sent(&self.metrics, SYSTEM, queue, ids.len(), began.elapsed());
        Ok(ids.into_iter().map(MessageId::Sequence).collect())
    }

    /// [`PgmqQueue::send_batch_in`] for several queues and [`PgmqQueue::ack_batch_in`] in one
    /// statement: the outbox of a transaction that consumed messages, in one round trip. Each
    /// queue's messages keep their order and get one notification; acknowledgement outcomes
    /// as [`MessageQueue::ack_batch`](crate::queue::MessageQueue::ack_batch)'s.
    pub async fn send_and_ack_in(
        &self,
        connection: &mut sqlx::PgConnection,
        sends: &[(&QueueName, &[Payload])],
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let mut outgoing: Vec<sql::Outgoing<'_>> = Vec::with_capacity(sends.len());
        for (queue, payloads) in sends {
            for payload in *payloads {
                check_size(queue, payload, self.config.messaging.max_message_bytes)?;
            }
            if payloads.is_empty() {
                continue;
            }
            let bodies = payloads.iter().map(Payload::as_str);
            match outgoing.iter_mut().find(|send| send.queue == *queue) {
                Some(send) => send.bodies.extend(bodies),
                None => outgoing.push(sql::Outgoing {
                    queue,
                    bodies: bodies.collect(),
                }),
            }
        }
        let mut outcomes: Vec<Option<Result<(), QueueError>>> = Vec::with_capacity(receipts.len());
        let mut removals: Vec<sql::Removal<'_>> = Vec::new();
        for receipt in receipts {
            match Self::held(receipt) {
                Ok((id, _, _)) => {
                    match removals
                        .iter_mut()
                        .find(|removal| removal.queue == &receipt.queue)
                    {
                        Some(removal) => removal.ids.push(id),
                        None => removals.push(sql::Removal {
                            queue: &receipt.queue,
                            ids: vec![id],
                        }),
                    }
                    outcomes.push(None);
                }
                Err(error) => outcomes.push(Some(Err(error))),
            }
        }
        // One statement text per combination of queues: in queue order, whatever the caller's.
        outgoing.sort_by(|a, b| a.queue.cmp(b.queue));
        removals.sort_by(|a, b| a.queue.cmp(b.queue));
        let Some(first) = outgoing
            .first()
            .map(|send| send.queue)
            .or_else(|| removals.first().map(|removal| removal.queue))
        else {
            // Nothing to send and no receipt held: every outcome is its receipt's error.
            return Ok(outcomes
                .into_iter()
                .map(|outcome| outcome.unwrap_or(Ok(())))
                .collect());
        };
        let began = Instant::now();
        self.layout(&mut *connection, Operation::SendBatch, first)
            .await?;
        let removed: HashSet<(String, i64)> = sql::send_and_remove(
            &mut *connection,
            &outgoing,
            &removals,
            self.config.ack_mode == AckMode::Archive,
        )
        .await
        .map_err(|e| self.error(Operation::SendBatch, first, e))?
        .into_iter()
        .collect();
        let latency = began.elapsed();
        for send in &outgoing {
            record_sent(
                &self.metrics,
                SYSTEM,
                send.queue,
                send.bodies.len(),
                latency,
            );
        }
        let outcomes: Vec<Result<(), QueueError>> = outcomes
            .into_iter()
            .zip(receipts)
            .map(|(outcome, receipt)| {
                outcome.unwrap_or_else(|| {
                    let (id, _, _) = Self::held(receipt)?;
                    if removed.contains(&(receipt.queue.to_string(), id)) {
                        Ok(())
                    } else {
                        Err(invalid(receipt))
                    }
                })
            })
            .collect();
        record_acked(&self.metrics, SYSTEM, receipts, &outcomes);
        Ok(outcomes)
    }

    /// Acknowledges messages inside the caller's transaction (or on any connection), one
    /// statement per queue: they are deleted (or archived, per [`AckMode`]) when that
    /// transaction commits, and a rollback leaves them in flight, to come back after their
    /// visibility timeout. Lets a consumer commit the state change a message caused together
    /// with its acknowledgement. Outcomes as
    /// [`MessageQueue::ack_batch`](crate::queue::MessageQueue::ack_batch)'s.
    pub async fn ack_batch_in(
        &self,
        connection: &mut sqlx::PgConnection,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let mut outcomes: Vec<Option<Result<(), QueueError>>> = Vec::with_capacity(receipts.len());
        let mut by_queue: BTreeMap<&QueueName, Vec<(usize, i64)>> = BTreeMap::new();
        for (index, receipt) in receipts.iter().enumerate() {
            match Self::held(receipt) {
                Ok((id, _, _)) => {
                    by_queue
                        .entry(&receipt.queue)
                        .or_default()
                        .push((index, id));
                    outcomes.push(None);
                }
                Err(error) => outcomes.push(Some(Err(error))),
            }
        }
        let archive = self.config.ack_mode == AckMode::Archive;
        if let Some(queue) = by_queue.keys().next() {
            self.layout(&mut *connection, Operation::AckBatch, queue)
                .await?;
        }
        for (queue, held) in by_queue {
            let ids: Vec<i64> = held.iter().map(|(_, id)| *id).collect();
            let removed: HashSet<i64> = sql::remove_batch(&mut *connection, queue, &ids, archive)
                .await
                .map_err(|e| self.error(Operation::AckBatch, queue, e))?
                .into_iter()
                .collect();
            for (index, id) in held {
                outcomes[index] = Some(if removed.contains(&id) {
                    Ok(())
                } else {
                    Err(invalid(&receipts[index]))
                });
            }
        }
        let outcomes: Vec<Result<(), QueueError>> = outcomes
            .into_iter()
            .map(|outcome| outcome.expect("every receipt has an outcome"))
            .collect();
        record_acked(&self.metrics, SYSTEM, receipts, &outcomes);
        Ok(outcomes)
    }

    /// Receives inside the caller's transaction, as
    /// [`MessageQueue::receive`](crate::queue::MessageQueue::receive) does on its own: the
    /// messages stay hidden, and their read counts raised, only if that transaction commits.
    /// With [`ReadCommit::Asynchronous`] (the default) a read that returns messages makes the
    /// *whole* transaction commit without waiting for the WAL flush: join it only to
    /// transactions whose loss in a server crash does no more harm than a redelivery (starting
    /// the work the messages ask for, say).
    pub async fn receive_in(
        &self,
        connection: &mut sqlx::PgConnection,
        queue: &QueueName,
        max: u16,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let asynchronous = self.config.read_commit == ReadCommit::Asynchronous;
        let began = Instant::now();
        let received = self
            .read(connection, queue, max, visibility_timeout, asynchronous)
            .await?;
        record_received(
            &self.metrics,
            SYSTEM,
            queue,
            received.len(),
            began.elapsed(),
        );
        Ok(received)
    }

    /// Takes up to `max` visible messages out of `queue` inside the caller's transaction, for
    /// a consumer whose processing commits in that same transaction: no visibility timeout
    /// and no acknowledgement, the messages are gone when it commits and back (visible at
    /// once) when it rolls back. Their receipts are spent: ack and nack report them invalid;
    /// a message that cannot be processed goes to its dead-letter queue with
    /// [`PgmqQueue::dead_letter_in`]. With [`AckMode::Archive`] the messages are read and
    /// archived instead of deleted, in the same transaction.
    pub async fn pop_in(
        &self,
        connection: &mut sqlx::PgConnection,
        queue: &QueueName,
        max: u16,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let began = Instant::now();
        if self.config.ack_mode == AckMode::Archive {
            // Hidden for an hour, then archived in this transaction: gone when it commits.
            let received = self
                .read(connection, queue, max, Duration::from_secs(3600), false)
                .await?;
            record_received(
                &self.metrics,
                SYSTEM,
                queue,
                received.len(),
                began.elapsed(),
            );
            let receipts: Vec<Receipt> = received.iter().map(|m| m.receipt.clone()).collect();
            // Counts the acknowledgements.
            self.ack_batch_in(connection, &receipts).await?;
            return Ok(received);
        }
        self.layout(&mut *connection, Operation::Receive, queue)
            .await?;
        let messages = sql::pop(&mut *connection, queue, i32::from(max))
            .await
            .map_err(|e| self.error(Operation::Receive, queue, e))?;
        let received = messages
            .into_iter()
            .map(|message| self.to_received(queue, message))
            .collect::<Result<Vec<_>, _>>()?;
        // A pop receives and acknowledges at once.
        record_received(
            &self.metrics,
            SYSTEM,
            queue,
            received.len(),
            began.elapsed(),
        );
        if !received.is_empty() {
            self.metrics
                .acked(SYSTEM, queue.as_str(), received.len() as u64);
        }
        Ok(received)
    }

    /// Moves `message`, received inside the caller's transaction ([`PgmqQueue::pop_in`] or
    /// [`PgmqQueue::receive_in`]), to its queue's dead-letter queue inside that transaction,
    /// wrapped with `reason` as [`MessageQueue::nack`](crate::queue::MessageQueue::nack) does.
    pub async fn dead_letter_in(
        &self,
        connection: &mut sqlx::PgConnection,
        message: &ReceivedMessage,
        reason: String,
    ) -> Result<(), QueueError> {
        let queue = message.queue();
        let Some(dlq) = queue.dead_letter() else {
            return Err(QueueError::NoDeadLetterQueue {
                queue: queue.clone(),
            });
        };
        let op = Operation::DeadLetter;
        let (id, _, _) = Self::held(message.receipt())?;
        let info = DeadLetterInfo {
            reason,
            source_queue: queue.to_string(),
            original_id: message.id,
            read_count: message.read_count,
            dead_lettered_at: Utc::now(),
        };
        let malformed = |e| {
            QueueError::backend(
                BackendKind::Pgmq,
                op,
                Some(queue),
                BackendError::Malformed(e),
            )
        };
        let body = String::from_utf8_lossy(&message.body).into_owned();
        let original = RawValue::from_string(body).map_err(malformed)?;
        let wrapped = serde_json::to_string(&DeadLetterOut {
            dead_letter: &info,
            message: &original,
        })
        .map_err(malformed)?;
        sql::send(&mut *connection, &dlq, &wrapped)
            .await
            .map_err(|e| self.error(op, &dlq, e))?;
        sql::remove_batch(&mut *connection, queue, &[id], false)
            .await
            .map_err(|e| self.error(op, queue, e))?;
        self.metrics.dead_lettered(SYSTEM, queue.as_str());
        Ok(())
    }
}
