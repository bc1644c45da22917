//! [`Jwks`]: verification keys fetched from a JWKS endpoint, refreshed in the background.
//!
//! The rules that keep an attacker from turning token verification into traffic to the
//! identity provider, or into an outage:
//! - **one fetch at a time**: callers that need a fetch while one is in flight wait for it and
//!   use its result;
//! - **a minimum interval between fetches** (`min_fetch_interval`), whatever asks: an unknown
//!   `kid` triggers a fetch only if none happened within the interval;
//! - **a negative cache**: a `kid` that a fetch did not find is refused without fetching for
//!   `negative_ttl`;
//! - **bounded fetches**: a timeout, a body-size cap, no redirects, `https` only unless
//!   `allow_http` (local testing);
//! - **stale keys**: when refreshes fail, the last keys stay usable for `max_stale` past their
//!   refresh time, then verification fails as unavailable (503), never as a forged success.
//!
//! The background refresher holds only a weak reference: it stops when the last [`Jwks`]
//! handle is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;

use crate::failure::AuthFailure;
use crate::jwt::JwksKey;

/// How the keys are fetched and kept.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// The endpoint (`jwks_url`).
    pub url: String,
    /// Whether `http://` is allowed (`jwks_url_allow_http`; local testing only).
    pub allow_http: bool,
    /// How often the keys are refreshed in the background (`jwks_refresh_interval_seconds`).
    pub refresh_interval: Duration,
    /// How long keys stay usable past their refresh time while refreshes fail
    /// (`jwks_max_stale_seconds`).
    pub max_stale: Duration,
    /// The least time between two fetches, whatever asks for them.
    pub min_fetch_interval: Duration,
    /// How long a `kid` a fetch did not find is refused without fetching.
    pub negative_ttl: Duration,
    /// The longest a fetch may take.
    pub timeout: Duration,
    /// The largest JWKS document accepted, in bytes.
    pub max_body_bytes: usize,
}

impl JwksSettings {
    /// Settings for `url` with the defaults: refresh every hour, stale for 5 minutes, at most
    /// one fetch per 10 s, unknown `kid`s refused for 60 s, 5 s timeout, 256 KiB.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            allow_http: false,
            refresh_interval: Duration::from_secs(3600),
            max_stale: Duration::from_secs(300),
            min_fetch_interval: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            max_body_bytes: 256 * 1024,
        }
    }
}

/// Why the JWKS endpoint cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksConfigError {
    /// The URL does not parse.
    #[error("`jwks_url` is not a valid URL: {0}")]
    InvalidUrl(String),
    /// The scheme is not `https` (or `http` with `allow_http`).
    #[error(
        "`jwks_url` must use https (got `{scheme}`; hint: set `jwks_url_allow_http = true` for local testing only)"
    )]
    InsecureScheme {
        /// The scheme.
        scheme: String,
    },
    /// The HTTP client could not be built.
    #[error("the JWKS HTTP client could not be built: {0}")]
    Client(String),
}

/// Why one fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksFetchError {
    /// The request failed (connection, timeout, redirect refused).
    #[error("fetching the JWKS failed: {0}")]
    Request(String),
    /// The endpoint answered with a non-success status.
    #[error("the JWKS endpoint answered {0}")]
    Status(u16),
    /// The document is larger than the cap.
    #[error("the JWKS document is larger than {0} bytes")]
    TooLarge(usize),
    /// The document is not a JWKS.
    #[error("the JWKS document is not valid: {0}")]
    Invalid(String),
}

/// What the last fetches did, for tests and health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksStats {
    /// Fetches attempted.
    pub fetches: u64,
    /// Keys held.
    pub keys: usize,
    /// Whether the last fetch succeeded.
    pub healthy: bool,
}

/// Verification keys from a JWKS endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Jwks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: JwksSettings,
    /// The URL with any userinfo removed, for logs.
    shown_url: String,
    client: reqwest::Client,
    state: Mutex<State>,
    /// Held while a fetch is in flight: one fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, JwksKey>,
    /// When the keys were last fetched successfully.
    fetched_at: Option<Instant>,
    /// When a fetch last started.
    attempted_at: Option<Instant>,
    /// Whether the last fetch succeeded.
    healthy: bool,
    /// `kid`s a fetch did not find, and when.
    unknown: HashMap<String, Instant>,
}

/// The most `kid`s the negative cache holds; past it, it is cleared (an attacker with random
/// `kid`s cannot grow memory, and is still held to one fetch per interval).
const NEGATIVE_CACHE_CAP: usize = 4096;

impl Jwks {
    /// Checks the settings and builds the client. Fetches nothing: call [`Jwks::refresh`] at
    /// startup, and [`Jwks::spawn_refresher`] for the background refresh.
    pub fn new(settings: JwksSettings) -> Result<Self, JwksConfigError> {
        let url = url::Url::parse(&settings.url)
            .map_err(|error| JwksConfigError::InvalidUrl(error.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if settings.allow_http => {}
            scheme => {
                return Err(JwksConfigError::InsecureScheme {
                    scheme: scheme.to_owned(),
                });
            }
        }
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        install_tls_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|error| JwksConfigError::Client(error.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                shown_url: shown.to_string(),
                client,
                state: Mutex::new(State::default()),
                fetching: tokio::sync::Mutex::new(()),
                fetches: AtomicU64::new(0),
            }),
        })
    }

    /// Fetches the keys now (waiting for a fetch in flight instead, if there is one).
    pub async fn refresh(&self) -> Result<(), JwksFetchError> {
        let _fetching = self.inner.fetching.lock().await;
        self.inner.fetch().await
    }

    /// Starts the background refresh: every `refresh_interval`, or every `min_fetch_interval`
    /// while fetches fail. It stops when the last handle is dropped.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.settings.refresh_interval;
        let retry = self.inner.settings.min_fetch_interval;
        tokio::spawn(async move {
            let mut wait = every;
            loop {
                tokio::time::sleep(wait).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let _fetching = inner.fetching.lock().await;
                wait = match inner.fetch().await {
                    Ok(()) => every,
                    Err(_) => retry,
                };
            }
        })
    }

    /// What the fetches did so far.
    pub fn stats(&self) -> JwksStats {
        let state = self.inner.lock();
        JwksStats {
            fetches: self.inner.fetches.load(Ordering::Relaxed),
            keys: state.keys.len(),
            healthy: state.healthy,
        }
    }

    /// The key `kid`, fetching the document first if the key is unknown (or too stale) and
    /// the rules allow a fetch.
    pub async fn key(&self, kid: &str) -> Result<JwksKey, AuthFailure> {
        let asked = Instant::now();
        if let Lookup::Found(key) = self.inner.lookup(kid, asked) {
            return Ok(key);
        }
        let _fetching = self.inner.fetching.lock().await;
        // A fetch that finished while we waited may have brought the key.
        let lookup = self.inner.lookup(kid, Instant::now());
        if let Lookup::Found(key) = lookup {
            return Ok(key);
        }
        let fetched_since_asked = self
            .inner
            .lock()
            .attempted_at
            .is_some_and(|attempted| attempted >= asked);
        let refused = matches!(lookup, Lookup::RecentlyUnknown);
        if !refused && !fetched_since_asked && self.inner.may_fetch(Instant::now()) {
            // A failure is logged; the answer is what the keys now say.
            let _ = self.inner.fetch().await;
        }
        match self.inner.lookup(kid, Instant::now()) {
            Lookup::Found(key) => Ok(key),
            Lookup::TooStale => Err(AuthFailure::KeysUnavailable),
            Lookup::Absent | Lookup::RecentlyUnknown => {
                let mut state = self.inner.lock();
                if state.keys.is_empty() && !state.healthy {
                    return Err(AuthFailure::KeysUnavailable);
                }
                if state.unknown.len() >= NEGATIVE_CACHE_CAP {
                    state.unknown.clear();
                }
                state
                    .unknown
                    .entry(kid.to_owned())
                    .or_insert_with(Instant::now);
                Err(AuthFailure::UnknownKey)
            }
        }
    }
}

/// What the held keys say about one `kid`.
enum Lookup {
    /// A usable key.
    Found(JwksKey),
    /// The key is held, but past its refresh time plus `max_stale`.
    TooStale,
    /// A fetch did not find it within `negative_ttl`.
    RecentlyUnknown,
    /// Not held.
    Absent,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few maps updated whole; a panic elsewhere cannot leave it torn.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lookup(&self, kid: &str, now: Instant) -> Lookup {
        let state = self.lock();
        if let Some(key) = state.keys.get(kid) {
            let usable = state.fetched_at.is_some_and(|fetched| {
                now <= fetched + self.settings.refresh_interval + self.settings.max_stale
            });
            return if usable {
                Lookup::Found(key.clone())
            } else {
                Lookup::TooStale
            };
        }
        match state.unknown.get(kid) {
            Some(&seen) if now.duration_since(seen) < self.settings.negative_ttl => {
                Lookup::RecentlyUnknown
            }
            _ => Lookup::Absent,
        }
    }

    fn may_fetch(&self, now: Instant) -> bool {
        self.lock().attempted_at.is_none_or(|attempted| {
            now.duration_since(attempted) >= self.settings.min_fetch_interval
        })
    }

    /// One fetch; the caller holds `fetching`.
    async fn fetch(&self) -> Result<(), JwksFetchError> {
        self.lock().attempted_at = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.download().await.and_then(|body| parse(&body));
        let mut state = self.lock();
        match result {
            Ok(keys) => {
                tracing::debug!(url = %self.shown_url, keys = keys.len(), "fetched the JWKS");
                state.unknown.retain(|kid, _| !keys.contains_key(kid));
                state.keys = keys;
                state.fetched_at = Some(Instant::now());
                state.healthy = true;
                Ok(())
            }
            Err(error) => {
                tracing::warn!(url = %self.shown_url, %error, "fetching the JWKS failed; the last keys stay in use while they are not too stale");
                state.healthy = false;
                Err(error)
            }
        }
    }

    async fn download(&self) -> Result<Vec<u8>, JwksFetchError> {
        let request =
            |error: reqwest::Error| JwksFetchError::Request(error.without_url().to_string());
        let mut response = self
            .client
            .get(&self.settings.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(request)?;
        if !response.status().is_success() {
            return Err(JwksFetchError::Status(response.status().as_u16()));
        }
        let cap = self.settings.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(JwksFetchError::TooLarge(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request)? {
            if body.len() + chunk.len() > cap {
                return Err(JwksFetchError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Installs ring as rustls' process-wide provider, which the JWKS client needs. An `Err`
/// means one is installed already, which is as good.
#[expect(
    deprecated,
    reason = "ring is the provider the workspace links (tasker-cache's TLS too); aws-lc-rs, which has the post-quantum key exchanges, needs a C toolchain and cmake to build, and JWKS documents are public"
)]
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The usable keys of a JWKS document, by `kid`. Keys without a `kid`, symmetric keys,
/// encryption keys and keys that do not parse are skipped with a warning: one odd key must not
/// take the others down.
fn parse(body: &[u8]) -> Result<HashMap<String, JwksKey>, JwksFetchError> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|error| JwksFetchError::Invalid(error.to_string()))?;
    let mut keys = HashMap::new();
    for (index, value) in document.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(error) => {
                tracing::warn!(index, %error, "a JWKS key is skipped: not a JWK this verifier reads");
                continue;
            }
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            tracing::warn!(index, "a JWKS key is skipped: it has no `kid`");
            continue;
        };
        match JwksKey::from_jwk(&jwk) {
            Some(key) => {
                keys.insert(kid, key);
            }
            None => tracing::warn!(
                index,
                kid,
                "a JWKS key is skipped: not an asymmetric signature key"
            ),
        }
    }
    Ok(keys)
}
