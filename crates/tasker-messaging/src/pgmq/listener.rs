//! The LISTEN connection that turns pgmq sends into signals.
//!
//! One task per backend holds a dedicated connection (application name
//! `tasker-messaging-listener`), LISTENs on the channel of every subscribed queue and follows
//! subscriptions as they come and go. When the connection dies it reconnects by itself with
//! exponential backoff and then sends a catch-up signal for every subscribed queue, because
//! sends during the outage notified nobody. The task is owned by the backend: it stops when
//! the backend is dropped.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgNotification, PgPoolOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::sql;
use crate::config::Backoff;
use crate::queue_name::QueueName;
use crate::signal::{SignalCause, SignalHub};

/// The application name of the LISTEN connection, visible in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "tasker-messaging-listener";

/// What the LISTEN connection is doing; watch it with [`super::PgmqQueue::listener_status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerStatus {
    /// Whether the connection is up.
    pub connected: bool,
    /// How many times it connected so far (2 after the first reconnect).
    pub connections: u64,
    /// The server process id of the current connection.
    pub backend_pid: Option<i32>,
    /// The subscription version whose queues are all LISTENed to.
    pub synced_version: u64,
    /// The last connection error, if the latest attempt failed.
    pub last_error: Option<String>,
}

/// The running listener task.
#[derive(Debug)]
pub(crate) struct Listener {
    task: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    status: watch::Receiver<ListenerStatus>,
}

impl Listener {
    /// Starts the task on a dedicated one-connection pool cloned from `pool`'s options.
    pub(crate) fn start(pool: &PgPool, hub: SignalHub, backoff: Backoff) -> Self {
        let options = (*pool.connect_options())
            .clone()
            .application_name(LISTENER_APPLICATION_NAME);
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(ListenerStatus::default());
        let task = tokio::spawn(run(listener_pool, hub, backoff, status_tx, shutdown_rx));
        Self {
            task,
            shutdown,
            status,
        }
    }

    pub(crate) fn status(&self) -> watch::Receiver<ListenerStatus> {
        self.status.clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

/// Why serving a connection ended.
enum Ended {
    Shutdown,
    ConnectionLost(Option<sqlx::Error>),
}

async fn run(
    pool: PgPool,
    hub: SignalHub,
    backoff: Backoff,
    status: watch::Sender<ListenerStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut attempt: u32 = 0;
    loop {
        let connected = tokio::select! {
            _ = shutdown.changed() => return,
            connected = connect(&pool, &hub) => connected,
        };
        match connected {
            Ok((listener, listening, changes, version, pid)) => {
                attempt = 0;
                status.send_modify(|status| {
                    status.connected = true;
                    status.connections += 1;
                    status.backend_pid = Some(pid);
                    status.synced_version = version;
                    status.last_error = None;
                });
                tracing::debug!(pid, queues = listening.len(), "LISTEN connection up");
                hub.notify_all(SignalCause::CatchUp);
                let ended = serve(listener, listening, changes, &hub, &status, &mut shutdown).await;
                status.send_modify(|status| {
                    status.connected = false;
                    status.backend_pid = None;
                });
                match ended {
                    Ended::Shutdown => return,
                    Ended::ConnectionLost(error) => {
                        tracing::warn!(
                            error = error.as_ref().map(|e| e as &dyn std::error::Error),
                            "LISTEN connection lost; reconnecting"
                        );
                    }
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    attempt,
                    "LISTEN connection failed; retrying"
                );
                status.send_modify(|status| status.last_error = Some(error.to_string()));
                let delay = backoff.delay(attempt);
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// A connected listener: the LISTENed queues, the watch of subscription changes (marked seen up
/// to the version the queues reflect), that version, and the server process id.
type Connected = (
    PgListener,
    BTreeSet<QueueName>,
    watch::Receiver<u64>,
    u64,
    i32,
);

/// Connects and LISTENs on every subscribed queue's channel.
async fn connect(pool: &PgPool, hub: &SignalHub) -> Result<Connected, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.ignore_pool_close_event(true);
    let pid = sql::backend_pid(&mut listener).await?;
    // Take the version before reading the queues: a subscription arriving in between shows up
    // as a change in `serve`, never as a missed one.
    let mut changes = hub.changes();
    let version = *changes.borrow_and_update();
    let queues = hub.subscribed_queues();
    let channels: Vec<String> = queues.iter().map(sql::channel).collect();
    listener
        .listen_all(channels.iter().map(String::as_str))
        .await?;
    Ok((listener, queues, changes, version, pid))
}

async fn serve(
    mut listener: PgListener,
    mut listening: BTreeSet<QueueName>,
    mut changes: watch::Receiver<u64>,
    hub: &SignalHub,
    status: &watch::Sender<ListenerStatus>,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return Ended::Shutdown,
            changed = changes.changed() => {
                if changed.is_err() {
                    return Ended::Shutdown;
                }
                let version = *changes.borrow_and_update();
                if let Err(error) = sync(&mut listener, &mut listening, hub).await {
                    return Ended::ConnectionLost(Some(error));
                }
                status.send_modify(|status| status.synced_version = version);
            }
            // Reading a notification is cancel-safe: a partly read message stays buffered in
            // the connection.
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => dispatch(hub, &notification),
                Ok(None) => return Ended::ConnectionLost(None),
                Err(error) => return Ended::ConnectionLost(Some(error)),
            },
        }
    }
}

/// LISTENs to queues newly subscribed and UNLISTENs from queues nobody subscribes any more.
async fn sync(
    listener: &mut PgListener,
    listening: &mut BTreeSet<QueueName>,
    hub: &SignalHub,
) -> Result<(), sqlx::Error> {
    let wanted = hub.subscribed_queues();
    for queue in wanted.difference(listening) {
        listener.listen(&sql::channel(queue)).await?;
    }
    for queue in listening.difference(&wanted) {
        listener.unlisten(&sql::channel(queue)).await?;
    }
    *listening = wanted;
    Ok(())
}

fn dispatch(hub: &SignalHub, notification: &PgNotification) {
    let queue = notification
        .channel()
        .strip_prefix(sql::CHANNEL_PREFIX)
        .and_then(|name| QueueName::new(name).ok());
    match queue {
        Some(queue) => hub.notify(&queue, SignalCause::Sent),
        None => tracing::debug!(
            channel = notification.channel(),
            "ignoring a notification on a channel that is not a queue's"
        ),
    }
}
