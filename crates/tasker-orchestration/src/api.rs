//! The orchestrator's HTTP API, on tasker-web: tasks (create, read, list, cancel, audit trail),
//! templates (list, read, validate and register), health and the OpenAPI document.
//!
//! [`router`] builds the hardened router from [`ROUTES`], the one table of every route and the
//! permission it needs (tasker-web refuses a router whose handlers and table disagree). Every
//! error is an `application/problem+json` document: the extractors in `extract` turn malformed
//! paths, queries and bodies into 400/415/422 problems, never a 5xx, and a failure of the
//! database is logged and answered without internals.
//!
//! Tasks are created with the intake's own pieces (the template cache, `validate_for`,
//! `create_many_from_requests`) and left `pending` for the claim loop, which this process's
//! engine is woken for ([`ApiState::waking`]); any orchestrator claims them otherwise.

// Functions on the error path return tasker-web's `Problem`, the API's answer, by value: it is
// built once per failed request, and boxing it would only move the allocation.
#![expect(
    clippy::result_large_err,
    reason = "a Problem is the answer of a failed request, built once per request"
)]

mod error;
mod extract;
mod health;
mod model;
mod openapi;
mod tasks;
mod templates;

use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use sqlx::PgPool;
use tasker_db::readiness::BackoffParams;
use tasker_messaging::outbox::Messaging;
use tasker_models::ids::ProcessorId;
use tasker_models::request::JsonLimits;
use tasker_models::template::TemplateLimits;
use tasker_registry::registry::TemplateRegistry;
use tasker_resilience::registry::CircuitBreakers;
use tasker_web::auth::Authenticator;
use tasker_web::harden::{HardeningSettings, harden};
use tasker_web::permission::Permission;
use tasker_web::routes::{Access, RouteSpec, RouteTableError};

use crate::engine::ClaimWaker;
use crate::templates::Templates;

pub use extract::MAX_JSON_DEPTH;
pub use openapi::{openapi_json, permissions_markdown};

/// Every route of the API and who may call it.
pub static ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::POST,
        path: "/v1/tasks",
        access: Access::Requires(Permission::TasksCreate),
    },
    RouteSpec {
        method: Method::GET,
        path: "/v1/tasks",
        access: Access::Requires(Permission::TasksList),
    },
    RouteSpec {
        method: Method::GET,
        path: "/v1/tasks/{task_uuid}",
        access: Access::Requires(Permission::TasksRead),
    },
    RouteSpec {
        method: Method::DELETE,
        path: "/v1/tasks/{task_uuid}",
        access: Access::Requires(Permission::TasksCancel),
    },
    RouteSpec {
        method: Method::GET,
        path: "/v1/tasks/{task_uuid}/transitions",
        access: Access::Requires(Permission::TasksRead),
    },
    RouteSpec {
        method: Method::GET,
        path: "/v1/templates",
        access: Access::Requires(Permission::TemplatesRead),
    },
    RouteSpec {
        method: Method::POST,
        path: "/v1/templates",
        access: Access::Requires(Permission::TemplatesValidate),
    },
    RouteSpec {
        method: Method::GET,
        path: "/v1/templates/{namespace}/{name}/{version}",
        access: Access::Requires(Permission::TemplatesRead),
    },
    RouteSpec {
        method: Method::GET,
        path: "/health/live",
        access: Access::Public,
    },
    RouteSpec {
        method: Method::GET,
        path: "/health/ready",
        access: Access::Public,
    },
    RouteSpec {
        method: Method::GET,
        path: "/api-docs/openapi.json",
        access: Access::Public,
    },
];

/// What the API's handlers work with. Cheap to clone (axum clones it per request).
#[derive(Debug, Clone)]
pub struct ApiState {
    pool: PgPool,
    templates: Arc<Templates>,
    registry: TemplateRegistry,
    settings: Arc<ApiSettings>,
    messaging: Option<Messaging>,
    breakers: Option<CircuitBreakers>,
    waker: Option<ClaimWaker>,
}

/// How the API works.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Recorded on the transitions the API writes (task creation, cancellation).
    pub process_id: ProcessorId,
    /// The retry backoff the readiness functions compute with.
    pub backoff: BackoffParams,
    /// Limits on a request's `context` and `options`.
    pub json_limits: JsonLimits,
    /// Limits on posted templates, checked before they are parsed.
    pub template_limits: TemplateLimits,
}

impl ApiSettings {
    /// Settings with the default limits.
    pub fn new(process_id: ProcessorId, backoff: BackoffParams) -> Self {
        Self {
            process_id,
            backoff,
            json_limits: JsonLimits::default(),
            template_limits: TemplateLimits::DEFAULT,
        }
    }
}

impl ApiState {
    /// The API over `pool` (the web pool, separate from the engine's) and `registry` (which
    /// may read through a cache).
    pub fn new(pool: PgPool, registry: TemplateRegistry, settings: ApiSettings) -> Self {
        Self {
            pool,
            templates: Arc::new(Templates::new(registry.clone())),
            registry,
            settings: Arc::new(settings),
            messaging: None,
            breakers: None,
            waker: None,
        }
    }

    /// Readiness also checks this messaging backend.
    #[must_use]
    pub fn with_messaging(mut self, messaging: Messaging) -> Self {
        self.messaging = Some(messaging);
        self
    }

    /// Readiness also reports these circuit breakers (an open one makes the API unready).
    #[must_use]
    pub fn with_breakers(mut self, breakers: CircuitBreakers) -> Self {
        self.breakers = Some(breakers);
        self
    }

    /// Created tasks wake this engine's claim loop at once (otherwise it finds them on its
    /// next poll).
    #[must_use]
    pub fn waking(mut self, waker: ClaimWaker) -> Self {
        self.waker = Some(waker);
        self
    }
}

/// The router of the API, guarded by `auth` and hardened with `hardening`.
///
/// # Errors
/// The route table and the handlers disagree (a bug, caught at startup).
pub fn router(
    state: ApiState,
    auth: Authenticator,
    hardening: &HardeningSettings,
) -> Result<Router, Vec<RouteTableError>> {
    let router = tasker_web::routes::ApiRouter::new(ROUTES, auth)
        .route(Method::POST, "/v1/tasks", tasks::create)
        .route(Method::GET, "/v1/tasks", tasks::list)
        .route(Method::GET, "/v1/tasks/{task_uuid}", tasks::get)
        .route(Method::DELETE, "/v1/tasks/{task_uuid}", tasks::cancel)
        .route(
            Method::GET,
            "/v1/tasks/{task_uuid}/transitions",
            tasks::transitions,
        )
        .route(Method::GET, "/v1/templates", templates::list)
        .route(Method::POST, "/v1/templates", templates::register)
        .route(
            Method::GET,
            "/v1/templates/{namespace}/{name}/{version}",
            templates::get,
        )
        .route(Method::GET, "/health/live", health::live)
        .route(Method::GET, "/health/ready", health::ready)
        .route(Method::GET, "/api-docs/openapi.json", openapi::document)
        .build()?;
    Ok(harden(router.with_state(state), hardening))
}

#[cfg(test)]
mod tests;
