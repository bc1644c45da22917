//! `OrchestrationConfig` and its small sections.

use super::{DlqConfig, RawDlqConfig};
use crate::{
    channels::{
        CommandProcessorChannels, EventListenerChannels, EventSystemChannels,
        RawCommandProcessorChannels, RawEventListenerChannels, RawEventSystemChannels,
    },
    event_system::{EventSystemConfig, RawEventProcessing, RawEventSystemConfig},
    grpc::{GrpcConfig, RawGrpcConfig},
    problem::Relation,
    schema::{range, section},
    web::{RawWebConfig, WebConfig},
};

section! {
    /// Settings read only by the orchestration service.
    pub struct OrchestrationConfig => RawOrchestrationConfig {
        /// Whether per-operation timings are logged.
        enable_performance_logging: bool = true;
        /// Time allowed for a graceful shutdown, in milliseconds.
        shutdown_timeout_ms: u32 = 30_000, range(1000, 300_000);
        /// The orchestration and task readiness event systems.
        event_systems: OrchestrationEventSystems = RawOrchestrationEventSystems::default();
        /// Limits of decision-point steps that add steps at run time.
        decision_points: DecisionPointsConfig = RawDecisionPointsConfig::default();
        /// Staleness detection and dead-letter handling.
        dlq: DlqConfig = RawDlqConfig::default();
        /// Batch processing of batchable steps.
        batch_processing: BatchProcessingConfig = RawBatchProcessingConfig::default();
        /// In-process channel buffers.
        mpsc_channels: OrchestrationChannels = RawOrchestrationChannels::default();
        /// The orchestration HTTP API.
        web: WebConfig = RawWebConfig {
            bind_address: "${TASKER_ORCHESTRATION_WEB_BIND_ADDRESS:-0.0.0.0:8080}".to_owned(),
            ..RawWebConfig::default()
        };
        /// The orchestration gRPC API.
        grpc: GrpcConfig = RawGrpcConfig {
            bind_address: "${TASKER_ORCHESTRATION_GRPC_BIND_ADDRESS:-0.0.0.0:9190}".to_owned(),
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
    /// The orchestration service's event systems.
    pub struct OrchestrationEventSystems => RawOrchestrationEventSystems {
        /// Processing of orchestration queue messages (task requests, step results,
        /// finalizations).
        orchestration: EventSystemConfig = RawEventSystemConfig::default();
        /// Discovery of tasks with ready steps.
        task_readiness: EventSystemConfig = RawEventSystemConfig {
            system_id: "task-readiness-event-system".to_owned(),
            processing: RawEventProcessing {
                max_concurrent_operations: 100,
                batch_size: 50,
                ..RawEventProcessing::default()
            },
            ..RawEventSystemConfig::default()
        };
    }
}

section! {
    /// Limits of decision-point steps, which create steps at run time.
    pub struct DecisionPointsConfig => RawDecisionPointsConfig {
        /// Whether decision points may create steps.
        enabled: bool = true;
        /// Most steps one decision may create.
        max_steps_per_decision: u32 = 100, range(1, 1000);
        /// Deepest nesting of decisions.
        max_decision_depth: u32 = 20, range(1, 100);
        /// Step count above which a decision logs a warning.
        warn_threshold_steps: u32 = 50, range(1, 1000);
        /// Depth above which a decision logs a warning.
        warn_threshold_depth: u32 = 10, range(1, 100);
        /// Whether each decision is logged in detail.
        enable_detailed_logging: bool = false;
        /// Whether decision metrics are recorded.
        enable_metrics: bool = true;
    }
    cross(raw, v) {
        v.le("warn_threshold_steps", &raw.warn_threshold_steps, "max_steps_per_decision", &raw.max_steps_per_decision);
        v.le("warn_threshold_depth", &raw.warn_threshold_depth, "max_decision_depth", &raw.max_decision_depth);
    }
}

section! {
    /// Batch processing of batchable steps.
    pub struct BatchProcessingConfig => RawBatchProcessingConfig {
        /// Whether batchable steps are split into batches; templates with batchable steps
        /// fail to load when this is off.
        enabled: bool = true;
        /// Batches of one step processed at once.
        max_parallel_batches: u32 = 50, range(1, 1000);
        /// Items per batch unless the template says otherwise.
        default_batch_size: u32 = 1000, range(1, 100_000);
        /// Minutes without a checkpoint after which a batch counts as stalled.
        checkpoint_stall_minutes: u32 = 15, range(1, 1440);
    }
}

section! {
    /// In-process channel buffers of the orchestration service.
    pub struct OrchestrationChannels => RawOrchestrationChannels {
        /// The command processor.
        command_processor: CommandProcessorChannels = RawCommandProcessorChannels::default();
        /// The event systems.
        event_systems: EventSystemChannels = RawEventSystemChannels::default();
        /// The notification listener.
        event_listeners: EventListenerChannels = RawEventListenerChannels::default();
    }
}
