//! Tasker's web layer: authentication (JWT with a public key or JWKS, API keys), one
//! permission model, `application/problem+json` errors and the hardening every API router
//! gets. The orchestrator's HTTP API is built on it.
//!
//! Entry points:
//! - [`auth::Authenticator`] turns a request's credential into a [`principal::Principal`]:
//!   [`jwt::JwtVerifier`] (keys from a PEM or from [`jwks::Jwks`]) and [`api_key::ApiKeys`].
//! - [`routes::ApiRouter`] builds a router from a route table ([`routes::RouteSpec`]: method,
//!   path, [`routes::Access`]); a route missing from the table, or a table entry without a
//!   handler, is an error at startup, and each route checks its one
//!   [`permission::Permission`].
//! - [`harden::harden`] adds request ids, a body limit, a timeout, CORS (denied unless
//!   configured), security headers, and turns every error response into a
//!   [`problem::Problem`].
//!
//! This crate takes its settings as its own types; the composition root maps
//! `orchestration.web` / `worker.web` onto them.

pub mod api_key;
pub mod auth;
pub mod failure;
pub mod harden;
pub mod jwks;
pub mod jwt;
pub mod permission;
pub mod principal;
pub mod problem;
pub mod routes;

/// `error: cause: cause`, for logs.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
