//! The settings of the messaging crate, with their defaults as named constants.
//!
//! These types belong to this crate; the composition root maps Tasker's configuration onto
//! them, so this crate does not depend on the config crate.

use std::fmt;
use std::time::Duration;

/// Default maximum size of one message: 256 KiB. Tasker's messages carry identifiers; a message
/// near this size is almost certainly a mistake.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Default limit on a consumer's receive or settle call.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Default visibility timeout of a received message.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of messages a consumer takes per receive.
pub const DEFAULT_BATCH_SIZE: u16 = 10;
/// Default interval between polls in [`DeploymentMode::Polling`].
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Default interval of the safety-net poll in [`DeploymentMode::Hybrid`].
pub const DEFAULT_FALLBACK_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Default first delay before reconnecting a lost connection (LISTEN or AMQP).
pub const DEFAULT_RECONNECT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Default cap of the reconnect delay, which doubles after each failed attempt.
pub const DEFAULT_RECONNECT_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Default number of unacknowledged messages RabbitMQ delivers to one consumer.
pub const DEFAULT_PREFETCH: u16 = 50;
/// Default AMQP heartbeat.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
/// Default time an operation waits for a lost AMQP connection to come back before failing.
pub const DEFAULT_RECONNECT_WAIT: Duration = Duration::from_secs(10);
/// Default AMQP URL: a local broker with the guest account.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How consumers learn that a queue has messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeploymentMode {
    /// Poll every `poll_interval`.
    Polling,
    /// Wait for the backend's "queue has messages" signals.
    EventDriven,
    /// Signals, plus a poll every `fallback_poll_interval` as a safety net.
    #[default]
    Hybrid,
}

impl DeploymentMode {
    /// The spelling used in configuration: `polling`, `event_driven` or `hybrid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::EventDriven => "event_driven",
            Self::Hybrid => "hybrid",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(text: &str) -> Result<Self, UnknownDeploymentMode> {
        match text {
            "polling" => Ok(Self::Polling),
            "event_driven" => Ok(Self::EventDriven),
            "hybrid" => Ok(Self::Hybrid),
            other => Err(UnknownDeploymentMode {
                found: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for DeploymentMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A deployment mode that is not one of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown deployment mode {found:?}; expected polling, event_driven or hybrid")]
pub struct UnknownDeploymentMode {
    /// The text found.
    pub found: String,
}

/// Settings shared by every backend and by consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingConfig {
    /// How consumers learn about new messages.
    pub deployment_mode: DeploymentMode,
    /// The largest payload a backend accepts, in bytes.
    pub max_message_bytes: usize,
    /// How long a received message stays invisible to other consumers.
    pub visibility_timeout: Duration,
    /// How many messages a consumer takes per receive.
    pub batch_size: u16,
    /// The poll interval in [`DeploymentMode::Polling`].
    pub poll_interval: Duration,
    /// The safety-net poll interval in [`DeploymentMode::Hybrid`].
    pub fallback_poll_interval: Duration,
    /// The longest a consumer waits for the backend to receive or settle messages before the
    /// call fails as [`QueueError::TimedOut`](crate::error::QueueError::TimedOut) (transient).
    pub operation_timeout: Duration,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            deployment_mode: DeploymentMode::default(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            batch_size: DEFAULT_BATCH_SIZE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            fallback_poll_interval: DEFAULT_FALLBACK_POLL_INTERVAL,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }
}

/// What the PGMQ backend does with an acknowledged message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AckMode {
    /// Delete it. The default: the archive grows without bound unless something prunes it.
    #[default]
    Delete,
    /// Move it to pgmq's archive table `pgmq.a_<queue>`, for audit.
    Archive,
}

/// Whether a PGMQ read waits for its commit to reach the disk.
///
/// A read only moves a message's visibility deadline and read count. Losing that in a server
/// crash makes the message visible again at once: a redelivery, which at-least-once delivery
/// allows anyway. So by default a read commits without waiting for the WAL flush, which on a
/// busy server is most of a read's latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadCommit {
    /// Commit without waiting for the WAL flush (`synchronous_commit = off` for the read's
    /// transaction only).
    #[default]
    Asynchronous,
    /// Wait for the flush, like any other transaction.
    Synchronous,
}

/// Exponential backoff between reconnect attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The cap; the delay doubles after each failed attempt up to this.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: DEFAULT_RECONNECT_INITIAL_BACKOFF,
            max: DEFAULT_RECONNECT_MAX_BACKOFF,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0 for the first retry), with up to 25 % jitter so that
    /// many processes do not reconnect in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        let base = self.initial.saturating_mul(factor).min(self.max);
        let jitter = rand::random_range(0.0..0.25);
        base.mul_f64(1.0 - jitter)
    }
}

/// Settings of the PGMQ backend.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgmqConfig {
    /// Settings shared by every backend.
    pub messaging: MessagingConfig,
    /// Delete or archive on ack.
    pub ack_mode: AckMode,
    /// Whether reads wait for their commit to reach the disk.
    pub read_commit: ReadCommit,
    /// Backoff of the LISTEN connection's reconnects.
    pub listener_backoff: Backoff,
}

/// Settings of the RabbitMQ backend.
#[derive(Clone, PartialEq, Eq)]
pub struct RabbitMqConfig {
    /// Settings shared by every backend.
    pub messaging: MessagingConfig,
    /// The broker's URL; it may hold a password, so it is never printed.
    pub url: String,
    /// How many unacknowledged messages the broker delivers to each consumer.
    pub prefetch: u16,
    /// The AMQP heartbeat; a dead peer is noticed within about twice this.
    pub heartbeat: Duration,
    /// Backoff between reconnect attempts.
    pub reconnect_backoff: Backoff,
    /// How long an operation waits for a lost connection to come back before failing.
    pub reconnect_wait: Duration,
    /// The connection name shown by the broker.
    pub connection_name: String,
    /// Put before every queue and exchange name on the broker, so that deployments sharing a
    /// broker never share queues (for example `tasker_production.`). Letters, digits, `_`,
    /// `.` and `-`, at most [`RabbitMqConfig::MAX_PREFIX_LEN`] characters; may be empty.
    pub queue_prefix: String,
}

impl RabbitMqConfig {
    /// The longest queue prefix: with the longest queue name it stays within AMQP's 255 bytes.
    pub const MAX_PREFIX_LEN: usize = 128;

    /// Checks [`RabbitMqConfig::queue_prefix`].
    pub fn validate_prefix(prefix: &str) -> Result<(), InvalidPrefix> {
        let bad = prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
        if let Some(found) = bad {
            return Err(InvalidPrefix {
                prefix: prefix.to_owned(),
                problem: format!("it contains {found:?}; use letters, digits, '_', '.' and '-'"),
            });
        }
        if prefix.len() > Self::MAX_PREFIX_LEN {
            return Err(InvalidPrefix {
                prefix: prefix.to_owned(),
                problem: format!(
                    "it is {} characters long; the limit is {}",
                    prefix.len(),
                    Self::MAX_PREFIX_LEN
                ),
            });
        }
        Ok(())
    }
}

/// A RabbitMQ queue prefix that breaks the rules of [`RabbitMqConfig::queue_prefix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RabbitMQ queue prefix {prefix:?}: {problem}")]
pub struct InvalidPrefix {
    /// The prefix.
    pub prefix: String,
    /// What is wrong with it.
    pub problem: String,
}

impl Default for RabbitMqConfig {
    fn default() -> Self {
        Self {
            messaging: MessagingConfig::default(),
            url: DEFAULT_AMQP_URL.to_owned(),
            prefetch: DEFAULT_PREFETCH,
            heartbeat: DEFAULT_HEARTBEAT,
            reconnect_backoff: Backoff::default(),
            reconnect_wait: DEFAULT_RECONNECT_WAIT,
            connection_name: "tasker-messaging".to_owned(),
            queue_prefix: String::new(),
        }
    }
}

impl fmt::Debug for RabbitMqConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitMqConfig")
            .field("messaging", &self.messaging)
            .field("url", &redact_url(&self.url))
            .field("prefetch", &self.prefetch)
            .field("heartbeat", &self.heartbeat)
            .field("reconnect_backoff", &self.reconnect_backoff)
            .field("reconnect_wait", &self.reconnect_wait)
            .field("connection_name", &self.connection_name)
            .field("queue_prefix", &self.queue_prefix)
            .finish()
    }
}

/// The URL with any password replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
