//! Task templates: the YAML format users describe workflows in, its loader and validator,
//! and the derived graph views.
//!
//! Loading runs in two stages. The YAML is parsed into a generic value first (by the crate's
//! own reader for the block-style subset templates are written in, by `serde_yaml_ng` for
//! anything else; both give the same value, see `yaml.rs`), so that unknown keys, older key
//! spellings (aliases) and type mismatches are reported with their YAML paths; then the
//! cross-step rules run (dependencies, cycles, step types, batch wiring, overrides). Every problem is collected, never just the first. A template that passes is a
//! [`ValidatedTemplate`], whose [`StepGraph`] views are computed once.
//!
//! Entry points: [`ValidatedTemplate::from_yaml_str`], [`ValidatedTemplate::from_path`],
//! [`load_directory`] and [`ValidatedTemplate::from_json_value`].

mod event;
mod graph;
mod limits;
mod load;
mod model;
mod pointer;
mod problem;
mod raw;
mod raw_step;
mod reader;
mod schema;
mod step;
mod validate;
mod validated;
mod value;
mod yaml;

pub use event::{
    DeliveryMode, DomainEventDefinition, EVENT_NAME_MAX_LEN, EventCondition, EventDeclaration,
    EventName, InvalidEventName,
};
pub use graph::StepGraph;
pub use limits::{LimitBreach, TemplateLimit, TemplateLimits, prescan};
pub use load::{
    DirectoryReport, DuplicateTemplate, FileOutcome, LoadedTemplate, MAX_TEMPLATE_BYTES,
    Strictness, TemplateError, is_template_file, load_directory,
};
pub use model::{
    ALL_STEPS, EnvironmentOverrides, HandlerOverride, LifecycleConfig, MAX_DURATION_MINUTES_RANGE,
    OverrideTarget, RetryOverride, STATE_THRESHOLD_MINUTES_RANGE, StalenessAction, StepOverride,
    SystemDependencies, TaskTemplate, TemplateMetadata,
};
pub use problem::{Problem, Problems, Rule, Severity};
pub use raw::DESCRIPTION_MAX_LEN;
pub use raw_step::{CALLABLE_MAX_LEN, TIMEOUT_MAX_SECONDS};
pub use schema::{CompiledSchema, JsonSchema, SchemaIssue, SchemaViolation};
pub use step::{
    BATCH_PARALLELISM_RANGE, BATCH_SIZE_RANGE, BackoffKind, BatchConfig, DEFAULT_HANDLER_METHOD,
    DEFAULT_MAX_ATTEMPTS, FailureStrategy, HandlerDefinition, MAX_ATTEMPTS_LIMIT,
    MAX_BACKOFF_LIMIT_MS, RetryPolicy, StepDefinition, StepType,
};
pub use validated::ValidatedTemplate;

#[cfg(test)]
mod tests;
