//! First stage of loading: a generic YAML value becomes a draft template. Every type,
//! range, identifier, alias and unknown-key problem is reported with its YAML path; what
//! could be read is kept so the graph checks can still run and report their problems too.

use crate::identity::IdentityStrategy;
use crate::names::{NameError, NamespaceName, TaskName, TemplateVersion};

use super::event::{DomainEventDefinition, EventName, check_event_name};
use super::model::{
    EnvironmentOverrides, LifecycleConfig, MAX_DURATION_MINUTES_RANGE,
    STATE_THRESHOLD_MINUTES_RANGE, StalenessAction, SystemDependencies, TemplateMetadata,
};
use super::problem::Rule;
use super::raw_step::{DraftOverride, DraftStep, read_override, read_step};
use super::reader::{
    Cx, Keys, Path, boolean, bounded_string, check_keys, choice, field, integer, mapping, quote,
    sequence, string, string_list, to_json,
};
use super::schema::{self, CompiledSchema};
use super::value::{Mapping, Value};

/// Longest template or step description.
pub const DESCRIPTION_MAX_LEN: usize = 255;
/// Longest free-text value (authors, tags, system names, cursor fields).
pub(crate) const TEXT_MAX_LEN: usize = 255;

const TOP_KEYS: Keys = Keys::new(&[
    "name",
    "namespace_name",
    "version",
    "description",
    "identity_strategy",
    "metadata",
    "system_dependencies",
    "domain_events",
    "input_schema",
    "steps",
    "environments",
    "lifecycle",
]);
const METADATA_KEYS: Keys = Keys::new(&[
    "author",
    "tags",
    "documentation_url",
    "created_at",
    "updated_at",
]);
const SYSTEM_KEYS: Keys = Keys::new(&["primary", "secondary"]);
const DOMAIN_EVENT_KEYS: Keys = Keys::new(&["name", "description", "schema"]);
const LIFECYCLE_KEYS: Keys = Keys::new(&[
    "max_duration_minutes",
    "max_waiting_for_dependencies_minutes",
    "max_waiting_for_retry_minutes",
    "max_steps_in_process_minutes",
    "staleness_action",
    "auto_fail_on_timeout",
    "auto_dlq_on_timeout",
]);
const ENVIRONMENT_KEYS: Keys = Keys::new(&["steps"]);

/// A template as far as it could be read.
#[derive(Debug)]
pub(crate) struct Draft<'v> {
    pub(crate) name: Option<TaskName>,
    pub(crate) namespace_name: Option<NamespaceName>,
    pub(crate) version: Option<TemplateVersion>,
    pub(crate) description: Option<String>,
    pub(crate) identity_strategy: IdentityStrategy,
    pub(crate) metadata: Option<TemplateMetadata>,
    pub(crate) system_dependencies: SystemDependencies,
    pub(crate) domain_events: Vec<DomainEventDefinition>,
    pub(crate) input_schema: Option<CompiledSchema>,
    pub(crate) steps: Vec<DraftStep<'v>>,
    pub(crate) environments: Vec<DraftEnvironment<'v>>,
    pub(crate) lifecycle: Option<LifecycleConfig>,
}

/// The overrides of one environment, as far as they could be read.
#[derive(Debug)]
pub(crate) struct DraftEnvironment<'v> {
    pub(crate) name: &'v str,
    pub(crate) overrides: Vec<DraftOverride<'v>>,
}

impl DraftEnvironment<'_> {
    pub(crate) fn path(&self) -> String {
        let mut path = "environments".to_owned();
        super::reader::push_key(&mut path, self.name);
        path
    }
}

impl DraftEnvironment<'_> {
    pub(crate) fn finish(self) -> Option<(String, EnvironmentOverrides)> {
        let steps = self
            .overrides
            .into_iter()
            .map(|draft| draft.value)
            .collect::<Option<Vec<_>>>()?;
        Some((self.name.to_owned(), EnvironmentOverrides { steps }))
    }
}

pub(crate) fn read_template<'v>(cx: &mut Cx, root: &'v Value<'v>) -> Option<Draft<'v>> {
    let path = Path::Root;
    let Value::Mapping(map) = root else {
        let message = match root {
            Value::Null => "the document is empty".to_owned(),
            other => format!(
                "a template must be a mapping, found {}",
                super::reader::type_name(other)
            ),
        };
        cx.error(Rule::Document, &path, None, message)
            .hint("start with `name:`, `namespace_name:`, `version:` and `steps:`");
        return None;
    };
    check_keys(cx, &path, map, &TOP_KEYS);

    let name = required(cx, &path, map, "name")
        .and_then(|value| identifier::<TaskName>(cx, &path.key("name"), value));
    let namespace_name = required(cx, &path, map, "namespace_name")
        .and_then(|value| identifier::<NamespaceName>(cx, &path.key("namespace_name"), value));
    let version = required(cx, &path, map, "version")
        .and_then(|value| read_version(cx, &path.key("version"), value));
    let description = field(map, "description")
        .and_then(|value| bounded_string(cx, &path.key("description"), value, DESCRIPTION_MAX_LEN))
        .map(str::to_owned);
    let identity_strategy = field(map, "identity_strategy")
        .and_then(|value| {
            choice(
                cx,
                &path.key("identity_strategy"),
                value,
                &[
                    ("strict", IdentityStrategy::Strict),
                    ("caller_provided", IdentityStrategy::CallerProvided),
                    ("always_unique", IdentityStrategy::AlwaysUnique),
                ],
            )
        })
        .unwrap_or_default();
    let metadata =
        field(map, "metadata").and_then(|value| read_metadata(cx, &path.key("metadata"), value));
    let system_dependencies = field(map, "system_dependencies")
        .map(|value| read_system_dependencies(cx, &path.key("system_dependencies"), value))
        .unwrap_or_default();
    let domain_events = field(map, "domain_events")
        .map(|value| read_domain_events(cx, &path.key("domain_events"), value))
        .unwrap_or_default();
    let input_schema = field(map, "input_schema")
        .and_then(|value| read_schema(cx, &path.key("input_schema"), value));
    let steps_value = field(map, "steps");
    let steps = steps_value
        .map(|value| read_steps(cx, &path.key("steps"), value))
        .unwrap_or_default();
    let no_steps = match steps_value {
        None => true,
        Some(Value::Sequence(items)) => items.is_empty(),
        Some(_) => false,
    };
    if no_steps {
        cx.warn(
            Rule::NoSteps,
            &path.key("steps"),
            None,
            "the template has no steps; its tasks complete immediately",
        )
        .hint("add at least one step");
    }
    let environments = field(map, "environments")
        .map(|value| read_environments(cx, &path.key("environments"), value))
        .unwrap_or_default();
    let lifecycle =
        field(map, "lifecycle").and_then(|value| read_lifecycle(cx, &path.key("lifecycle"), value));

    Some(Draft {
        name,
        namespace_name,
        version,
        description,
        identity_strategy,
        metadata,
        system_dependencies,
        domain_events,
        input_schema,
        steps,
        environments,
        lifecycle,
    })
}

/// A required, non-null field.
pub(crate) fn required<'v>(
    cx: &mut Cx,
    path: &Path<'_>,
    map: &'v Mapping<'v>,
    key: &'static str,
) -> Option<&'v Value<'v>> {
    let value = field(map, key);
    if value.is_none() {
        let message = if map.contains_key(key) {
            format!("`{key}` must not be null")
        } else {
            format!("`{key}` is required")
        };
        cx.error(Rule::Required, &path.key(key), None, message);
    }
    value
}

/// A name that follows its kind's rule, as one of the name newtypes.
pub(crate) fn identifier<N: NameKind>(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &Value<'_>,
) -> Option<N> {
    let text = string(cx, path, value)?;
    match N::check(text) {
        Ok(()) => Some(N::build(text)),
        Err(reason) => {
            let hint = N::hint(text);
            cx.error(
                Rule::Identifier,
                path,
                Some(value),
                format!("invalid {}: {reason}", N::KIND),
            )
            .hint(hint);
            None
        }
    }
}

/// The name newtypes the reader builds.
pub(crate) trait NameKind: Sized {
    const KIND: &'static str;
    const MAX_LEN: usize;
    /// The name type's own rule.
    fn check(text: &str) -> Result<(), NameError>;
    /// Wraps a name `check` accepted.
    fn build(text: &str) -> Self;
    fn hint(text: &str) -> String {
        let suggestion: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(Self::MAX_LEN)
            .collect();
        let suggestion = if suggestion.starts_with(|c: char| c.is_ascii_digit()) {
            format!("_{suggestion}")
        } else {
            suggestion
        };
        if suggestion.is_empty() || Self::check(&suggestion).is_err() {
            format!(
                "use at most {} ASCII letters, digits and '_', starting with a letter or '_'",
                Self::MAX_LEN
            )
        } else {
            format!(
                "use at most {} ASCII letters, digits and '_', starting with a letter or '_', e.g. {}",
                Self::MAX_LEN,
                quote(&suggestion)
            )
        }
    }
}

impl NameKind for TaskName {
    const KIND: &'static str = "task name";
    const MAX_LEN: usize = TaskName::MAX_LEN;
    fn check(text: &str) -> Result<(), NameError> {
        TaskName::check(text)
    }
    fn build(text: &str) -> Self {
        Self::from_checked(text)
    }
}

impl NameKind for NamespaceName {
    const KIND: &'static str = "namespace name";
    const MAX_LEN: usize = NamespaceName::MAX_LEN;
    fn check(text: &str) -> Result<(), NameError> {
        NamespaceName::check(text)
    }
    fn build(text: &str) -> Self {
        Self::from_checked(text)
    }
    /// Suggests the name in lowercase (other characters as `_`, without what cannot lead),
    /// unless shortening it would be needed: a truncated namespace is rarely what was meant.
    fn hint(text: &str) -> String {
        let rule = format!(
            "namespaces become part of queue names (`worker_<namespace>_queue`), which pgmq \
             stores in lowercase: use at most {} lowercase letters a-z, digits and '_', starting \
             with a letter",
            Self::MAX_LEN
        );
        let suggestion: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .skip_while(|c| !c.is_ascii_lowercase())
            .collect();
        if suggestion != text && Self::check(&suggestion).is_ok() {
            format!("{rule}, e.g. {}", quote(&suggestion))
        } else {
            rule
        }
    }
}

impl NameKind for crate::names::StepName {
    const KIND: &'static str = "step name";
    const MAX_LEN: usize = crate::names::StepName::MAX_LEN;
    fn check(text: &str) -> Result<(), NameError> {
        crate::names::StepName::check(text)
    }
    fn build(text: &str) -> Self {
        Self::from_checked(text)
    }
}

fn read_version(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> Option<TemplateVersion> {
    if let Value::Number(number) = value {
        cx.error(Rule::Type, path, Some(value), "expected a string, found a number")
            .hint(format!("YAML reads {number} as a number: write a quoted semantic version such as \"{number}.0\""));
        return None;
    }
    let text = string(cx, path, value)?;
    match TemplateVersion::new(text) {
        Ok(version) => Some(version),
        Err(error) => {
            let message = match &error {
                crate::names::InvalidVersion::TooLong { len, .. } => {
                    format!(
                        "is {len} characters long; the limit is {}",
                        crate::names::VERSION_MAX_LEN
                    )
                }
                crate::names::InvalidVersion::NotSemver { source, .. } => {
                    format!("not a semantic version: {source}")
                }
            };
            cx.error(Rule::Version, path, Some(value), message)
                .hint("write MAJOR.MINOR.PATCH, for example \"1.0.0\"");
            None
        }
    }
}

fn read_metadata(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> Option<TemplateMetadata> {
    let map = mapping(cx, path, value)?;
    check_keys(cx, path, map, &METADATA_KEYS);
    let author = field(map, "author")
        .and_then(|value| bounded_string(cx, &path.key("author"), value, TEXT_MAX_LEN))
        .map(str::to_owned);
    let tags = field(map, "tags")
        .map(|value| string_list(cx, &path.key("tags"), value, TEXT_MAX_LEN))
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let documentation_url = field(map, "documentation_url").and_then(|value| {
        let path = path.key("documentation_url");
        let text = string(cx, &path, value)?;
        match url::Url::parse(text) {
            Ok(_) => Some(text.to_owned()),
            Err(error) => {
                cx.error(
                    Rule::Format,
                    &path,
                    Some(value),
                    format!("not an absolute URL: {error}"),
                )
                .hint("write a full URL such as https://docs.example.com/workflows/checkout");
                None
            }
        }
    });
    let created_at = field(map, "created_at")
        .and_then(|value| read_timestamp(cx, &path.key("created_at"), value));
    let updated_at = field(map, "updated_at")
        .and_then(|value| read_timestamp(cx, &path.key("updated_at"), value));
    Some(TemplateMetadata {
        author,
        tags,
        documentation_url,
        created_at,
        updated_at,
    })
}

fn read_timestamp(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &Value<'_>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = string(cx, path, value)?;
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(timestamp) => Some(timestamp.with_timezone(&chrono::Utc)),
        Err(error) => {
            cx.error(
                Rule::Format,
                path,
                Some(value),
                format!("not an RFC 3339 timestamp: {error}"),
            )
            .hint("write a quoted timestamp such as \"2025-08-17T20:18:41Z\"");
            None
        }
    }
}

fn read_system_dependencies(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> SystemDependencies {
    let mut dependencies = SystemDependencies::default();
    let Some(map) = mapping(cx, path, value) else {
        return dependencies;
    };
    check_keys(cx, path, map, &SYSTEM_KEYS);
    if let Some(primary) = field(map, "primary")
        .and_then(|value| bounded_string(cx, &path.key("primary"), value, TEXT_MAX_LEN))
    {
        primary.clone_into(&mut dependencies.primary);
    }
    if let Some(value) = field(map, "secondary") {
        dependencies.secondary = string_list(cx, &path.key("secondary"), value, TEXT_MAX_LEN)
            .into_iter()
            .map(str::to_owned)
            .collect();
    }
    dependencies
}

fn read_domain_events(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &Value<'_>,
) -> Vec<DomainEventDefinition> {
    let Some(items) = sequence(cx, path, value) else {
        return Vec::new();
    };
    let mut events: Vec<DomainEventDefinition> = Vec::with_capacity(items.len());
    let mut first_index = std::collections::HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let path = path.index(index);
        let Some(map) = mapping(cx, &path, item) else {
            continue;
        };
        check_keys(cx, &path, map, &DOMAIN_EVENT_KEYS);
        let name = required(cx, &path, map, "name")
            .and_then(|value| read_event_name(cx, &path.key("name"), value));
        let description = field(map, "description")
            .and_then(|value| {
                bounded_string(cx, &path.key("description"), value, DESCRIPTION_MAX_LEN)
            })
            .map(str::to_owned);
        let schema =
            field(map, "schema").and_then(|value| read_schema(cx, &path.key("schema"), value));
        let Some(name) = name else { continue };
        if let Some(first) = first_index.insert(name.as_str().to_owned(), index) {
            cx.error(
                Rule::DuplicateEvent,
                &path.key("name"),
                field(map, "name"),
                format!("domain event `{name}` is already declared at domain_events[{first}]"),
            );
            continue;
        }
        events.push(DomainEventDefinition {
            name,
            description,
            schema: schema.map(|compiled| compiled.schema().clone()),
        });
    }
    events
}

/// An event name in `namespace.action` form.
pub(crate) fn read_event_name(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &Value<'_>,
) -> Option<EventName> {
    let text = string(cx, path, value)?;
    match check_event_name(text) {
        Ok(()) => EventName::new(text).ok(),
        Err(reason) => {
            let suggestion: String = text
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else if c == '.' {
                        '.'
                    } else {
                        '_'
                    }
                })
                .collect();
            let hint = if check_event_name(&suggestion).is_ok() {
                format!(
                    "write event names as namespace.action, e.g. {}",
                    quote(&suggestion)
                )
            } else {
                "write event names as namespace.action, e.g. \"order.created\"".to_owned()
            };
            cx.error(
                Rule::EventName,
                path,
                Some(value),
                format!("invalid event name: {reason}"),
            )
            .hint(hint);
            None
        }
    }
}

/// A JSON Schema, converted from YAML, checked and compiled.
pub(crate) fn read_schema(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &Value<'_>,
) -> Option<CompiledSchema> {
    let json = to_json(cx, path, value)?;
    match schema::compile(&json) {
        Ok(compiled) => Some(compiled),
        Err(issues) => {
            let base = path.render();
            for issue in issues {
                let at = super::pointer::append_pointer(&base, &json, &issue.pointer);
                let hint = issue.pointer.ends_with("/type").then(|| {
                    "JSON Schema types are: string, number, integer, boolean, object, array, null"
                        .to_owned()
                });
                cx.push(
                    super::problem::Severity::Error,
                    Rule::JsonSchema,
                    at,
                    None,
                    format!("invalid JSON Schema: {}", issue.message),
                )
                .maybe_hint(hint);
            }
            None
        }
    }
}

fn read_steps<'v>(cx: &mut Cx, path: &Path<'_>, value: &'v Value<'v>) -> Vec<DraftStep<'v>> {
    let Some(items) = sequence(cx, path, value) else {
        return Vec::new();
    };
    let mut steps = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        steps.extend(read_step(cx, &path.index(index), index, item));
    }
    steps
}

fn read_environments<'v>(
    cx: &mut Cx,
    path: &Path<'_>,
    value: &'v Value<'v>,
) -> Vec<DraftEnvironment<'v>> {
    let Some(map) = mapping(cx, path, value) else {
        return Vec::new();
    };
    let mut environments = Vec::with_capacity(map.len());
    for (key, value) in map {
        let Value::String(name) = key else {
            cx.error(
                Rule::Type,
                path,
                Some(key),
                format!(
                    "expected an environment name, found {}",
                    super::reader::type_name(key)
                ),
            )
            .hint("quote the environment name");
            continue;
        };
        let env_path = path.key(name);
        if name.trim().is_empty() {
            cx.error(
                Rule::Length,
                &env_path,
                None,
                "environment names must not be empty",
            );
            continue;
        }
        let mut overrides = Vec::new();
        if let Some(env_map) = (!value.is_null())
            .then(|| mapping(cx, &env_path, value))
            .flatten()
        {
            check_keys(cx, &env_path, env_map, &ENVIRONMENT_KEYS);
            if let Some(steps) = field(env_map, "steps") {
                let steps_path = env_path.key("steps");
                if let Some(items) = sequence(cx, &steps_path, steps) {
                    overrides = items
                        .iter()
                        .enumerate()
                        .map(|(index, item)| {
                            read_override(cx, &steps_path.index(index), index, item)
                        })
                        .collect();
                }
            }
        }
        environments.push(DraftEnvironment { name, overrides });
    }
    environments
}

fn read_lifecycle(cx: &mut Cx, path: &Path<'_>, value: &Value<'_>) -> Option<LifecycleConfig> {
    let map = mapping(cx, path, value)?;
    check_keys(cx, path, map, &LIFECYCLE_KEYS);
    let minutes = |cx: &mut Cx, key: &'static str, (min, max): (u64, u64)| {
        field(map, key)
            .and_then(|value| integer(cx, &path.key(key), value, min, max))
            .and_then(|minutes| u32::try_from(minutes).ok())
    };
    let max_duration_minutes = minutes(cx, "max_duration_minutes", MAX_DURATION_MINUTES_RANGE);
    let max_waiting_for_dependencies_minutes = minutes(
        cx,
        "max_waiting_for_dependencies_minutes",
        STATE_THRESHOLD_MINUTES_RANGE,
    );
    let max_waiting_for_retry_minutes = minutes(
        cx,
        "max_waiting_for_retry_minutes",
        STATE_THRESHOLD_MINUTES_RANGE,
    );
    let max_steps_in_process_minutes = minutes(
        cx,
        "max_steps_in_process_minutes",
        STATE_THRESHOLD_MINUTES_RANGE,
    );
    let staleness_action = field(map, "staleness_action")
        .and_then(|value| {
            choice(
                cx,
                &path.key("staleness_action"),
                value,
                &StalenessAction::CHOICES,
            )
        })
        .unwrap_or_default();
    let auto_fail_on_timeout = field(map, "auto_fail_on_timeout")
        .and_then(|value| boolean(cx, &path.key("auto_fail_on_timeout"), value));
    let auto_dlq_on_timeout = field(map, "auto_dlq_on_timeout")
        .and_then(|value| boolean(cx, &path.key("auto_dlq_on_timeout"), value));
    Some(LifecycleConfig {
        max_duration_minutes,
        max_waiting_for_dependencies_minutes,
        max_waiting_for_retry_minutes,
        max_steps_in_process_minutes,
        staleness_action,
        auto_fail_on_timeout,
        auto_dlq_on_timeout,
    })
}
