//! The route table is checked when the router is built.

use axum::http::Method;
use tasker_web::auth::Authenticator;
use tasker_web::routes::{ApiRouter, RouteTableError};

use crate::support::ROUTES;

#[test]
fn undeclared_unrouted_and_duplicate_routes_are_startup_errors() {
    let errors = ApiRouter::<()>::new(ROUTES, Authenticator::disabled())
        .route(Method::GET, "/health", || async { "ok" })
        .route(Method::GET, "/health", || async { "again" })
        .route(Method::GET, "/v1/tasks", || async { "list" })
        .route(Method::GET, "/v1/secret", || async { "undeclared" })
        .build()
        .expect_err("the router and the table disagree");
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    insta::assert_debug_snapshot!(messages, @r#"
    [
        "route GET /health has two handlers",
        "route GET /v1/secret has a handler but no entry in the route table (hint: declare its access)",
        "route POST /v1/tasks is declared in the route table but has no handler",
    ]
    "#);
    assert!(matches!(errors[0], RouteTableError::Duplicate { .. }));
}
