//! The configuration roots: the complete `TaskerConfig`, and the per-service subsets that
//! the orchestration service and workers load.

use crate::{
    common::{CommonConfig, RawCommonConfig},
    orchestration::{OrchestrationConfig, RawOrchestrationConfig},
    schema::section,
    worker::{RawWorkerConfig, WorkerConfig},
};

section! {
    /// The complete configuration: every section, as loaded by
    /// [`ConfigLoader::load_from_env`](crate::ConfigLoader::load_from_env).
    ///
    /// Every section is always present: a key missing from the files takes its documented
    /// default. A service that needs only its own section loads
    /// [`OrchestrationServiceConfig`] or [`WorkerServiceConfig`] instead.
    pub struct TaskerConfig => RawTaskerConfig {
        /// Settings shared by every process.
        common: CommonConfig = RawCommonConfig::default();
        /// Settings of the orchestration service.
        orchestration: OrchestrationConfig = RawOrchestrationConfig::default();
        /// Settings of workers.
        worker: WorkerConfig = RawWorkerConfig::default();
    }
}

section! {
    /// What the orchestration service loads: `common` and `orchestration`, from
    /// `common.toml` and `orchestration.toml` only.
    pub struct OrchestrationServiceConfig => RawOrchestrationServiceConfig {
        /// Settings shared by every process.
        common: CommonConfig = RawCommonConfig::default();
        /// Settings of the orchestration service.
        orchestration: OrchestrationConfig = RawOrchestrationConfig::default();
    }
}

section! {
    /// What a worker loads: `common` and `worker`, from `common.toml` and `worker.toml` only.
    pub struct WorkerServiceConfig => RawWorkerServiceConfig {
        /// Settings shared by every process.
        common: CommonConfig = RawCommonConfig::default();
        /// Settings of workers.
        worker: WorkerConfig = RawWorkerConfig::default();
    }
}
