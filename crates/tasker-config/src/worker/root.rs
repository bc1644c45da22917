//! `WorkerConfig`, its circuit breaker and its channels.

use super::{
    OrchestrationClientConfig, RawOrchestrationClientConfig, RawWorkerEventSystems,
    WorkerEventSystems,
};
use crate::{
    channels::{
        CommandProcessorChannels, EventListenerChannels, EventSystemChannels,
        RawCommandProcessorChannels, RawEventListenerChannels, RawEventSystemChannels,
    },
    grpc::{GrpcConfig, RawGrpcConfig},
    problem::Relation,
    schema::{NON_EMPTY, frange, range, section},
    web::{RawAuthConfig, RawWebConfig, RawWebDatabasePools, WebConfig},
};

section! {
    /// Settings read only by workers.
    pub struct WorkerConfig => RawWorkerConfig {
        /// Identifier of this worker in logs, metrics and step claims.
        worker_id: String = "worker-default-001", NON_EMPTY;
        /// Kind of worker (free-form label).
        worker_type: String = "general", NON_EMPTY;
        /// Circuit breakers of the worker.
        circuit_breakers: WorkerCircuitBreakers = RawWorkerCircuitBreakers::default();
        /// The worker's event systems.
        event_systems: WorkerEventSystems = RawWorkerEventSystems::default();
        /// In-process channel buffers.
        mpsc_channels: WorkerChannels = RawWorkerChannels::default();
        /// Client of the orchestration API.
        orchestration_client: OrchestrationClientConfig = RawOrchestrationClientConfig::default();
        /// The worker's HTTP API.
        web: WebConfig = RawWebConfig {
            bind_address: "${TASKER_WORKER_WEB_BIND_ADDRESS:-0.0.0.0:8081}".to_owned(),
            database_pools: RawWebDatabasePools {
                web_api_pool_size: 10,
                web_api_max_connections: 15,
                max_total_connections_hint: 25,
                ..RawWebDatabasePools::default()
            },
            auth: RawAuthConfig {
                jwt_issuer: "tasker-worker".to_owned(),
                jwt_audience: "worker-api".to_owned(),
                ..RawAuthConfig::default()
            },
            ..RawWebConfig::default()
        };
        /// The worker's gRPC API.
        grpc: GrpcConfig = RawGrpcConfig {
            bind_address: "${TASKER_WORKER_GRPC_BIND_ADDRESS:-0.0.0.0:9191}".to_owned(),
            max_concurrent_streams: 1000,
            ..RawGrpcConfig::default()
        };
    }
    cross(raw, v) {
        if raw.web.enabled && raw.grpc.enabled && crate::types::same_listener(&raw.web.bind_address, &raw.grpc.bind_address) {
            v.relation(
                "grpc.bind_address",
                &raw.grpc.bind_address,
                Relation::DifferentFrom,
                "web.bind_address",
                &raw.web.bind_address,
            );
        }
    }
}

section! {
    /// Circuit breakers of the worker.
    pub struct WorkerCircuitBreakers => RawWorkerCircuitBreakers {
        /// Sending step completions from FFI handlers back to Rust.
        ffi_completion_send: FfiCompletionSendBreaker = RawFfiCompletionSendBreaker::default();
    }
}

section! {
    /// Circuit breaker on sending FFI step completions.
    pub struct FfiCompletionSendBreaker => RawFfiCompletionSendBreaker {
        /// Consecutive failures that open the breaker.
        failure_threshold: u32 = 5, range(1, 100);
        /// Time an open breaker waits before a trial send, in seconds.
        recovery_timeout_seconds: u32 = 5, range(1, 300);
        /// Consecutive successes that close the breaker.
        success_threshold: u32 = 2, range(1, 100);
        /// A send slower than this counts as a failure, in milliseconds.
        slow_send_threshold_ms: u32 = 100, range(10, 10_000);
    }
}

section! {
    /// In-process channel buffers of a worker.
    pub struct WorkerChannels => RawWorkerChannels {
        /// The command processor.
        command_processor: CommandProcessorChannels = RawCommandProcessorChannels { command_buffer_size: 2000 };
        /// The event systems.
        event_systems: EventSystemChannels = RawEventSystemChannels { event_channel_buffer_size: 2000 };
        /// Event subscribers.
        event_subscribers: EventSubscriberChannels = RawEventSubscriberChannels::default();
        /// The in-process event bus.
        in_process_events: InProcessEventChannels = RawInProcessEventChannels::default();
        /// The notification listener.
        event_listeners: EventListenerChannels = RawEventListenerChannels { pgmq_event_buffer_size: 10_000 };
        /// Domain events published by handlers.
        domain_events: DomainEventChannels = RawDomainEventChannels::default();
        /// Dispatch of steps to handlers.
        handler_dispatch: HandlerDispatchChannels = RawHandlerDispatchChannels::default();
    }
}

section! {
    /// Event subscriber channels.
    pub struct EventSubscriberChannels => RawEventSubscriberChannels {
        /// Capacity of the completion channel.
        completion_buffer_size: u32 = 1000, range(10, 1_000_000);
        /// Capacity of the result channel.
        result_buffer_size: u32 = 1000, range(10, 1_000_000);
    }
}

section! {
    /// The in-process event bus.
    pub struct InProcessEventChannels => RawInProcessEventChannels {
        /// Capacity of the broadcast channel.
        broadcast_buffer_size: u32 = 2000, range(100, 1_000_000);
        /// Whether errors of subscribers are logged.
        log_subscriber_errors: bool = true;
        /// Longest time to hand an event to subscribers, in milliseconds.
        dispatch_timeout_ms: u32 = 5000, range(100, 60_000);
    }
}

section! {
    /// Domain events published by handlers.
    pub struct DomainEventChannels => RawDomainEventChannels {
        /// Capacity of the domain event channel.
        command_buffer_size: u32 = 1000, range(10, 1_000_000);
        /// Time to drain pending events on shutdown, in milliseconds.
        shutdown_drain_timeout_ms: u32 = 5000, range(100, 60_000);
        /// Whether dropped events are logged.
        log_dropped_events: bool = true;
    }
}

section! {
    /// Dispatch of steps to handlers.
    pub struct HandlerDispatchChannels => RawHandlerDispatchChannels {
        /// Capacity of the dispatch channel.
        dispatch_buffer_size: u32 = 1000, range(10, 1_000_000);
        /// Capacity of the completion channel.
        completion_buffer_size: u32 = 1000, range(10, 1_000_000);
        /// Handlers running at once.
        max_concurrent_handlers: u32 = 10, range(1, 10_000);
        /// Longest run of one handler, in milliseconds.
        handler_timeout_ms: u32 = 30_000, range(1000, 3_600_000);
        /// Refusing work when the worker is near capacity.
        load_shedding: LoadSheddingConfig = RawLoadSheddingConfig::default();
    }
}

section! {
    /// Refusing work when the worker is near capacity.
    pub struct LoadSheddingConfig => RawLoadSheddingConfig {
        /// Whether load shedding is on.
        enabled: bool = true;
        /// Handler capacity used (percent) above which new work is refused.
        capacity_threshold_percent: f64 = 80.0, frange(0.0, 100.0);
        /// Handler capacity used (percent) above which a warning is logged.
        warning_threshold_percent: f64 = 70.0, frange(0.0, 100.0);
    }
    cross(raw, v) {
        v.le(
            "warning_threshold_percent",
            &raw.warning_threshold_percent,
            "capacity_threshold_percent",
            &raw.capacity_threshold_percent,
        );
    }
}
