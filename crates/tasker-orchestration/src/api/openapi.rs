//! The OpenAPI 3.1 document, generated from the handlers with utoipa and served at
//! `/api-docs/openapi.json`; `cargo xtask codegen` writes it to `docs/openapi.json`, with the
//! table of permissions per route (`docs/api-permissions.md`).

use axum::Json;
use axum::response::IntoResponse;
use tasker_web::problem::ProblemKind;
use tasker_web::routes::Access;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::model::{
    ExecutionStatusBody, FieldProblemBody, HealthBody, HealthCheck, ProblemBody, StepBody,
    StepTransitionsBody, TaskCancelled, TaskCreated, TaskDetail, TaskPage, TaskRequestBody,
    TaskSummary, TemplateDetail, TemplatePage, TemplateRegistered, TemplateSummary, TransitionBody,
    TransitionsBody,
};
use super::{ROUTES, health, tasks, templates};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tasker orchestration API",
        description = "Tasks and templates of a Tasker deployment. Every error is an `application/problem+json` document (RFC 9457) whose `type` is `urn:tasker:problem:<kind>`.",
        license(name = "MIT")
    ),
    paths(
        tasks::create,
        tasks::list,
        tasks::get,
        tasks::cancel,
        tasks::transitions,
        templates::list,
        templates::get,
        templates::register,
        health::live,
        health::ready,
        document,
    ),
    components(schemas(
        TaskRequestBody,
        TaskCreated,
        TaskCancelled,
        TaskSummary,
        TaskDetail,
        ExecutionStatusBody,
        StepBody,
        TaskPage,
        TransitionsBody,
        StepTransitionsBody,
        TransitionBody,
        TemplateSummary,
        TemplateDetail,
        TemplatePage,
        TemplateRegistered,
        HealthBody,
        HealthCheck,
        ProblemBody,
        FieldProblemBody,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "tasks", description = "Create, read, list and cancel tasks"),
        (name = "templates", description = "Read and register task templates"),
        (name = "health", description = "Liveness and readiness (public)"),
        (name = "docs", description = "This document (public)"),
    )
)]
struct ApiDoc;

/// Adds the two ways to authenticate: a bearer JWT and an API key header.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT whose permissions claim grants the route's permission",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (the header is `auth.api_key_header`)",
            ))),
        );
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/api-docs/openapi.json",
    tag = "docs",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub(crate) async fn document() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// The document as pretty JSON with a final newline (what `docs/openapi.json` holds).
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    text.push('\n');
    text
}

/// The permissions per route and the problem types, as markdown (`docs/api-permissions.md`).
pub fn permissions_markdown() -> String {
    let mut text = String::from(
        "# API permissions and problem types\n\n\
         Generated from the route table (`tasker_orchestration::api::ROUTES`) and tasker-web's \
         problem kinds. See docs/api.md.\n\n\
         | Method | Path | Access |\n|---|---|---|\n",
    );
    for route in ROUTES {
        let access = match route.access {
            Access::Public => "public".to_owned(),
            Access::Requires(permission) => format!("`{permission}`"),
        };
        text.push_str(&format!(
            "| {} | `{}` | {access} |\n",
            route.method, route.path
        ));
    }
    text.push_str("\n| Type | Status | Title |\n|---|---|---|\n");
    for kind in ProblemKind::ALL {
        text.push_str(&format!(
            "| `{}` | {} | {} |\n",
            kind.type_uri(),
            kind.status().as_u16(),
            kind.title()
        ));
    }
    text
}
