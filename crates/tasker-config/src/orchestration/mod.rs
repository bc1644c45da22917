//! The `[orchestration]` section: settings read only by the orchestration service.

mod dlq;
mod root;

pub use dlq::{DlqConfig, StalenessActions, StalenessDetectionConfig, StalenessThresholds};
pub use root::{
    BatchProcessingConfig, DecisionPointsConfig, OrchestrationChannels, OrchestrationConfig,
    OrchestrationEventSystems,
};

pub(crate) use dlq::RawDlqConfig;
pub(crate) use root::RawOrchestrationConfig;
