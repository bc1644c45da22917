//! Keys from a JWKS endpoint (a local server): rotation, the fetch rules under a flood of
//! unknown `kid`s, single flight, staleness, and bounded fetches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use tasker_web::failure::AuthFailure;
use tasker_web::jwks::{Jwks, JwksFetchError, JwksSettings};
use tasker_web::jwt::JwtVerifier;

use crate::support::*;

#[derive(Clone)]
enum Mode {
    Keys(JwkSet),
    Fail,
    Huge,
    Redirect,
}

#[derive(Clone)]
struct Endpoint {
    mode: Arc<Mutex<Mode>>,
    fetches: Arc<AtomicU64>,
    url: String,
}

impl Endpoint {
    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("not poisoned") = mode;
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn document(State(endpoint): State<Endpoint>) -> Response {
    endpoint.fetches.fetch_add(1, Ordering::SeqCst);
    let mode = endpoint.mode.lock().expect("not poisoned").clone();
    match mode {
        Mode::Keys(set) => axum::Json(set).into_response(),
        Mode::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Huge => "x".repeat(2 * 1024 * 1024).into_response(),
        Mode::Redirect => Redirect::temporary("/elsewhere").into_response(),
    }
}

async fn endpoint(initial: Mode) -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let endpoint = Endpoint {
        mode: Arc::new(Mutex::new(initial)),
        fetches: Arc::new(AtomicU64::new(0)),
        url: format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("an address")
        ),
    };
    let router = Router::new()
        .route("/jwks.json", get(document))
        .route("/elsewhere", get(document))
        .with_state(endpoint.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    endpoint
}

fn jwk(private_pem: &str, alg: Algorithm, kid: &str) -> Jwk {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(private_pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
    }
    .expect("a key");
    let mut jwk = Jwk::from_encoding_key(&key, alg).expect("a jwk");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

fn settings(url: &str) -> JwksSettings {
    JwksSettings {
        allow_http: true,
        ..JwksSettings::new(url)
    }
}

fn verifier(jwks: Jwks) -> JwtVerifier {
    JwtVerifier::with_jwks(
        jwt_settings(vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]),
        jwks,
    )
    .expect("a verifier")
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
    let endpoint = endpoint(Mode::Keys(JwkSet {
        keys: vec![jwk(RSA_PRIVATE, Algorithm::RS256, "k1")],
    }))
    .await;
    let jwks = Jwks::new(JwksSettings {
        min_fetch_interval: Duration::from_secs(60),
        ..settings(&endpoint.url)
    })
    .expect("jwks");
    jwks.refresh().await.expect("the first fetch");
    let served = serve(Some(verifier(jwks)), Default::default()).await;

    // The kid is looked up before the signature is checked, so one signed token with its
    // header swapped stands for a thousand (signing a thousand is slow in a debug build).
    let signed = sign(
        Algorithm::RS256,
        Some("k0"),
        &claims(&["tasks:list"]),
        RSA_PRIVATE,
    );
    let (_, rest) = signed.split_once('.').expect("a JWT");
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let header = b64(format!(r#"{{"alg":"RS256","typ":"JWT","kid":"random-{i}"}}"#).as_bytes());
        let token = format!("{header}.{rest}");
        let client = served.client.clone();
        let url = served.url("/v1/tasks");
        requests.spawn(async move {
            let response = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("a response");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.expect("a problem");
            (status, body["reason"].as_str().map(str::to_owned))
        });
    }
    while let Some(answer) = requests.join_next().await {
        assert_eq!(
            answer.expect("joined"),
            (401, Some("unknown_key".to_owned()))
        );
    }
    assert_eq!(
        endpoint.fetches(),
        1,
        "only the first fetch: the flood fetched nothing"
    );
    assert_eq!(served.handled(), 0);

    let good = sign(
        Algorithm::RS256,
        Some("k1"),
        &claims(&["tasks:list"]),
        RSA_PRIVATE,
    );
    let response = served
        .client
        .get(served.url("/v1/tasks"))
        .bearer_auth(good)
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_for_concurrent_callers() {
    let endpoint = endpoint(Mode::Keys(JwkSet {
        keys: vec![jwk(RSA_PRIVATE, Algorithm::RS256, "old")],
    }))
    .await;
    let jwks = Jwks::new(JwksSettings {
        min_fetch_interval: Duration::ZERO,
        negative_ttl: Duration::ZERO,
        ..settings(&endpoint.url)
    })
    .expect("jwks");
    jwks.refresh().await.expect("the first fetch");
    let verifier = verifier(jwks.clone());
    endpoint.set(Mode::Keys(JwkSet {
        keys: vec![
            jwk(RSA_PRIVATE, Algorithm::RS256, "old"),
            jwk(EC_PRIVATE, Algorithm::ES256, "new-ec"),
            jwk(ED_PRIVATE, Algorithm::EdDSA, "new-ed"),
        ],
    }));
    let token = sign(
        Algorithm::ES256,
        Some("new-ec"),
        &claims(&["tasks:read"]),
        EC_PRIVATE,
    );
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let verifier = verifier.clone();
        let token = token.clone();
        callers.spawn(async move { verifier.verify(&token).await.map(|p| p.subject) });
    }
    while let Some(result) = callers.join_next().await {
        assert_eq!(result.expect("joined"), Ok("alice".to_owned()));
    }
    assert_eq!(endpoint.fetches(), 2, "one fetch served all 32 callers");
    let ed = sign(Algorithm::EdDSA, Some("new-ed"), &claims(&[]), ED_PRIVATE);
    assert!(verifier.verify(&ed).await.is_ok());
    assert_eq!(jwks.stats().keys, 3);
}

#[tokio::test]
async fn a_key_pinned_to_an_algorithm_verifies_only_that_one() {
    let mut pinned = jwk(RSA_PRIVATE, Algorithm::RS256, "rsa");
    pinned.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::RS256);
    let endpoint = endpoint(Mode::Keys(JwkSet { keys: vec![pinned] })).await;
    let jwks = Jwks::new(settings(&endpoint.url)).expect("jwks");
    jwks.refresh().await.expect("fetched");
    let verifier =
        JwtVerifier::with_jwks(jwt_settings(vec![Algorithm::RS256, Algorithm::PS256]), jwks)
            .expect("a verifier");
    let ps = sign(Algorithm::PS256, Some("rsa"), &claims(&[]), RSA_PRIVATE);
    assert_eq!(
        verifier.verify(&ps).await,
        Err(AuthFailure::AlgorithmNotAccepted(Algorithm::PS256))
    );
    let rs = sign(Algorithm::RS256, Some("rsa"), &claims(&[]), RSA_PRIVATE);
    assert!(verifier.verify(&rs).await.is_ok());
}

#[tokio::test]
async fn stale_keys_serve_while_refreshes_fail_then_stop() {
    let endpoint = endpoint(Mode::Keys(JwkSet {
        keys: vec![jwk(RSA_PRIVATE, Algorithm::RS256, "k1")],
    }))
    .await;
    let jwks = Jwks::new(JwksSettings {
        refresh_interval: Duration::from_secs(2),
        max_stale: Duration::from_secs(1),
        min_fetch_interval: Duration::from_millis(200),
        ..settings(&endpoint.url)
    })
    .expect("jwks");
    jwks.refresh().await.expect("the first fetch");
    let _refresher = jwks.spawn_refresher();
    endpoint.set(Mode::Fail);
    let verifier = verifier(jwks.clone());
    let token = sign(Algorithm::RS256, Some("k1"), &claims(&[]), RSA_PRIVATE);
    assert!(verifier.verify(&token).await.is_ok(), "fresh keys");
    // Past refresh + max_stale (3 s) with every refresh failing, the keys are no longer used.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match verifier.verify(&token).await {
            Ok(_) => {}
            Err(failure) => {
                assert_eq!(failure, AuthFailure::KeysUnavailable);
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stale keys were never retired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!jwks.stats().healthy);
    assert!(endpoint.fetches() >= 2, "the refresher kept trying");
}

#[tokio::test]
async fn fetches_are_bounded() {
    let endpoint = endpoint(Mode::Huge).await;
    let jwks = Jwks::new(settings(&endpoint.url)).expect("jwks");
    assert_eq!(
        jwks.refresh().await,
        Err(JwksFetchError::TooLarge(256 * 1024))
    );
    endpoint.set(Mode::Redirect);
    assert_eq!(jwks.refresh().await, Err(JwksFetchError::Status(307)));
    assert_eq!(endpoint.fetches(), 2, "the redirect was not followed");
    endpoint.set(Mode::Fail);
    assert_eq!(jwks.refresh().await, Err(JwksFetchError::Status(500)));
    let verifier = verifier(jwks);
    let token = sign(Algorithm::RS256, Some("k1"), &claims(&[]), RSA_PRIVATE);
    assert_eq!(
        verifier.verify(&token).await,
        Err(AuthFailure::KeysUnavailable)
    );
}

#[test]
fn an_insecure_url_is_refused_at_startup() {
    let error = Jwks::new(JwksSettings::new("http://idp.example.com/jwks.json")).expect_err("http");
    insta::assert_snapshot!(error.to_string(), @"`jwks_url` must use https (got `http`; hint: set `jwks_url_allow_http = true` for local testing only)");
}
