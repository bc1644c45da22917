//! `orchestration.dlq`: staleness detection and the dead-letter queue.

use crate::schema::{identifier, range, section};

section! {
    /// Dead-letter handling of stuck tasks.
    pub struct DlqConfig => RawDlqConfig {
        /// Whether stuck tasks are moved to the dead-letter queue.
        enabled: bool = true;
        /// Detection of stuck (stale) tasks.
        staleness_detection: StalenessDetectionConfig = RawStalenessDetectionConfig::default();
    }
}

section! {
    /// Periodic detection of tasks that stopped making progress.
    pub struct StalenessDetectionConfig => RawStalenessDetectionConfig {
        /// Whether the detector runs.
        enabled: bool = true;
        /// Interval between detection runs, in seconds.
        detection_interval_seconds: u32 = 300, range(1, 3600);
        /// Tasks examined per run.
        batch_size: u32 = 100, range(1, 10_000);
        /// Whether stale tasks are only reported, not acted on.
        dry_run: bool = false;
        /// When a task counts as stale.
        thresholds: StalenessThresholds = RawStalenessThresholds::default();
        /// What happens to a stale task.
        actions: StalenessActions = RawStalenessActions::default();
    }
}

section! {
    /// When a task counts as stale, by state.
    pub struct StalenessThresholds => RawStalenessThresholds {
        /// Minutes in `waiting_for_dependencies`.
        waiting_for_dependencies_minutes: u32 = 60, range(1, 1440);
        /// Minutes in `waiting_for_retry`.
        waiting_for_retry_minutes: u32 = 30, range(1, 1440);
        /// Minutes with steps in process.
        steps_in_process_minutes: u32 = 30, range(1, 1440);
        /// Hours since creation after which any unfinished task is stale.
        task_max_lifetime_hours: u32 = 24, range(1, 168);
    }
}

section! {
    /// What happens to a stale task.
    pub struct StalenessActions => RawStalenessActions {
        /// Move the task to `error`.
        auto_transition_to_error: bool = true;
        /// Record the task in the dead-letter table.
        auto_move_to_dlq: bool = true;
        /// Emit a notification on `event_channel`.
        emit_events: bool = true;
        /// PostgreSQL notification channel of staleness events.
        event_channel: String = "task_staleness_detected", identifier(63);
    }
}
