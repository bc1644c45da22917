//! First-stage reading of steps and environment overrides (see `raw.rs`).

use std::fmt;

use crate::names::StepName;

use super::event::{DeliveryMode, EventCondition, EventDeclaration, is_valid_publisher};
use super::model::{ALL_STEPS, HandlerOverride, OverrideTarget, RetryOverride, StepOverride};
use super::problem::Rule;
use super::raw::{
    DESCRIPTION_MAX_LEN, TEXT_MAX_LEN, identifier, read_event_name, read_schema, required,
};
use super::reader::{
    Cx, Keys, Path, aliased_field, boolean, bounded_string, check_keys, choice, field, integer,
    mapping, sequence, string, to_json,
};
use super::schema::JsonSchema;
use super::step::{
    BATCH_PARALLELISM_RANGE, BATCH_SIZE_RANGE, BackoffKind, BatchConfig, FailureStrategy,
    HandlerDefinition, MAX_ATTEMPTS_LIMIT, MAX_BACKOFF_LIMIT_MS, RetryPolicy, StepType,
};
use super::value::{Mapping, Value};

/// Longest `handler.callable`.
pub const CALLABLE_MAX_LEN: usize = 500;
/// Longest step timeout: one week.
pub const TIMEOUT_MAX_SECONDS: u64 = 604_800;

const STEP_KEYS: Keys = Keys {
    known: &[
        "name",
        "description",
        "handler",
        "type",
        "system_dependency",
        "dependencies",
        "retry",
        "timeout_seconds",
        "publishes_events",
        "batch_config",
        "result_schema",
        "composition",
    ],
    aliases: &[("step_type", "type"), ("depends_on", "dependencies")],
};
const HANDLER_KEYS: Keys = Keys::new(&["callable", "method", "resolver", "initialization"]);
const RETRY_KEYS: Keys = Keys {
    known: &[
        "retryable",
        "max_attempts",
        "backoff",
        "backoff_base_ms",
        "max_backoff_ms",
    ],
    aliases: &[("limit", "max_attempts")],
};
const EVENT_KEYS: Keys = Keys::new(&[
    "name",
    "description",
    "condition",
    "schema",
    "delivery_mode",
    "publisher",
]);
const BATCH_KEYS: Keys = Keys::new(&[
    "batch_size",
    "parallelism",
    "cursor_field",
    "worker_template",
    "failure_strategy",
]);
const OVERRIDE_KEYS: Keys = Keys::new(&["name", "handler", "timeout_seconds", "retry"]);
const OVERRIDE_HANDLER_KEYS: Keys = Keys::new(&["initialization"]);

/// A step as far as it could be read. `name` is the raw text even when it breaks the
/// identifier rule, so that dependencies on it still resolve and problems do not cascade.
#[derive(Debug)]
pub(crate) struct DraftStep<'v> {
    pub(crate) index: usize,
    pub(crate) name: Option<&'v str>,
    pub(crate) valid_name: Option<StepName>,
    pub(crate) description: Option<String>,
    pub(crate) handler: Option<HandlerDefinition>,
    /// `None` when the type is invalid; type-specific checks are skipped then.
    pub(crate) step_type: Option<StepType>,
    pub(crate) system_dependency: Option<String>,
    /// The key the dependencies were written under (`dependencies` or `depends_on`).
    pub(crate) dependencies_key: &'static str,
    /// `(position in the list, name)`.
    pub(crate) dependencies: Vec<(usize, &'v str)>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) timeout_seconds: Option<u32>,
    pub(crate) publishes_events: Vec<EventDeclaration>,
    /// Positions in `publishes_events` (and in the YAML list) of events written without a
    /// `schema`: theirs is the template's `domain_events` declaration's, resolved later.
    pub(crate) events_without_schema: Vec<(usize, usize)>,
    pub(crate) batch_config: Option<BatchConfig>,
    pub(crate) has_batch_config: bool,
    pub(crate) result_schema: Option<JsonSchema>,
    pub(crate) composition: Option<serde_json::Value>,
    /// Whether every field of the step could be read.
    pub(crate) complete: bool,
}

impl<'v> DraftStep<'v> {
    pub(crate) fn path(&self) -> String {
        format!("steps[{}]", self.index)
    }

    /// The step's name, or its path when it has none; rendered only when a problem is
    /// reported.
    pub(crate) fn label(&self) -> StepLabel<'_, 'v> {
        StepLabel(self)
    }
}

/// See [`DraftStep::label`].
pub(crate) struct StepLabel<'s, 'v>(&'s DraftStep<'v>);

impl fmt::Display for StepLabel<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name {
            Some(name) => f.write_str(name),
            None => write!(f, "steps[{}]", self.0.index),
        }
    }
}

pub(crate) fn read_step<'v>(
    cx: &mut Cx,
    path: &Path<'_>,
    index: usize,
    value: &'v Value<'v>,
) -> Option<DraftStep<'v>> {
    let map = mapping(cx, path, value)?;
    let before = cx.problems.len();
    check_keys(cx, path, map, &STEP_KEYS);

    let name_value = required(cx, path, map, "name");
    let name = name_value.and_then(|value| string(cx, &path.key("name"), value));
    let valid_name =
        name_value.and_then(|value| identifier::<StepName>(cx, &path.key("name"), value));
    let description = field(map, "description")
        .and_then(|value| bounded_string(cx, &path.key("description"), value, DESCRIPTION_MAX_LEN))
        .map(str::to_owned);
    let handler = required(cx, path, map, "handler")
        .and_then(|value| read_handler(cx, &path.key("handler"), value));
    let step_type = match aliased_field(map, "type", "step_type") {
        Some((key, value)) => choice(cx, &path.key(key), value, &StepType::CHOICES),
        None => Some(StepType::Standard),
    };
    let system_dependency = field(map, "system_dependency")
        .and_then(|value| bounded_string(cx, &path.key("system_dependency"), value, TEXT_MAX_LEN))
        .map(str::to_owned);
    let (dependencies_key, dependencies) = match aliased_field(map, "dependencies", "depends_on") {
        Some((key, value)) => (key, read_dependencies(cx, &path.key(key), value)),
        None => ("dependencies", Vec::new()),
    };
    let retry = match field(map, "retry") {
        Some(value) => read_retry(cx, &path.key("retry"), value),
        None => Some(RetryPolicy::default()),
    };
    let timeout_seconds = read_timeout(cx, path, map);
    let (publishes_events, events_without_schema) = field(map, "publishes_events")
        .map(|value| read_events(cx, &path.key("publishes_events"), value))
        .unwrap_or_default();
    let has_batch_config = field(map, "batch_config").is_some();
    let batch_config = field(map, "batch_config")
        .and_then(|value| read_batch(cx, &path.key("batch_config"), value));
    let result_schema = field(map, "result_schema")
        .and_then(|value| read_schema(cx, &path.key("result_schema"), value))
        .map(|compiled| compiled.schema().clone());
    let composition =
        field(map, "composition").and_then(|value| to_json(cx, &path.key("composition"), value));
    let complete = !cx.problems[before..]
        .iter()
        .any(super::problem::Problem::is_error);

    Some(DraftStep {
        index,
        name,
        valid_name,
        description,
        handler,
        step_type,
        system_dependency,
        dependencies_key,
        dependencies,
        retry,
        timeout_seconds,
        publishes_events,
        events_without_schema,
        batch_config,
        has_batch_config,
        result_schema,
        composition,
        complete,
    })
}

fn read_timeout(cx: &mut Cx, path: &Path<'_>, map: &Mapping<'_>) -> Option<u32> {
    let value = field(map, "timeout_seconds")?;
    let seconds = integer(
        cx,
        &path.key("timeout_seconds"),
        value,
        1,
        TIMEOUT_MAX_SECONDS,
    )?;
    u32::try_from(seconds).ok()
}

fn read_dependencies<'v>(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &'v Value<'v>,
) -> Vec<(usize, &'v str)> {
    let Some(items) = sequence(cx, path, value) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(position, item)| {
            string(cx, &path.index(position), item).map(|name| (position, name))
        })
        .collect()
}

fn read_handler(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> Option<HandlerDefinition> {
    let map = match value {
        Value::String(_) => {
            cx.wrong_type(path, value, "a mapping");
            if let Some(last) = cx.problems.last_mut() {
                last.hint = Some("write `handler: { callable: <name> }`".to_owned());
            }
            return None;
        }
        other => mapping(cx, path, other)?,
    };
    check_keys(cx, path, map, &HANDLER_KEYS);
    let callable = required(cx, path, map, "callable")
        .and_then(|value| bounded_string(cx, &path.key("callable"), value, CALLABLE_MAX_LEN))
        .map(str::to_owned);
    let method = field(map, "method").and_then(|value| {
        let path = path.key("method");
        let text = string(cx, &path, value)?;
        match crate::names::check_identifier(text, TEXT_MAX_LEN) {
            Ok(()) => Some(text.to_owned()),
            Err(reason) => {
                cx.error(
                    Rule::Identifier,
                    &path,
                    Some(value),
                    format!("invalid method name: {reason}"),
                )
                .hint("name a method of the handler, such as `call` or `validate`");
                None
            }
        }
    });
    let resolver = field(map, "resolver").and_then(|value| {
        let path = path.key("resolver");
        let text = string(cx, &path, value)?;
        if text.chars().count() <= TEXT_MAX_LEN && is_valid_publisher(text) {
            Some(text.to_owned())
        } else {
            cx.error(
                Rule::Identifier,
                &path,
                Some(value),
                "invalid resolver name",
            )
            .hint("name a registered resolver: identifiers joined by `::` or `.`");
            None
        }
    });
    let initialization = read_object(
        cx,
        &path.key("initialization"),
        field(map, "initialization"),
    );
    Some(HandlerDefinition {
        callable: callable?,
        method,
        resolver,
        initialization: initialization?,
    })
}

/// A JSON object field; absent or null is an empty object.
pub(crate) fn read_object(
    cx: &mut Cx,
    path: &Path<'_>,
    value: Option<&Value<'_>>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let Some(value) = value else {
        return Some(serde_json::Map::new());
    };
    mapping(cx, path, value)?;
    match to_json(cx, path, value)? {
        serde_json::Value::Object(object) => Some(object),
        _ => None,
    }
}

fn read_retry(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> Option<RetryPolicy> {
    let fields = read_retry_fields(cx, path, value)?;
    let defaults = RetryPolicy::default();
    let policy = RetryPolicy {
        retryable: fields.retryable.unwrap_or(defaults.retryable),
        max_attempts: fields.max_attempts.unwrap_or(defaults.max_attempts),
        backoff: fields.backoff.unwrap_or(defaults.backoff),
        backoff_base_ms: fields.backoff_base_ms,
        max_backoff_ms: fields.max_backoff_ms,
    };
    check_retry(cx, path, &policy, None);
    Some(policy)
}

/// Cross-field retry checks; `step` names the step when checking an override's effect.
pub(crate) fn check_retry(cx: &mut Cx, path: &Path<'_>, policy: &RetryPolicy, step: Option<&str>) {
    let subject = step.map_or_else(String::new, |step| format!("for step `{step}`, "));
    if let (Some(base), Some(max)) = (policy.backoff_base_ms, policy.max_backoff_ms)
        && base > max
    {
        cx.error(
                Rule::Retry,
                &path.key("backoff_base_ms"),
                None,
                format!("{subject}backoff_base_ms ({base}) is larger than max_backoff_ms ({max})"),
            )
            .hint("the first delay cannot exceed the largest delay: raise max_backoff_ms or lower backoff_base_ms");
    }
    if !policy.retryable && policy.max_attempts > 1 && step.is_none() {
        cx.warn(
            Rule::Retry,
            &path.key("max_attempts"),
            None,
            format!(
                "max_attempts is {} but retryable is false, so the step runs at most once",
                policy.max_attempts
            ),
        )
        .hint("set max_attempts: 1, or retryable: true if failures should be retried");
    }
}

fn read_retry_fields(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> Option<RetryOverride> {
    let map = mapping(cx, path, value)?;
    check_keys(cx, path, map, &RETRY_KEYS);
    let retryable =
        field(map, "retryable").and_then(|value| boolean(cx, &path.key("retryable"), value));
    let max_attempts = aliased_field(map, "max_attempts", "limit").and_then(|(key, value)| {
        let path = path.key(key);
        let attempts = integer(cx, &path, value, 0, u64::MAX)?;
        if attempts > u64::from(MAX_ATTEMPTS_LIMIT) {
            cx.error(
                Rule::Range,
                &path,
                Some(value),
                format!("must be between 1 and {MAX_ATTEMPTS_LIMIT}"),
            );
            return None;
        }
        if attempts == 0 {
            cx.strict_error(
                Rule::Range,
                &path,
                Some(value),
                "max_attempts 0 is read as 1: the first attempt always runs",
            )
            .hint("write max_attempts: 1");
            return Some(1);
        }
        u32::try_from(attempts).ok()
    });
    let backoff = field(map, "backoff")
        .and_then(|value| choice(cx, &path.key("backoff"), value, &BackoffKind::CHOICES));
    let backoff_base_ms = field(map, "backoff_base_ms").and_then(|value| {
        integer(
            cx,
            &path.key("backoff_base_ms"),
            value,
            1,
            MAX_BACKOFF_LIMIT_MS,
        )
    });
    let max_backoff_ms = field(map, "max_backoff_ms").and_then(|value| {
        integer(
            cx,
            &path.key("max_backoff_ms"),
            value,
            1,
            MAX_BACKOFF_LIMIT_MS,
        )
    });
    Some(RetryOverride {
        retryable,
        max_attempts,
        backoff,
        backoff_base_ms,
        max_backoff_ms,
    })
}

/// A step's events, and the positions (in the result, in the YAML list) of those written
/// without a `schema` (resolved from the template's `domain_events` by the second stage).
fn read_events(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &Value<'_>,
) -> (Vec<EventDeclaration>, Vec<(usize, usize)>) {
    let Some(items) = sequence(cx, path, value) else {
        return (Vec::new(), Vec::new());
    };
    let mut events: Vec<EventDeclaration> = Vec::with_capacity(items.len());
    let mut without_schema = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let path = path.index(index);
        let Some(map) = mapping(cx, &path, item) else {
            continue;
        };
        check_keys(cx, &path, map, &EVENT_KEYS);
        let name = required(cx, &path, map, "name")
            .and_then(|value| read_event_name(cx, &path.key("name"), value));
        let description = required(cx, &path, map, "description")
            .and_then(|value| {
                bounded_string(cx, &path.key("description"), value, DESCRIPTION_MAX_LEN)
            })
            .map(str::to_owned);
        let condition = match field(map, "condition") {
            Some(value) => choice(cx, &path.key("condition"), value, &EventCondition::CHOICES),
            None => Some(EventCondition::default()),
        };
        // Without a schema, the template's `domain_events` declaration must give one.
        let schema = match field(map, "schema") {
            Some(value) => read_schema(cx, &path.key("schema"), value)
                .map(|compiled| compiled.schema().clone()),
            None => {
                without_schema.push((events.len(), index));
                Some(JsonSchema::accept_all())
            }
        };
        let delivery_mode = match field(map, "delivery_mode") {
            Some(value) => choice(
                cx,
                &path.key("delivery_mode"),
                value,
                &DeliveryMode::CHOICES,
            ),
            None => Some(DeliveryMode::default()),
        };
        let publisher = field(map, "publisher").and_then(|value| {
            let path = path.key("publisher");
            let text = string(cx, &path, value)?;
            if text.chars().count() <= TEXT_MAX_LEN && is_valid_publisher(text) {
                Some(text.to_owned())
            } else {
                cx.error(Rule::Publisher, &path, Some(value), "invalid publisher name")
                    .hint("name a publisher as identifiers joined by `::` or `.`, e.g. PaymentEventPublisher");
                None
            }
        });
        let (Some(name), Some(description), Some(condition), Some(schema), Some(delivery_mode)) =
            (name, description, condition, schema, delivery_mode)
        else {
            if without_schema
                .last()
                .is_some_and(|(at, _)| *at == events.len())
            {
                without_schema.pop();
            }
            continue;
        };
        if let Some(first) = events
            .iter()
            .position(|event| event.name == name && event.condition == condition)
        {
            cx.warn(
                Rule::DuplicateEvent,
                &path.key("name"),
                field(map, "name"),
                format!(
                    "event `{name}` with condition `{}` is already declared at index {first}; it would be published twice",
                    condition_name(condition)
                ),
            );
        }
        events.push(EventDeclaration {
            name,
            description,
            condition,
            schema,
            delivery_mode,
            publisher,
        });
    }
    (events, without_schema)
}

fn condition_name(condition: EventCondition) -> &'static str {
    EventCondition::CHOICES
        .iter()
        .find(|(_, c)| *c == condition)
        .map_or("success", |(name, _)| name)
}

fn read_batch(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> Option<BatchConfig> {
    let map = mapping(cx, path, value)?;
    check_keys(cx, path, map, &BATCH_KEYS);
    let batch_size = match field(map, "batch_size") {
        Some(value) => integer(
            cx,
            &path.key("batch_size"),
            value,
            BATCH_SIZE_RANGE.0,
            BATCH_SIZE_RANGE.1,
        ),
        None => Some(1000),
    };
    let parallelism = match field(map, "parallelism") {
        Some(value) => integer(
            cx,
            &path.key("parallelism"),
            value,
            BATCH_PARALLELISM_RANGE.0,
            BATCH_PARALLELISM_RANGE.1,
        ),
        None => Some(10),
    };
    let cursor_field = match field(map, "cursor_field") {
        Some(value) => {
            bounded_string(cx, &path.key("cursor_field"), value, TEXT_MAX_LEN).map(str::to_owned)
        }
        None => Some("id".to_owned()),
    };
    let worker_template = required(cx, path, map, "worker_template")
        .and_then(|value| identifier::<StepName>(cx, &path.key("worker_template"), value));
    let failure_strategy = match field(map, "failure_strategy") {
        Some(value) => choice(
            cx,
            &path.key("failure_strategy"),
            value,
            &FailureStrategy::CHOICES,
        ),
        None => Some(FailureStrategy::default()),
    };
    Some(BatchConfig {
        batch_size: u32::try_from(batch_size?).ok()?,
        parallelism: u32::try_from(parallelism?).ok()?,
        cursor_field: cursor_field?,
        worker_template: worker_template?,
        failure_strategy: failure_strategy?,
    })
}

/// One environment override as far as it could be read.
#[derive(Debug)]
pub(crate) struct DraftOverride<'v> {
    pub(crate) index: usize,
    /// The raw target name (`ALL` or a step name).
    pub(crate) target: Option<&'v str>,
    pub(crate) value: Option<StepOverride>,
}

pub(crate) fn read_override<'v>(
    cx: &mut Cx,
    path: &Path<'_>,
    index: usize,
    value: &'v Value<'v>,
) -> DraftOverride<'v> {
    let mut draft = DraftOverride {
        index,
        target: None,
        value: None,
    };
    let Some(map) = mapping(cx, path, value) else {
        return draft;
    };
    check_keys(cx, path, map, &OVERRIDE_KEYS);
    let before = cx.problems.len();
    let name_value = required(cx, path, map, "name");
    draft.target = name_value.and_then(|value| string(cx, &path.key("name"), value));
    let target = match draft.target {
        Some(ALL_STEPS) => Some(OverrideTarget::All),
        Some(_) => name_value
            .and_then(|value| identifier::<StepName>(cx, &path.key("name"), value))
            .map(OverrideTarget::Step),
        None => None,
    };
    let handler = field(map, "handler").and_then(|value| {
        let path = path.key("handler");
        let handler_map = mapping(cx, &path, value)?;
        check_keys(cx, &path, handler_map, &OVERRIDE_HANDLER_KEYS);
        let initialization = read_object(
            cx,
            &path.key("initialization"),
            field(handler_map, "initialization"),
        )?;
        Some(HandlerOverride { initialization })
    });
    let timeout_seconds = read_timeout(cx, path, map);
    let retry =
        field(map, "retry").and_then(|value| read_retry_fields(cx, &path.key("retry"), value));
    let failed = cx.problems[before..]
        .iter()
        .any(super::problem::Problem::is_error);
    if let (false, Some(name)) = (failed, target) {
        draft.value = Some(StepOverride {
            name,
            handler,
            timeout_seconds,
            retry,
        });
    }
    draft
}
