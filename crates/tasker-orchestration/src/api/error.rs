//! Failures of the API's dependencies, as problems: logged in full here, answered without
//! internals (a database that cannot be reached is a 503 the caller may retry; anything else a
//! 500 with the request id).

use tasker_web::problem::{Problem, ProblemKind};

/// The answer to a failure of the database (or another dependency) while serving a request.
pub(crate) fn dependency(error: &(dyn std::error::Error + 'static)) -> Problem {
    if is_unavailable(error) {
        tracing::warn!(error = %chain(error), "a request failed: the database is unavailable");
        return Problem::new(
            ProblemKind::Unavailable,
            "The database is unavailable; try again later.",
        );
    }
    Problem::internal(error)
}

/// Whether the chain holds a sqlx error that says the database could not be reached (pool
/// timeout, closed pool, IO, TLS), as opposed to one that it answered.
fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(sqlx) = error.downcast_ref::<sqlx::Error>() {
            return matches!(
                sqlx,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            );
        }
        current = error.source();
    }
    false
}

fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A 404 for `what`.
pub(crate) fn not_found(what: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::NotFound, what)
}

/// A 400 naming the parameter at fault.
pub(crate) fn bad_parameter(name: &str, detail: impl Into<String>) -> Problem {
    let detail = detail.into();
    Problem::new(
        ProblemKind::BadRequest,
        format!("The parameter `{name}` is invalid: {detail}"),
    )
    .with_errors(vec![tasker_web::problem::FieldProblem {
        pointer: name.to_owned(),
        detail,
    }])
}
