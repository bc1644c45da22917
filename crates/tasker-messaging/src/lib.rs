//! Tasker's message queues: steps travel to workers and results travel back over them. A
//! message may be delivered more than once, but it is never lost, and a dead connection heals
//! itself.
//!
//! Entry points:
//! - [`queue::MessageQueue`], the one narrow interface, with three backends:
//!   [`pgmq::PgmqQueue`] (PostgreSQL with pgmq, the default), [`rabbitmq::RabbitMqQueue`] (AMQP
//!   via lapin) and [`memory::InMemoryQueue`] (tests and the embedded mode). They pass one
//!   conformance suite (`tests/it`).
//! - [`pgmq::PgmqQueue`]'s transactional operations: `send_in`, `send_batch_in`,
//!   `ack_batch_in`, `send_and_ack_in`, `receive_in`, `pop_in` and `dead_letter_in` join the
//!   caller's PostgreSQL transaction, so a state change, the messages announcing it and the
//!   consumption of the messages that caused it commit together.
//! - [`queue_name::QueueName`] and the queue-name functions in [`queue_name`]
//!   (`worker_<ns>_queue`, `orchestration_step_results`, ...): the only way a name reaches SQL
//!   or AMQP.
//! - [`envelope::Payload::encode`] and [`queue::ReceivedMessage::decode`]: the versioned JSON
//!   envelope around the message types in [`messages`].
//! - [`instrumented::InstrumentedQueue`] records a backend's traffic into tasker-metrics
//!   (`PgmqQueue::with_metrics` for PGMQ, whose transactional operations bypass the trait).
//! - [`consumer::Consumer`]: receives, decodes and dispatches to a handler, acking only after
//!   the handler succeeded and dead-lettering what cannot be decoded, in the deployment mode
//!   (`polling`, `event_driven`, `hybrid`) from [`config::MessagingConfig`].
//!
//! Items are reached through their modules; the crate root re-exports nothing.
//!
//! Of the workspace, this crate depends on tasker-models, the vocabulary (and tasker-state,
//! tasker-resilience for the breaker, tasker-metrics for the instruments): a queue
//! namespace is its `NamespaceName`, so the namespace rule has one implementation. It depends
//! on no other adapter: the PGMQ backend takes a `PgPool` from its caller, and the composition
//! root maps Tasker's configuration onto [`config`]'s types. Its only SQL is pgmq's functions
//! and LISTEN/NOTIFY, confined to the PGMQ backend's `sql` module.

pub mod config;
pub mod consumer;
pub mod envelope;
pub mod error;
pub mod guarded;
pub mod instrumented;
pub mod memory;
pub mod messages;
pub mod outbox;
pub mod pgmq;
pub mod queue;
pub mod queue_name;
pub mod rabbitmq;
pub mod retry;
pub mod shutdown;
pub mod signal;
