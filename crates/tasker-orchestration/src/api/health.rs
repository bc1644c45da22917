//! `/health/live` (the process answers) and `/health/ready` (the database answers, the
//! messaging backend is healthy, no circuit breaker is open).

use axum::Json;
use axum::extract::State;
use tasker_messaging::queue::Health;
use tasker_resilience::state::BreakerState;
use tasker_web::problem::{FieldProblem, Problem, ProblemKind};

use super::ApiState;
use super::model::{HealthBody, HealthCheck};

/// How long a readiness check waits for one dependency.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The process is alive.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    responses((status = 200, body = HealthBody))
)]
pub(crate) async fn live() -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok".to_owned(),
        checks: Vec::new(),
    })
}

/// The process can serve: 200 when every dependency is usable, 503 otherwise.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthBody),
        (status = 503, description = "A dependency is unavailable: each one in `errors`", body = super::model::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn ready(State(state): State<ApiState>) -> Result<Json<HealthBody>, Problem> {
    let mut checks = Vec::new();
    let database = tokio::time::timeout(CHECK_TIMEOUT, tasker_db::health::ping(&state.pool)).await;
    checks.push(match database {
        Ok(Ok(())) => check("database", "ok", None),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness: the database did not answer");
            check(
                "database",
                "unavailable",
                Some("the database did not answer".to_owned()),
            )
        }
        Err(_) => check(
            "database",
            "unavailable",
            Some(format!(
                "the database did not answer within {CHECK_TIMEOUT:?}"
            )),
        ),
    });
    if let Some(messaging) = &state.messaging {
        let report = tokio::time::timeout(CHECK_TIMEOUT, messaging.queue.health()).await;
        checks.push(match report.map(|report| report.health) {
            Ok(Health::Healthy) => check("messaging", "ok", None),
            Ok(Health::Degraded { reason }) => check("messaging", "degraded", Some(reason)),
            Ok(Health::Unhealthy { reason }) => check("messaging", "unavailable", Some(reason)),
            Err(_) => check(
                "messaging",
                "unavailable",
                Some(format!("no answer within {CHECK_TIMEOUT:?}")),
            ),
        });
    }
    if let Some(breakers) = &state.breakers {
        for breaker in breakers.all() {
            let name = format!("breaker:{}", breaker.component());
            checks.push(match breaker.state() {
                BreakerState::Closed => check(&name, "ok", None),
                BreakerState::HalfOpen => check(&name, "degraded", Some("half open".to_owned())),
                BreakerState::Open => check(&name, "unavailable", Some("open".to_owned())),
            });
        }
    }
    let unavailable: Vec<FieldProblem> = checks
        .iter()
        .filter(|check| check.status == "unavailable")
        .map(|check| FieldProblem {
            pointer: check.name.clone(),
            detail: check.detail.clone().unwrap_or_default(),
        })
        .collect();
    if !unavailable.is_empty() {
        // A problem document like every error (the checks that failed are its `errors`).
        return Err(
            Problem::new(ProblemKind::Unavailable, "A dependency is unavailable.")
                .with_errors(unavailable),
        );
    }
    Ok(Json(HealthBody {
        status: "ok".to_owned(),
        checks,
    }))
}

fn check(name: &str, status: &str, detail: Option<String>) -> HealthCheck {
    HealthCheck {
        name: name.to_owned(),
        status: status.to_owned(),
        detail,
    }
}
