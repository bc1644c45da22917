//! Forged, stale and malformed credentials against the real server: each is refused with the
//! right status and reason, and reaches no handler.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use tasker_web::harden::HardeningSettings;
use tasker_web::jwt::JwtVerifier;

use crate::support::*;

async fn rsa_server() -> Served {
    let verifier = JwtVerifier::with_public_key(
        jwt_settings(vec![Algorithm::RS256, Algorithm::ES256]),
        RSA_PUBLIC,
    )
    .expect("a verifier");
    serve(Some(verifier), HardeningSettings::default()).await
}

/// `(status, reason)` of `GET /v1/tasks` with these headers.
async fn attempt(
    served: &Served,
    headers: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = served.client.get(served.url("/v1/tasks"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("a response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().expect("an object").remove(key);
    } else {
        claims[key] = value;
    }
    claims
}

#[tokio::test]
async fn forged_stale_and_misdirected_tokens_are_refused_without_side_effects() {
    let served = rsa_server().await;
    let good = claims(&["tasks:list"]);
    let header_none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64(good.to_string().as_bytes());
    let valid = sign(Algorithm::RS256, None, &good, RSA_PRIVATE);
    let mut parts: Vec<&str> = valid.split('.').collect();
    let tampered_body = b64(with(good.clone(), "permissions", json!(["tasks:*"]))
        .to_string()
        .as_bytes());
    parts[1] = &tampered_body;
    let tampered = parts.join(".");

    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("alg none", format!("{header_none}.{body}."), 401, "invalid"),
        (
            "RS256 -> HS256 confusion with the public key as secret",
            sign(Algorithm::HS256, None, &good, RSA_PUBLIC),
            401,
            "invalid",
        ),
        (
            "ES256 token for an RSA key",
            sign(Algorithm::ES256, None, &good, EC_PRIVATE),
            401,
            "invalid",
        ),
        (
            "expired",
            sign(
                Algorithm::RS256,
                None,
                &with(good.clone(), "exp", json!(now() - 120)),
                RSA_PRIVATE,
            ),
            401,
            "expired",
        ),
        (
            "nbf in the future",
            sign(
                Algorithm::RS256,
                None,
                &with(good.clone(), "nbf", json!(now() + 600)),
                RSA_PRIVATE,
            ),
            401,
            "not_yet_valid",
        ),
        (
            "wrong aud",
            sign(
                Algorithm::RS256,
                None,
                &with(good.clone(), "aud", json!("another-api")),
                RSA_PRIVATE,
            ),
            401,
            "invalid",
        ),
        (
            "wrong iss",
            sign(
                Algorithm::RS256,
                None,
                &with(good.clone(), "iss", json!("evil")),
                RSA_PRIVATE,
            ),
            401,
            "invalid",
        ),
        (
            "missing exp",
            sign(
                Algorithm::RS256,
                None,
                &with(good.clone(), "exp", Value::Null),
                RSA_PRIVATE,
            ),
            401,
            "invalid",
        ),
        (
            "missing sub",
            sign(
                Algorithm::RS256,
                None,
                &with(good.clone(), "sub", Value::Null),
                RSA_PRIVATE,
            ),
            401,
            "invalid",
        ),
        ("tampered payload", tampered, 401, "invalid"),
        (
            "signed by another key",
            sign(Algorithm::RS256, None, &good, RSA_OTHER_PRIVATE),
            401,
            "invalid",
        ),
        (
            "oversized token",
            format!("{valid}{}", "A".repeat(9000)),
            401,
            "malformed",
        ),
        ("not a JWT", "abc".to_owned(), 401, "invalid"),
        (
            "permissions not an array",
            sign(
                Algorithm::RS256,
                None,
                &with(good.clone(), "permissions", json!("tasks:list")),
                RSA_PRIVATE,
            ),
            401,
            "invalid",
        ),
    ];
    for (name, token, status, reason) in &cases {
        let (got, body, headers) = attempt(&served, &[("authorization", &bearer(token))]).await;
        assert_eq!(
            (got, body["reason"].as_str()),
            (*status, Some(*reason)),
            "{name}: {body}"
        );
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{name}"
        );
        assert_eq!(
            headers["www-authenticate"], r#"Bearer realm="tasker", error="invalid_token""#,
            "{name}"
        );
        assert_eq!(body["type"], "urn:tasker:problem:unauthorized", "{name}");
        assert!(body["request_id"].is_string(), "{name}: {body}");
    }
    assert_eq!(served.handled(), 0, "no forged request reached a handler");

    let (got, _, _) = attempt(&served, &[("authorization", &bearer(&valid))]).await;
    assert_eq!(got, 200, "the untouched token is accepted");
    assert_eq!(served.handled(), 1);
}

#[tokio::test]
async fn oversized_tokens_and_headers_are_refused() {
    let served = rsa_server().await;
    let large = "A".repeat(64 * 1024);
    let (status, body, _) = attempt(&served, &[("authorization", &bearer(&large))]).await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("malformed")));
    // Past the server's header buffer, hyper refuses the request before any handler.
    let huge = "A".repeat(1024 * 1024);
    let refused = served
        .client
        .get(served.url("/v1/tasks"))
        .header("authorization", bearer(&huge))
        .send()
        .await;
    match refused {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(error) => assert!(
            error.is_request() || error.is_connect() || error.is_body(),
            "{error}"
        ),
    }
    assert_eq!(served.handled(), 0);
}

#[tokio::test]
async fn a_missing_credential_gets_a_challenge() {
    let served = rsa_server().await;
    let (status, body, headers) = attempt(&served, &[]).await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("missing")));
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="tasker""#);
    let (status, body, _) = attempt(&served, &[("authorization", "Basic YWxpY2U6cHc=")]).await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("malformed")));
    assert_eq!(served.handled(), 0);
}

#[tokio::test]
async fn api_keys_must_match_to_the_last_byte() {
    let served = rsa_server().await;
    let mut last = API_KEY.to_owned();
    let changed = if last.ends_with('f') { 'e' } else { 'f' };
    last.pop();
    last.push(changed);
    for key in [
        last.as_str(),
        &API_KEY[1..],
        &format!("{API_KEY}0"),
        &API_KEY.to_uppercase(),
    ] {
        let (status, body, _) = attempt(&served, &[("x-api-key", key)]).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (401, Some("invalid")),
            "{key:?}"
        );
    }
    assert_eq!(served.handled(), 0);
    let (status, _, _) = attempt(&served, &[("x-api-key", API_KEY)]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn wildcard_edge_cases_grant_nothing() {
    let served = rsa_server().await;
    for grant in [
        "task:*",
        "tasks:",
        "*:read",
        "tasks:*x",
        "*",
        "*:*",
        "tasks:list ",
    ] {
        let token = sign(Algorithm::RS256, None, &claims(&[grant]), RSA_PRIVATE);
        let (status, body, _) = attempt(&served, &[("authorization", &bearer(&token))]).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (401, Some("unknown_permission")),
            "{grant:?}: {body}"
        );
    }
    assert_eq!(served.handled(), 0);
    let token = sign(Algorithm::RS256, None, &claims(&["tasks:*"]), RSA_PRIVATE);
    let (status, _, _) = attempt(&served, &[("authorization", &bearer(&token))]).await;
    assert_eq!(status, 200, "`tasks:*` allows tasks:list");
}

#[tokio::test]
async fn a_valid_token_without_the_permission_is_forbidden() {
    let served = rsa_server().await;
    let token = sign(
        Algorithm::RS256,
        None,
        &claims(&["templates:*"]),
        RSA_PRIVATE,
    );
    let (status, body, _) = attempt(&served, &[("authorization", &bearer(&token))]).await;
    assert_eq!(status, 403);
    assert_eq!(body["type"], "urn:tasker:problem:forbidden");
    assert_eq!(
        body["detail"],
        "This request needs the permission `tasks:list`."
    );
    assert_eq!(served.handled(), 0);
}

#[tokio::test]
async fn each_algorithm_verifies_with_its_own_key_family() {
    for (alg, private, public) in [
        (Algorithm::RS256, RSA_PRIVATE, RSA_PUBLIC),
        (Algorithm::ES256, EC_PRIVATE, EC_PUBLIC),
        (Algorithm::EdDSA, ED_PRIVATE, ED_PUBLIC),
    ] {
        let verifier =
            JwtVerifier::with_public_key(jwt_settings(vec![alg]), public).expect("a verifier");
        let principal = verifier
            .verify(&sign(alg, None, &claims(&["tasks:read"]), private))
            .await
            .expect("verified");
        assert_eq!(principal.subject, "alice");
    }
}

#[test]
fn a_key_without_a_configured_algorithm_of_its_family_is_a_startup_error() {
    let error = JwtVerifier::with_public_key(jwt_settings(vec![Algorithm::ES256]), RSA_PUBLIC)
        .expect_err("no RSA algorithm configured");
    insta::assert_snapshot!(error.to_string(), @"no algorithm of `jwt_allowed_algorithms` (ES256) can be verified with this RSA key (hint: use RS256, RS384, RS512, PS256, PS384 or PS512)");
    let error = JwtVerifier::with_public_key(jwt_settings(vec![Algorithm::HS256]), RSA_PUBLIC)
        .expect_err("symmetric");
    insta::assert_snapshot!(error.to_string(), @"`jwt_allowed_algorithms` must name asymmetric algorithms only; HS256 is not one");
    let error = JwtVerifier::with_public_key(jwt_settings(vec![Algorithm::RS256]), "not a key")
        .expect_err("unreadable");
    insta::assert_snapshot!(error.to_string(), @"the JWT public key is not a PEM-encoded RSA, EC or Ed25519 public key (hint: it starts with `-----BEGIN PUBLIC KEY-----`)");
}
