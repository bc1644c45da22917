//! The `[worker]` section: settings read only by workers.

mod client;
mod events;
mod root;

pub use client::{ClientAuthConfig, ClientAuthMethod, ClientTransport, OrchestrationClientConfig};
pub use events::{
    FallbackPollerConfig, InProcessEventsConfig, ListenerConfig, WorkerEventMetadata,
    WorkerEventSystemConfig, WorkerEventSystems,
};
pub use root::{
    DomainEventChannels, EventSubscriberChannels, FfiCompletionSendBreaker,
    HandlerDispatchChannels, InProcessEventChannels, LoadSheddingConfig, WorkerChannels,
    WorkerCircuitBreakers, WorkerConfig,
};

pub(crate) use client::RawOrchestrationClientConfig;
pub(crate) use events::RawWorkerEventSystems;
pub(crate) use root::RawWorkerConfig;
