//! [`Problem`]: every error response is `application/problem+json` (RFC 9457), with a stable
//! `type` per kind of error, the request id, and nothing internal: no SQL, no stack, no secret.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The prefix of every problem `type`; the kind's slug follows (`urn:tasker:problem:unauthorized`).
pub const TYPE_PREFIX: &str = "urn:tasker:problem:";

/// The kinds of problem, each with a stable `type`, a title and a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// 400: the request is malformed (a body that is not JSON, a bad path or query).
    BadRequest,
    /// 401: no valid credential.
    Unauthorized,
    /// 403: authenticated, but the permission is missing.
    Forbidden,
    /// 404: no such resource or route.
    NotFound,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 408: the request took longer than the configured timeout.
    Timeout,
    /// 409: the request conflicts with the resource's state.
    Conflict,
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: the body is well-formed but invalid; `errors` lists every problem.
    Validation,
    /// 429: too many requests.
    TooManyRequests,
    /// 500: an internal failure (details are logged, never sent).
    Internal,
    /// 503: a dependency is unavailable (database, broker, keys); try again later.
    Unavailable,
}

impl ProblemKind {
    /// Every kind, for documentation.
    pub const ALL: [Self; 13] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Timeout,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Validation,
        Self::TooManyRequests,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The slug after [`TYPE_PREFIX`].
    pub fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Timeout => "timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Validation => "validation",
            Self::TooManyRequests => "too-many-requests",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    /// The status.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The title: the same for every occurrence of the kind.
    pub fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "The request is malformed",
            Self::Unauthorized => "Authentication is required",
            Self::Forbidden => "The permission is missing",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "The method is not allowed",
            Self::Timeout => "The request timed out",
            Self::Conflict => "The request conflicts with the current state",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "The request body's media type is not supported",
            Self::Validation => "The request is invalid",
            Self::TooManyRequests => "Too many requests",
            Self::Internal => "Internal error",
            Self::Unavailable => "The service is unavailable",
        }
    }

    /// The kind of a status that no handler described (the body limit's 413, the router's
    /// 404 and 405, the timeout's 408).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::BadRequest,
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::Timeout,
            409 => Self::Conflict,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::Validation,
            429 => Self::TooManyRequests,
            503 => Self::Unavailable,
            code if code < 500 => Self::BadRequest,
            _ => Self::Internal,
        }
    }

    /// The `type` URI.
    pub fn type_uri(self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug())
    }
}

/// One problem of a 422 (or 400) answer, located by a JSON pointer into the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// JSON pointer (RFC 6901) into the request body (`/context/amount`), or the parameter's
    /// name for path and query problems.
    pub pointer: String,
    /// What is wrong.
    pub detail: String,
}

/// An RFC 9457 problem document, and the response that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldProblem>,
    #[serde(skip)]
    kind: ProblemKind,
    #[serde(skip)]
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem of `kind` with a human-readable `detail` for this occurrence. The detail is
    /// sent to the caller: it must not carry internals.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            type_uri: kind.type_uri(),
            title: kind.title(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            request_id: None,
            reason: None,
            errors: Vec::new(),
            kind,
            headers: Vec::new(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The located problems.
    pub fn errors(&self) -> &[FieldProblem] {
        &self.errors
    }

    /// Adds located problems (422).
    pub fn with_errors(mut self, errors: Vec<FieldProblem>) -> Self {
        self.errors = errors;
        self
    }

    /// Adds a machine-readable reason (authentication failures: `expired`, `invalid`, ...).
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Adds a response header (`WWW-Authenticate`, `Retry-After`).
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the request id the document names.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// A 500 for `error`, which is logged here in full and not sent.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %crate::error_chain(error), "a request failed");
        Self::new(
            ProblemKind::Internal,
            "The request failed on the server; it is logged with the request id.",
        )
    }

    fn render(&self) -> Response {
        let body = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.kind.status(), body).into_response();
        let headers: &mut HeaderMap = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        response
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = self.render();
        // The problem layer fills in the request id and renders again.
        response.extensions_mut().insert(self);
        response
    }
}

/// Makes every error response a problem document with the request id: a [`Problem`] returned
/// by a handler gets the id; any other 4xx/5xx (the router's 404/405, the body limit's 413,
/// the timeout's 408, an extractor's rejection) is replaced by the problem of its status.
pub(crate) async fn problem_layer(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let request_id = request
        .headers()
        .get(crate::harden::REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut response = next.run(request).await;
    let status = response.status();
    if let Some(problem) = response.extensions_mut().remove::<Problem>() {
        let mut rendered = problem.with_request_id(request_id).render();
        copy_request_id(&response, &mut rendered);
        return rendered;
    }
    if status.is_client_error() || status.is_server_error() {
        let kind = ProblemKind::for_status(status);
        let detail = match kind {
            ProblemKind::NotFound => "No route or resource matches the request.",
            ProblemKind::MethodNotAllowed => "The route does not take this method.",
            ProblemKind::PayloadTooLarge => "The request body is larger than the server accepts.",
            ProblemKind::Timeout => "The request took longer than the server allows.",
            ProblemKind::UnsupportedMediaType => "Send the body as `application/json`.",
            ProblemKind::Internal => {
                "The request failed on the server; it is logged with the request id."
            }
            _ => "The request could not be read.",
        };
        let mut problem = Problem::new(kind, detail).with_request_id(request_id);
        problem.status = status.as_u16();
        let mut rendered = problem.render();
        *rendered.status_mut() = status;
        for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
            if let Some(value) = response.headers().get(&name) {
                rendered.headers_mut().insert(name, value.clone());
            }
        }
        copy_request_id(&response, &mut rendered);
        return rendered;
    }
    response
}

fn copy_request_id(from: &Response, to: &mut Response) {
    if let Some(value) = from.headers().get(crate::harden::REQUEST_ID) {
        to.headers_mut()
            .insert(crate::harden::REQUEST_ID, value.clone());
    }
}
