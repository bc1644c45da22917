//! [`Authenticator`]: turns a request's credential (a bearer token or an API key) into a
//! [`Principal`], recording each attempt's method, outcome and time.

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use tasker_metrics::security::SecurityMetrics;

use crate::api_key::ApiKeys;
use crate::failure::AuthFailure;
use crate::jwt::JwtVerifier;
use crate::principal::Principal;
use crate::problem::{Problem, ProblemKind};

/// Why an authenticator could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    /// Authentication is enabled, but neither tokens nor API keys are configured.
    #[error(
        "authentication is enabled but accepts no credential (hint: configure a JWT public key or `jwks_url`, or enable `api_keys`)"
    )]
    NoMethod,
}

/// Authenticates requests. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    enabled: bool,
    jwt: Option<JwtVerifier>,
    api_keys: Option<ApiKeys>,
    api_key_header: HeaderName,
    metrics: Option<SecurityMetrics>,
}

impl Authenticator {
    /// No authentication: every request is [`Principal::anonymous`]. Say so loudly in the
    /// process's log; it is meant for development and tests.
    pub fn disabled() -> Self {
        Self {
            inner: Arc::new(Inner {
                enabled: false,
                jwt: None,
                api_keys: None,
                api_key_header: HeaderName::from_static("x-api-key"),
                metrics: None,
            }),
        }
    }

    /// Authentication by bearer token (if `jwt`), by API key in `api_key_header` (if
    /// `api_keys`), or both.
    pub fn new(
        jwt: Option<JwtVerifier>,
        api_keys: Option<ApiKeys>,
        api_key_header: HeaderName,
        metrics: Option<SecurityMetrics>,
    ) -> Result<Self, AuthConfigError> {
        let api_keys = api_keys.filter(|keys| !keys.is_empty());
        if jwt.is_none() && api_keys.is_none() {
            return Err(AuthConfigError::NoMethod);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                enabled: true,
                jwt,
                api_keys,
                api_key_header,
                metrics,
            }),
        })
    }

    /// Whether requests must authenticate.
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// The principal of a request with these headers. A bearer token wins over an API key.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthFailure> {
        if !self.inner.enabled {
            return Ok(Principal::anonymous());
        }
        let started = Instant::now();
        let (method, result) = self.attempt(headers).await;
        if let Some(metrics) = &self.inner.metrics {
            let outcome = match &result {
                Ok(_) => "success",
                Err(failure) => failure.reason(),
            };
            metrics.authentication(method, outcome, started.elapsed());
        }
        if let Err(failure) = &result {
            tracing::info!(method, reason = failure.reason(), %failure, "a request did not authenticate");
        }
        result
    }

    async fn attempt(&self, headers: &HeaderMap) -> (&'static str, Result<Principal, AuthFailure>) {
        let bearer = match bearer_token(headers) {
            Ok(bearer) => bearer,
            Err(failure) => return ("jwt", Err(failure)),
        };
        if let Some(token) = bearer {
            let Some(jwt) = &self.inner.jwt else {
                return (
                    "jwt",
                    Err(AuthFailure::Malformed(
                        "bearer tokens are not accepted here",
                    )),
                );
            };
            return ("jwt", jwt.verify(token).await);
        }
        if let Some(value) = headers.get(&self.inner.api_key_header) {
            let Ok(key) = value.to_str() else {
                return (
                    "api_key",
                    Err(AuthFailure::Malformed("the API key is not ASCII")),
                );
            };
            let Some(keys) = &self.inner.api_keys else {
                return ("api_key", Err(AuthFailure::InvalidApiKey));
            };
            return (
                "api_key",
                keys.verify(key).ok_or(AuthFailure::InvalidApiKey),
            );
        }
        if headers.contains_key(header::AUTHORIZATION) {
            return (
                "none",
                Err(AuthFailure::Malformed("only the Bearer scheme is accepted")),
            );
        }
        ("none", Err(AuthFailure::Missing))
    }

    /// The answer to a failed authentication: 401 with `WWW-Authenticate` (RFC 6750), or 503
    /// when the keys are unavailable.
    pub fn problem(&self, failure: &AuthFailure) -> Problem {
        if failure.is_unavailable() {
            return Problem::new(ProblemKind::Unavailable, failure.public_detail())
                .with_reason(failure.reason())
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        let mut problem = Problem::new(ProblemKind::Unauthorized, failure.public_detail())
            .with_reason(failure.reason());
        if self.inner.jwt.is_some() {
            let challenge = if matches!(failure, AuthFailure::Missing) {
                HeaderValue::from_static(r#"Bearer realm="tasker""#)
            } else {
                HeaderValue::from_static(r#"Bearer realm="tasker", error="invalid_token""#)
            };
            problem = problem.with_header(header::WWW_AUTHENTICATE, challenge);
        } else {
            problem = problem.with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"ApiKey realm="tasker""#),
            );
        }
        problem
    }

    pub(crate) fn metrics(&self) -> Option<&SecurityMetrics> {
        self.inner.metrics.as_ref()
    }
}

/// The token of an `Authorization: Bearer <token>` header: `Ok(None)` without the header or
/// with another scheme.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthFailure> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthFailure::Malformed("the Authorization header is not ASCII"))?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthFailure::Malformed("the bearer token is empty"));
    }
    Ok(Some(token))
}
