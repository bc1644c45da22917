//! A small guarded API served on 127.0.0.1, tokens signed with the test keys, and a client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::http::{HeaderName, Method};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tasker_web::api_key::{ApiKeyEntry, ApiKeys};
use tasker_web::auth::Authenticator;
use tasker_web::harden::{HardeningSettings, harden};
use tasker_web::jwt::{DEFAULT_LEEWAY, JwtSettings, JwtVerifier};
use tasker_web::permission::Permission;
use tasker_web::routes::{Access, ApiRouter, RouteSpec};

pub(crate) const RSA_PRIVATE: &str = include_str!("keys/rsa.pem");
pub(crate) const RSA_PUBLIC: &str = include_str!("keys/rsa.pub.pem");
pub(crate) const RSA_OTHER_PRIVATE: &str = include_str!("keys/rsa-other.pem");
pub(crate) const EC_PRIVATE: &str = include_str!("keys/ec.pem");
pub(crate) const EC_PUBLIC: &str = include_str!("keys/ec.pub.pem");
pub(crate) const ED_PRIVATE: &str = include_str!("keys/ed.pem");
pub(crate) const ED_PUBLIC: &str = include_str!("keys/ed.pub.pem");

pub(crate) const ISSUER: &str = "tasker-test";
pub(crate) const AUDIENCE: &str = "tasker-api";
pub(crate) const API_KEY: &str = "k3y-0123456789abcdef0123456789abcdef";

/// The routes of the test API.
pub(crate) static ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::GET,
        path: "/health",
        access: Access::Public,
    },
    RouteSpec {
        method: Method::GET,
        path: "/v1/tasks",
        access: Access::Requires(Permission::TasksList),
    },
    RouteSpec {
        method: Method::POST,
        path: "/v1/tasks",
        access: Access::Requires(Permission::TasksCreate),
    },
];

/// A served test API and what its handlers did.
pub(crate) struct Served {
    pub(crate) base: String,
    /// Requests that reached a guarded handler: the side effects.
    pub(crate) handled: Arc<AtomicU64>,
    pub(crate) client: reqwest::Client,
}

impl Served {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn handled(&self) -> u64 {
        self.handled.load(Ordering::SeqCst)
    }
}

pub(crate) fn jwt_settings(algorithms: Vec<Algorithm>) -> JwtSettings {
    JwtSettings {
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        algorithms,
        permissions_claim: "permissions".to_owned(),
        leeway: DEFAULT_LEEWAY,
        strict: true,
    }
}

pub(crate) fn api_keys() -> ApiKeys {
    ApiKeys::new(vec![ApiKeyEntry {
        key: API_KEY.to_owned(),
        permissions: vec!["tasks:list".to_owned()],
        description: "ci".to_owned(),
    }])
    .expect("valid keys")
}

/// Serves the test API with `verifier` and the API key, hardened with `settings`.
pub(crate) async fn serve(verifier: Option<JwtVerifier>, settings: HardeningSettings) -> Served {
    let auth = Authenticator::new(
        verifier,
        Some(api_keys()),
        HeaderName::from_static("x-api-key"),
        None,
    )
    .expect("an authenticator");
    serve_with(auth, settings).await
}

pub(crate) async fn serve_with(auth: Authenticator, settings: HardeningSettings) -> Served {
    let handled = Arc::new(AtomicU64::new(0));
    let list = {
        let handled = Arc::clone(&handled);
        move || async move {
            handled.fetch_add(1, Ordering::SeqCst);
            Json(json!({"tasks": []}))
        }
    };
    let create = {
        let handled = Arc::clone(&handled);
        move |Json(body): Json<Value>| async move {
            handled.fetch_add(1, Ordering::SeqCst);
            Json(body)
        }
    };
    let router: Router = ApiRouter::new(ROUTES, auth)
        .route(Method::GET, "/health", || async { "ok" })
        .route(Method::GET, "/v1/tasks", list)
        .route(Method::POST, "/v1/tasks", create)
        .build()
        .expect("the table matches");
    let router = harden(router, &settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address: SocketAddr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Served {
        base: format!("http://{address}"),
        handled,
        client: client(),
    }
}

/// An HTTP client (reqwest over rustls needs the process's TLS provider, as the JWKS client
/// does).
#[expect(
    deprecated,
    reason = "ring is the provider the workspace links; see tasker-web's jwks.rs"
)]
pub(crate) fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Valid claims granting `permissions`.
pub(crate) fn claims(permissions: &[&str]) -> Value {
    json!({
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 600,
        "iat": now(),
        "permissions": permissions,
    })
}

pub(crate) fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, private_pem: &str) -> String {
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => {
            EncodingKey::from_rsa_pem(private_pem.as_bytes())
        }
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(private_pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()),
        _ => EncodingKey::from_secret(private_pem.as_bytes()),
    }
    .expect("a signing key");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("a token")
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
