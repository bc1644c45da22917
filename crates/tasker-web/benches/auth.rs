//! JWT verification per algorithm, API-key verification, and the overhead authentication adds
//! to one request through the router (in process, no sockets).
//!
//! `cargo bench -p tasker-web --bench auth`

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderName, Method, Request};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use tasker_web::api_key::{ApiKeyEntry, ApiKeys};
use tasker_web::auth::Authenticator;
use tasker_web::harden::{HardeningSettings, harden};
use tasker_web::jwt::{DEFAULT_LEEWAY, JwtSettings, JwtVerifier};
use tasker_web::permission::Permission;
use tasker_web::routes::{Access, ApiRouter, RouteSpec};
use tower::ServiceExt as _;

const RSA_PRIVATE: &str = include_str!("../tests/it/keys/rsa.pem");
const RSA_PUBLIC: &str = include_str!("../tests/it/keys/rsa.pub.pem");
const EC_PRIVATE: &str = include_str!("../tests/it/keys/ec.pem");
const EC_PUBLIC: &str = include_str!("../tests/it/keys/ec.pub.pem");
const ED_PRIVATE: &str = include_str!("../tests/it/keys/ed.pem");
const ED_PUBLIC: &str = include_str!("../tests/it/keys/ed.pub.pem");
const API_KEY: &str = "bench-0123456789abcdef0123456789abcdef";

fn claims() -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    json!({"sub": "bench", "iss": "bench", "aud": "tasker-api", "exp": now + 3600, "permissions": ["tasks:list"]})
}

fn settings(alg: Algorithm) -> JwtSettings {
    JwtSettings {
        issuer: "bench".to_owned(),
        audience: "tasker-api".to_owned(),
        algorithms: vec![alg],
        permissions_claim: "permissions".to_owned(),
        leeway: DEFAULT_LEEWAY,
        strict: true,
    }
}

fn jwt_verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("jwt_verify");
    for (alg, public, key) in [
        (
            Algorithm::RS256,
            RSA_PUBLIC,
            EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()),
        ),
        (
            Algorithm::ES256,
            EC_PUBLIC,
            EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()),
        ),
        (
            Algorithm::EdDSA,
            ED_PUBLIC,
            EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()),
        ),
    ] {
        let token = jsonwebtoken::encode(&Header::new(alg), &claims(), &key.expect("a key"))
            .expect("a token");
        let verifier = JwtVerifier::with_public_key(settings(alg), public).expect("a verifier");
        group.bench_function(format!("{alg:?}"), |b| {
            b.iter(|| runtime.block_on(verifier.verify(&token)).expect("valid"));
        });
    }
    // HS256 is refused by the verifier (asymmetric keys only); jsonwebtoken's own HS256
    // verification is measured for comparison.
    let secret = b"a-shared-secret-of-thirty-two-by";
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(secret).expect("a key"),
    )
    .expect("a token");
    let key = DecodingKey::from_secret(secret).expect("a key");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["tasker-api"]);
    group.bench_function("HS256 (jsonwebtoken only)", |b| {
        b.iter(|| jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("valid"));
    });
    group.finish();
}

static ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::GET,
        path: "/public",
        access: Access::Public,
    },
    RouteSpec {
        method: Method::GET,
        path: "/guarded",
        access: Access::Requires(Permission::TasksList),
    },
];

/// A credential header: name and value.
type Credential = (&'static str, String);

fn request_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let keys = ApiKeys::new(vec![ApiKeyEntry {
        key: API_KEY.to_owned(),
        permissions: vec!["tasks:list".to_owned()],
        description: "bench".to_owned(),
    }])
    .expect("keys");
    let verifier =
        JwtVerifier::with_public_key(settings(Algorithm::ES256), EC_PUBLIC).expect("a verifier");
    let auth = Authenticator::new(
        Some(verifier),
        Some(keys),
        HeaderName::from_static("x-api-key"),
        None,
    )
    .expect("an authenticator");
    let router = ApiRouter::new(ROUTES, auth)
        .route(Method::GET, "/public", || async { "ok" })
        .route(Method::GET, "/guarded", || async { "ok" })
        .build()
        .expect("a router");
    let router = harden(router, &HardeningSettings::default());
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims(),
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("a key"),
    )
    .expect("a token");
    let mut group = c.benchmark_group("request");
    let cases: [(&str, &str, Option<Credential>); 3] = [
        ("unauthenticated", "/public", None),
        (
            "api_key",
            "/guarded",
            Some(("x-api-key", API_KEY.to_owned())),
        ),
        (
            "jwt_es256",
            "/guarded",
            Some(("authorization", format!("Bearer {token}"))),
        ),
    ];
    for (name, path, header) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut request = Request::get(path);
                if let Some((name, value)) = &header {
                    request = request.header(*name, value);
                }
                let request = request.body(Body::empty()).expect("a request");
                let response = runtime
                    .block_on(router.clone().oneshot(request))
                    .expect("infallible");
                assert_eq!(response.status(), 200);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, jwt_verification, request_overhead);
criterion_main!(benches);
