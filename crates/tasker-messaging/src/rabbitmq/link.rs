//! The RabbitMQ connection and its supervisor, which reconnects with backoff after the
//! connection drops, declares the topology again and restarts the consumers.
//!
//! A [`Link`] is one connection with a publishing channel in confirm mode and one consuming
//! channel per consumed queue (prefetch applies per channel, and a failure on one queue's
//! channel cannot take the others down). Each link has a generation number; receipts carry it,
//! so a delivery from a lost connection can never be acknowledged on a new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind, Event, ExchangeKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::state::{Shared, lock};
use crate::queue_name::QueueName;
use crate::signal::SignalCause;

/// One live connection.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) generation: u64,
    pub(super) connection: Connection,
    /// Confirm mode: a publish returns once the broker has the message.
    pub(super) publish: Channel,
    consumers: Mutex<HashMap<QueueName, Channel>>,
    tasks: Mutex<JoinSet<()>>,
}

impl Link {
    /// The consuming channel of `queue`, on which its deliveries are settled.
    pub(super) fn channel(&self, queue: &QueueName) -> Option<Channel> {
        lock(&self.consumers).get(queue).cloned()
    }

    /// Stops consuming `queue` (its channel closes; unacknowledged deliveries go back).
    pub(super) async fn stop_consuming(&self, queue: &QueueName) {
        let channel = lock(&self.consumers).remove(queue);
        if let Some(channel) = channel {
            let _ = channel.close(200, "queue deleted".into()).await;
        }
    }

    fn consumes(&self, queue: &QueueName) -> bool {
        lock(&self.consumers).contains_key(queue)
    }
}

/// Opens a channel. lapin may hand out the id of a channel that is still closing and then
/// fail the open with `InvalidChannelState(Closing)`; that race passes on the next try.
pub(super) async fn open_channel(connection: &Connection) -> lapin::Result<Channel> {
    let mut tries = 0;
    loop {
        match connection.create_channel().await {
            Err(error)
                if tries < 5 && matches!(error.kind(), ErrorKind::InvalidChannelState(..)) =>
            {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5 * tries)).await;
            }
            other => return other,
        }
    }
}

/// The broker's name of `queue`: the configured deployment prefix, then the name.
pub(super) fn amqp_name(prefix: &str, queue: &QueueName) -> String {
    format!("{prefix}{queue}")
}

/// The exchange that dead-letters `queue`'s messages into its DLQ.
pub(super) fn dead_letter_exchange(prefix: &str, queue: &QueueName) -> String {
    format!("{prefix}{queue}_dlx")
}

/// Whether an AMQP error is the broker's NOT_FOUND (a missing queue or exchange).
pub(super) fn is_not_found(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ProtocolError(error)
            if matches!(error.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
    )
}

fn quorum() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    arguments
}

/// Declares `queue` (durable, quorum) and, unless it is a DLQ itself, its dead-letter exchange
/// `<queue>_dlx` and dead-letter queue `<queue>_dlq`, with the queue dead-lettering into them.
/// Uses a channel of its own, because a failed declaration closes its channel.
pub(super) async fn declare(
    connection: &Connection,
    prefix: &str,
    queue: &QueueName,
) -> lapin::Result<()> {
    let channel = open_channel(connection).await?;
    let name = amqp_name(prefix, queue);
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let mut arguments = quorum();
    if let Some(dlq) = queue.dead_letter() {
        let exchange = dead_letter_exchange(prefix, queue);
        let dlq = amqp_name(prefix, &dlq);
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(dlq.as_str().into(), durable, quorum())
            .await?;
        channel
            .queue_bind(
                dlq.as_str().into(),
                exchange.as_str().into(),
                name.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(exchange.into()),
        );
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(name.as_str().into()),
        );
    }
    channel
        .queue_declare(name.as_str().into(), durable, arguments)
        .await?;
    let _ = channel.close(200, "declared".into()).await;
    Ok(())
}

/// The number of ready messages in `queue`, by a passive declaration on a channel of its own.
pub(super) async fn ready_count(
    connection: &Connection,
    prefix: &str,
    queue: &QueueName,
) -> lapin::Result<u32> {
    let channel = open_channel(connection).await?;
    let declared = channel
        .queue_declare(
            amqp_name(prefix, queue).as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let _ = channel.close(200, "inspected".into()).await;
    Ok(declared.message_count())
}

async fn connect(shared: &Arc<Shared>, uri: &AMQPUri, generation: u64) -> lapin::Result<Link> {
    let properties = ConnectionProperties::default()
        .with_connection_name(shared.config.connection_name.clone().into());
    let connection = Connection::connect_uri(uri.clone(), properties).await?;
    let publish = connection.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let declared: Vec<QueueName> = lock(&shared.declared).iter().cloned().collect();
    for queue in &declared {
        declare(&connection, &shared.config.queue_prefix, queue).await?;
    }
    Ok(Link {
        generation,
        connection,
        publish,
        consumers: Mutex::new(HashMap::new()),
        tasks: Mutex::new(JoinSet::new()),
    })
}

/// Starts consuming `queue` on `link` (idempotent): a channel with the configured prefetch, and
/// a task moving deliveries into the backend's buffer and signalling subscribers.
pub(super) async fn start_consumer(
    shared: &Arc<Shared>,
    link: &Link,
    queue: &QueueName,
) -> lapin::Result<()> {
    if link.consumes(queue) {
        return Ok(());
    }
    let channel = open_channel(&link.connection).await?;
    channel
        .basic_qos(shared.config.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("tasker-{}-{}", queue, uuid::Uuid::now_v7().simple());
    let mut consumer = channel
        .basic_consume(
            amqp_name(&shared.config.queue_prefix, queue)
                .as_str()
                .into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let duplicate = {
        let mut consumers = lock(&link.consumers);
        if consumers.contains_key(queue) {
            true
        } else {
            consumers.insert(queue.clone(), channel.clone());
            false
        }
    };
    if duplicate {
        // Another caller started one meanwhile; this channel's consumer goes with the channel.
        let _ = channel.close(200, "duplicate consumer".into()).await;
        return Ok(());
    }
    let generation = link.generation;
    let queue = queue.clone();
    let task_shared = Arc::clone(shared);
    lock(&link.tasks).spawn(async move {
        while let Some(delivery) = consumer.next().await {
            match delivery {
                Ok(delivery) => {
                    task_shared.buffer(&queue, generation, delivery);
                    task_shared.hub.notify(&queue, SignalCause::Sent);
                }
                Err(error) => {
                    tracing::warn!(
                        %queue,
                        error = &error as &dyn std::error::Error,
                        "consumer failed"
                    );
                    break;
                }
            }
        }
        // A consumer stopped on purpose (its queue deleted) is not a broken link.
        if lock(&task_shared.consumed).contains(&queue) {
            task_shared.report_broken(generation);
        }
    });
    Ok(())
}

/// Keeps a link up until `shutdown` changes: connects (with backoff after failures), restarts
/// the consumers, sends a catch-up signal, and starts over when the link breaks.
pub(super) async fn supervise(
    shared: Arc<Shared>,
    uri: AMQPUri,
    mut broken: mpsc::UnboundedReceiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut generation: u64 = 0;
    let mut attempt: u32 = 0;
    loop {
        generation += 1;
        let connected = tokio::select! {
            _ = shutdown.changed() => return,
            connected = connect(&shared, &uri, generation) => connected,
        };
        let link = match connected {
            Ok(link) => Arc::new(link),
            Err(error) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    attempt,
                    "connecting to RabbitMQ failed; retrying"
                );
                shared.set_link(|state| state.last_error = Some(error.to_string()));
                let delay = shared.config.reconnect_backoff.delay(attempt);
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                continue;
            }
        };
        attempt = 0;
        let mut events = link.connection.events_listener();
        let consumed: Vec<QueueName> = lock(&shared.consumed).iter().cloned().collect();
        for queue in &consumed {
            if let Err(error) = start_consumer(&shared, &link, queue).await {
                tracing::warn!(
                    %queue,
                    error = &error as &dyn std::error::Error,
                    "could not resume consuming; dropping the queue from the consumed set"
                );
                lock(&shared.consumed).remove(queue);
            }
        }
        shared.set_link(|state| {
            state.link = Some(Arc::clone(&link));
            state.connections += 1;
            state.last_error = None;
        });
        tracing::debug!(generation, "RabbitMQ link up");
        shared.hub.notify_all(SignalCause::CatchUp);
        let reason = loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    shared.set_link(|state| state.link = None);
                    let _ = link.connection.close(200, "shutting down".into()).await;
                    return;
                }
                failed = broken.recv() => match failed {
                    Some(failed) if failed == generation => break "an operation or consumer failed".to_owned(),
                    Some(_) => {}
                    None => return,
                },
                event = events.next() => match event {
                    Some(Event::Error(error)) => break error.to_string(),
                    Some(_) => {}
                    None => break "the connection closed".to_owned(),
                },
            }
        };
        tracing::warn!(generation, %reason, "RabbitMQ link lost; reconnecting");
        shared.set_link(|state| {
            state.link = None;
            state.last_error = Some(reason);
        });
        shared.forget_generation(generation);
        lock(&link.tasks).abort_all();
        if link.connection.status().connected() {
            let _ = link.connection.close(200, "reconnecting".into()).await;
        }
    }
}
