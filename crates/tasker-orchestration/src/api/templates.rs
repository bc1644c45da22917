//! `/v1/templates`: list, read, and validate-and-register (YAML or JSON, checked against the
//! template limits before any parser runs).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use tasker_models::names::{NamespaceName, TaskName, TemplateVersion};
use tasker_models::template::{
    LoadedTemplate, Strictness, TemplateError, TemplateLimit, ValidatedTemplate,
};
use tasker_registry::registry::RegisterError;
use tasker_web::problem::{FieldProblem, Problem, ProblemKind};

use super::ApiState;
use super::error::{bad_parameter, dependency, not_found};
use super::extract::{ApiPath, ApiQuery, body, is_json, media_type, parse_json, pointer_of};
use super::model::{
    ProblemBody, RegisterQuery, TemplateDetail, TemplateListQuery, TemplatePage,
    TemplateRegistered, TemplateSummary,
};
use super::tasks::page_size;

/// The media types a template may be posted as, besides JSON.
const YAML_TYPES: [&str; 4] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
];

/// The path of one template version.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TemplatePath {
    namespace: String,
    name: String,
    version: String,
}

/// Registered template versions, by namespace, name and version, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/templates",
    tag = "templates",
    params(TemplateListQuery),
    responses(
        (status = 200, body = TemplatePage),
        (status = 400, description = "A filter or the cursor is invalid", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["templates:read"]), ("api_key" = ["templates:read"]))
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<TemplateListQuery>,
) -> Result<Json<TemplatePage>, Problem> {
    let limit = page_size(query.limit)?;
    if let Some(namespace) = &query.namespace {
        NamespaceName::new(namespace.as_str())
            .map_err(|e| bad_parameter("namespace", e.reason().to_string()))?;
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut records = tasker_db::template::list(
        &state.pool,
        query.namespace.as_deref(),
        after
            .as_ref()
            .map(|(ns, name, version)| (ns.as_str(), name.as_str(), version.as_str())),
        i64::from(limit) + 1,
    )
    .await
    .map_err(|e| dependency(&e))?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            records.last().map(|record| {
                hex::encode(format!(
                    "{}\u{1f}{}\u{1f}{}",
                    record.namespace_name, record.name, record.version
                ))
            })
        })
        .flatten();
    Ok(Json(TemplatePage {
        templates: records.into_iter().map(summary).collect(),
        next_cursor,
    }))
}

fn decode_cursor(text: &str) -> Result<(String, String, String), Problem> {
    let invalid = || bad_parameter("cursor", "is not a cursor this API returned");
    let text =
        String::from_utf8(hex::decode(text).map_err(|_| invalid())?).map_err(|_| invalid())?;
    let mut parts = text.split('\u{1f}');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(namespace), Some(name), Some(version), None) if !text.contains('\0') => {
            Ok((namespace.to_owned(), name.to_owned(), version.to_owned()))
        }
        _ => Err(invalid()),
    }
}

fn summary(record: tasker_db::template::TemplateRecord) -> TemplateSummary {
    TemplateSummary {
        namespace: record.namespace_name,
        name: record.name,
        version: record.version,
        description: record.description,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

/// One registered template version, with its whole definition.
#[utoipa::path(
    get,
    path = "/v1/templates/{namespace}/{name}/{version}",
    tag = "templates",
    params(
        ("namespace" = String, Path, description = "The namespace"),
        ("name" = String, Path, description = "The template's name"),
        ("version" = String, Path, description = "The version"),
    ),
    responses(
        (status = 200, body = TemplateDetail),
        (status = 400, description = "A path parameter is not a valid name or version", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Not registered", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["templates:read"]), ("api_key" = ["templates:read"]))
)]
pub(crate) async fn get(
    State(state): State<ApiState>,
    ApiPath(path): ApiPath<TemplatePath>,
) -> Result<Json<TemplateDetail>, Problem> {
    NamespaceName::new(path.namespace.as_str())
        .map_err(|e| bad_parameter("namespace", e.reason().to_string()))?;
    TaskName::new(path.name.as_str()).map_err(|e| bad_parameter("name", e.reason().to_string()))?;
    TemplateVersion::new(path.version.as_str())
        .map_err(|e| bad_parameter("version", e.to_string()))?;
    let record = tasker_db::template::get(&state.pool, &path.namespace, &path.name, &path.version)
        .await
        .map_err(|e| dependency(&e))?
        .ok_or_else(|| {
            not_found(format!(
                "Template {}/{}:{} is not registered.",
                path.namespace, path.name, path.version
            ))
        })?;
    let definition = record.configuration.clone();
    Ok(Json(TemplateDetail {
        template: summary(record),
        definition,
    }))
}

/// Validates a template (YAML or JSON) and registers it: 201 when it is new, 200 when it was
/// registered already (unchanged, or replaced with `force`).
#[utoipa::path(
    post,
    path = "/v1/templates",
    tag = "templates",
    params(RegisterQuery),
    request_body(
        description = "The template, as YAML (`application/yaml`) or JSON",
        content(
            (String = "application/yaml"),
            (Object = "application/json"),
        )
    ),
    responses(
        (status = 201, description = "Registered", body = TemplateRegistered),
        (status = 200, description = "Registered already (unchanged or replaced)", body = TemplateRegistered),
        (status = 400, description = "Not YAML or JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "This version is registered with other content", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Larger than the limits", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "Neither YAML nor JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid: every problem, located", body = ProblemBody, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["templates:validate"]), ("api_key" = ["templates:validate"]))
)]
pub(crate) async fn register(
    State(state): State<ApiState>,
    ApiQuery(query): ApiQuery<RegisterQuery>,
    request: Request,
) -> Result<(StatusCode, Json<TemplateRegistered>), Problem> {
    let limits = state.settings.template_limits;
    let loaded = if is_json(request.headers()) {
        let bytes = body(request, &()).await?;
        let json: serde_json::Value = parse_json(&bytes)?;
        let loaded = ValidatedTemplate::from_json_value(&json, Strictness::Strict)
            .map_err(template_problem)?;
        let steps = loaded.template.template().steps.len();
        if steps > limits.max_steps {
            return Err(Problem::new(
                ProblemKind::Validation,
                format!(
                    "The template exceeds the limit `max_steps`: {steps} steps, at most {} allowed.",
                    limits.max_steps
                ),
            ));
        }
        loaded
    } else if media_type(request.headers())
        .is_some_and(|media| YAML_TYPES.contains(&media.as_str()))
    {
        let bytes = body(request, &()).await?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Problem::new(ProblemKind::BadRequest, "The template is not UTF-8 text.")
        })?;
        ValidatedTemplate::from_yaml_str_within(text, Strictness::Strict, &limits)
            .map_err(template_problem)?
    } else {
        return Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "Send the template as `application/yaml` or `application/json`.",
        ));
    };
    let LoadedTemplate { template, .. } = loaded;
    if holds_nul(&template.to_json()) {
        return Err(Problem::new(
            ProblemKind::Validation,
            "The template holds a NUL character, which cannot be stored.",
        ));
    }
    let report = state
        .registry
        .register_templates(
            std::slice::from_ref(&template),
            query.force.unwrap_or(false),
        )
        .await
        .map_err(register_problem)?;
    let Some(outcome) = report.templates.first() else {
        return Err(Problem::internal(&std::io::Error::other(
            "registration reported no template",
        )));
    };
    let status = if matches!(outcome.change, tasker_registry::registry::Change::Created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(TemplateRegistered {
            namespace: outcome.key.namespace.to_string(),
            name: outcome.key.name.to_string(),
            version: outcome.key.version.to_string(),
            change: outcome.change.label().to_owned(),
        }),
    ))
}

fn template_problem(error: TemplateError) -> Problem {
    match &error {
        TemplateError::Limit { breach } => {
            let kind = if breach.limit == TemplateLimit::Bytes {
                ProblemKind::PayloadTooLarge
            } else {
                ProblemKind::Validation
            };
            Problem::new(kind, format!("The {error}."))
        }
        TemplateError::Syntax { source } => Problem::new(
            ProblemKind::BadRequest,
            format!("The template is not valid YAML: {source}"),
        ),
        TemplateError::Invalid { problems } => {
            let errors = problems
                .as_slice()
                .iter()
                .filter(|problem| problem.is_error())
                .map(|problem| FieldProblem {
                    pointer: pointer_of(&problem.path),
                    detail: match &problem.hint {
                        Some(hint) => format!("{} (hint: {hint})", problem.message),
                        None => problem.message.clone(),
                    },
                })
                .collect();
            Problem::new(ProblemKind::Validation, "The template is invalid.").with_errors(errors)
        }
        TemplateError::MultipleDocuments { .. } | TemplateError::TooLarge { .. } => {
            Problem::new(ProblemKind::Validation, format!("The {error}."))
        }
        TemplateError::Read { .. } => Problem::internal(&error),
    }
}

fn register_problem(error: RegisterError) -> Problem {
    match &error {
        RegisterError::Changed { conflicts } => {
            let errors = conflicts
                .iter()
                .flat_map(|conflict| conflict.differences.iter())
                .map(|difference| FieldProblem {
                    pointer: pointer_of(&difference.path),
                    detail: difference.to_string(),
                })
                .collect();
            Problem::new(
                ProblemKind::Conflict,
                "This version is registered with other content: publish a new version, or register with `force=true` to replace it.",
            )
            .with_errors(errors)
        }
        RegisterError::Invalid { .. } | RegisterError::NoTemplates { .. } => Problem::new(
            ProblemKind::Validation,
            format!("The template cannot be registered: {error}"),
        ),
        RegisterError::Rejected { .. } => Problem::new(
            ProblemKind::Validation,
            "The database refused the template (a name breaks its rules).",
        ),
        RegisterError::Database(_) => dependency(&error),
    }
}

/// Whether any string or key of `value` holds a NUL.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}
