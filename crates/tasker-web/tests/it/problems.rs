//! Every error is a problem document with the request id; the hardening headers are set.

use std::time::Duration;

use serde_json::Value;
use tasker_web::harden::HardeningSettings;

use crate::support::*;

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{status}"
    );
    assert!(response.headers().contains_key("x-request-id"));
    (status, response.json().await.expect("a problem document"))
}

#[tokio::test]
async fn router_and_body_errors_are_problem_documents() {
    let served = serve(
        None,
        HardeningSettings {
            body_limit: 1024,
            request_timeout: Duration::from_secs(5),
            cors_allowed_origins: Vec::new(),
        },
    )
    .await;
    let key = ("x-api-key", API_KEY);
    let cases = [
        (served.client.get(served.url("/nowhere")), 404, "not-found"),
        (
            served
                .client
                .delete(served.url("/v1/tasks"))
                .header(key.0, key.1),
            405,
            "method-not-allowed",
        ),
        (
            served
                .client
                .post(served.url("/v1/tasks"))
                .header(key.0, key.1)
                .header("content-type", "application/json")
                .body("{not json"),
            // The key lacks tasks:create: authorization runs before the body is read.
            403,
            "forbidden",
        ),
    ];
    for (request, status, slug) in cases {
        let (got, body) = problem(request.send().await.expect("a response")).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(body["type"], format!("urn:tasker:problem:{slug}"));
        assert_eq!(body["status"], status);
        assert!(body["title"].is_string() && body["detail"].is_string());
    }
}

#[tokio::test]
async fn malformed_and_oversized_bodies_get_4xx_problems() {
    let auth = tasker_web::auth::Authenticator::disabled();
    let served = serve_with(
        auth,
        HardeningSettings {
            body_limit: 1024,
            ..HardeningSettings::default()
        },
    )
    .await;
    let post = |body: String, content_type: &str| {
        served
            .client
            .post(served.url("/v1/tasks"))
            .header("content-type", content_type)
            .body(body)
    };
    let cases = [
        (post("{not json".to_owned(), "application/json"), 400),
        (post("{}".to_owned(), "text/plain"), 415),
        (
            post(format!("\"{}\"", "x".repeat(4096)), "application/json"),
            413,
        ),
        (post("[".repeat(100_000), "application/json"), 413),
    ];
    for (request, status) in cases {
        let (got, body) = problem(request.send().await.expect("a response")).await;
        assert_eq!(got, status, "{body}");
        assert!(
            !body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("serde"),
            "{body}"
        );
    }
    assert_eq!(served.handled(), 0);
}

#[tokio::test]
async fn the_request_id_is_kept_when_sane_and_replaced_otherwise() {
    let served = serve(None, HardeningSettings::default()).await;
    let response = served
        .client
        .get(served.url("/nowhere"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["request_id"], "abc-123");

    let response = served
        .client
        .get(served.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .expect("a response");
    let id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(id.len(), 36, "a UUID");
}

#[tokio::test]
async fn responses_carry_the_security_headers_and_no_cors_by_default() {
    let served = serve(None, HardeningSettings::default()).await;
    let response = served
        .client
        .get(served.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(!headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn configured_origins_get_cors() {
    let served = serve(
        None,
        HardeningSettings {
            cors_allowed_origins: vec!["https://ops.example".parse().expect("a header value")],
            ..HardeningSettings::default()
        },
    )
    .await;
    let allowed = served
        .client
        .get(served.url("/health"))
        .header("origin", "https://ops.example")
        .send()
        .await
        .expect("a response");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://ops.example"
    );
    let other = served
        .client
        .get(served.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("a response");
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}
