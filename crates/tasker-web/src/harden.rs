//! Hardening every API router gets: request ids, a body limit, a request timeout, CORS (denied
//! unless origins are configured), security headers, and problem documents for every error.

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

/// The request id header: taken from the caller when it is sane, generated otherwise, and
/// returned on every response and in every problem document.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-supplied request id kept; a longer or odd one is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The hardening settings (the composition root maps `*.web` onto them).
#[derive(Debug, Clone)]
pub struct HardeningSettings {
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// The longest a request may take (`request_timeout_ms`); past it the answer is 408.
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser; empty denies every cross-origin call.
    pub cors_allowed_origins: Vec<HeaderValue>,
}

impl Default for HardeningSettings {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// Wraps `router` in the hardening layers. Apply it last, to the whole router.
pub fn harden<S>(router: Router<S>, settings: &HardeningSettings) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(RequestBodyLimitLayer::new(settings.body_limit));
    if !settings.cors_allowed_origins.is_empty() {
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(settings.cors_allowed_origins.clone()))
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
                .expose_headers([REQUEST_ID])
                .max_age(Duration::from_secs(600)),
        );
    }
    // Outside the limit, the timeout and CORS, so their answers become problems too; inside
    // the request id, which it reads.
    router = router.layer(middleware::from_fn(crate::problem::problem_layer));
    let security_headers: [(HeaderName, &'static str); 5] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in security_headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router.layer(middleware::from_fn(request_id))
}

/// Keeps the caller's `x-request-id` when it is 1 to 128 characters of `[A-Za-z0-9._:-]`,
/// replaces it with a new UUID otherwise, and returns it on the response.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| is_sane(value.as_bytes()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        });
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

fn is_sane(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}
