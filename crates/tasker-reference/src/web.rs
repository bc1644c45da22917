//! The orchestrator's HTTP API in a process: `orchestration.web` mapped onto tasker-web's
//! settings (authentication, hardening), a web database pool of its own, and the server,
//! which announces its address on stdout (`api listening on http://<addr>`) and stops
//! gracefully with the process.

use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::{HeaderName, HeaderValue};
use tasker_orchestration::ClaimWaker;
use tasker_orchestration::api::{ApiSettings, ApiState, router};
use tasker_shared::config::web::{AuthConfig, JwtVerificationMethod, WebConfig};
use tasker_shared::database::pool::PoolConfig;
use tasker_shared::metrics::security::SecurityMetrics;
use tasker_shared::web::api_key::{ApiKeyEntry, ApiKeys};
use tasker_shared::web::auth::Authenticator;
use tasker_shared::web::harden::HardeningSettings;
use tasker_shared::web::jwks::{Jwks, JwksSettings};
use tasker_shared::web::jwt::{DEFAULT_LEEWAY, JwtSettings, JwtVerifier};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::setup::Wiring;

/// A running API server.
#[derive(Debug)]
pub(crate) struct WebServer {
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl WebServer {
    /// Stops taking connections, lets requests in flight finish (within `grace`) and stops.
    pub(crate) async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        if let Some(refresher) = self.refresher {
            refresher.abort();
        }
        let mut served = self.served;
        match tokio::time::timeout(grace, &mut served).await {
            Ok(joined) => joined
                .context("the API server panicked")?
                .context("serving the API")?,
            Err(_) => {
                served.abort();
                tracing::warn!(?grace, "the API server did not stop in time; aborted");
            }
        }
        Ok(())
    }
}

/// Serves the API when `orchestration.web.enabled`, and prints its address; `None` otherwise.
pub(crate) async fn start(wiring: &Wiring, waker: ClaimWaker) -> anyhow::Result<Option<WebServer>> {
    let web = &wiring.web;
    if !web.enabled {
        return Ok(None);
    }
    let pool = web_pool(&wiring.pool_config, web)
        .connect()
        .await
        .context("connecting the web database pool")?;
    let security = wiring
        .metrics
        .is_enabled()
        .then(|| wiring.metrics.security.clone());
    let (auth, refresher) = authenticator(&web.auth, security).await?;
    let hardening = hardening(web)?;
    let state = ApiState::new(
        pool,
        wiring.template_registry(),
        ApiSettings::new(wiring.process_id, wiring.backoff),
    )
    .with_messaging(wiring.messaging.clone())
    .with_breakers(wiring.breakers.clone())
    .waking(waker);
    let router = router(state, auth, &hardening).map_err(|errors| {
        anyhow::anyhow!(
            "the API's route table disagrees with its handlers: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let bind = web.bind_address.0;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding the API to {bind} (orchestration.web.bind_address)"))?;
    let address = listener.local_addr().context("the API's address")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%address, "the API is listening");
    crate::write_out(&format!("api listening on http://{address}\n"))?;
    Ok(Some(WebServer {
        stop,
        served,
        refresher,
    }))
}

/// The web pool: the processing pool's server and settings, sized by
/// `web.database_pools`, so API traffic cannot starve processing.
fn web_pool(processing: &PoolConfig, web: &WebConfig) -> PoolConfig {
    let pools = &web.database_pools;
    let mut pool = processing.clone();
    pool.max_connections = pools.web_api_max_connections;
    pool.min_connections = pools.web_api_pool_size.min(pools.web_api_max_connections);
    pool.acquire_timeout = Duration::from_secs(u64::from(pools.web_api_connection_timeout_seconds));
    pool.release_timeout = Some(pool.acquire_timeout);
    pool.idle_timeout = Some(Duration::from_secs(u64::from(
        pools.web_api_idle_timeout_seconds,
    )));
    pool
}

/// The hardening of `web`: body limit, request timeout, CORS origins.
fn hardening(web: &WebConfig) -> anyhow::Result<HardeningSettings> {
    let origins = web
        .cors_allowed_origins
        .iter()
        .map(|origin| {
            HeaderValue::from_str(origin).with_context(|| {
                format!("orchestration.web.cors_allowed_origins: {origin:?} is not a header value")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(HardeningSettings {
        body_limit: usize::try_from(web.body_limit_bytes).unwrap_or(usize::MAX),
        request_timeout: Duration::from_millis(u64::from(web.request_timeout_ms)),
        cors_allowed_origins: origins,
    })
}

/// The authenticator of `auth`, and the JWKS refresher when keys come from a JWKS endpoint
/// (after a first fetch; a failed one is a warning, and requests are refused with 503 until a
/// fetch succeeds).
pub(crate) async fn authenticator(
    auth: &AuthConfig,
    security: Option<SecurityMetrics>,
) -> anyhow::Result<(Authenticator, Option<JoinHandle<()>>)> {
    if !auth.enabled {
        tracing::warn!(
            "API authentication is disabled (orchestration.web.auth.enabled = false): every request is allowed everything; use this only in development and tests"
        );
        return Ok((Authenticator::disabled(), None));
    }
    let algorithms = auth
        .jwt_allowed_algorithms
        .iter()
        .map(|algorithm| {
            jsonwebtoken::Algorithm::from_str(algorithm.as_str())
                .with_context(|| format!("the JWT algorithm {}", algorithm.as_str()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settings = JwtSettings {
        issuer: auth.jwt_issuer.clone(),
        audience: auth.jwt_audience.clone(),
        algorithms,
        permissions_claim: auth.permissions_claim.clone(),
        leeway: DEFAULT_LEEWAY,
        strict: auth.strict_validation,
    };
    let mut refresher = None;
    let jwt = match auth.jwt_verification_method {
        JwtVerificationMethod::PublicKey => {
            let pem = if auth.jwt_public_key.is_empty() && !auth.jwt_public_key_path.is_empty() {
                std::fs::read_to_string(&auth.jwt_public_key_path).with_context(|| {
                    format!(
                        "reading the JWT public key {} (orchestration.web.auth.jwt_public_key_path)",
                        auth.jwt_public_key_path
                    )
                })?
            } else {
                auth.jwt_public_key.clone()
            };
            if pem.trim().is_empty() {
                None
            } else {
                Some(
                    JwtVerifier::with_public_key(settings, &pem)
                        .context("orchestration.web.auth.jwt_public_key")?,
                )
            }
        }
        JwtVerificationMethod::Jwks => {
            let url = auth
                .jwks_url
                .as_ref()
                .context("orchestration.web.auth.jwks_url is required with `jwks`")?;
            let jwks = Jwks::new(JwksSettings {
                allow_http: auth.jwks_url_allow_http,
                refresh_interval: Duration::from_secs(u64::from(
                    auth.jwks_refresh_interval_seconds,
                )),
                max_stale: Duration::from_secs(u64::from(auth.jwks_max_stale_seconds)),
                ..JwksSettings::new(url.expose())
            })
            .context("orchestration.web.auth.jwks_url")?;
            if let Err(error) = jwks.refresh().await {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "the first JWKS fetch failed; tokens are refused until a fetch succeeds"
                );
            }
            refresher = Some(jwks.spawn_refresher());
            Some(JwtVerifier::with_jwks(settings, jwks).context("orchestration.web.auth")?)
        }
    };
    let api_keys = if auth.api_keys_enabled {
        let entries = auth
            .api_keys
            .iter()
            .map(|entry| ApiKeyEntry {
                key: entry.key.expose().to_owned(),
                permissions: entry.permissions.clone(),
                description: entry.description.clone(),
            })
            .collect();
        Some(ApiKeys::new(entries).context("orchestration.web.auth.api_keys")?)
    } else {
        None
    };
    let header = HeaderName::from_str(&auth.api_key_header.to_ascii_lowercase())
        .context("orchestration.web.auth.api_key_header is not a header name")?;
    let authenticator =
        Authenticator::new(jwt, api_keys, header, security).context("orchestration.web.auth")?;
    Ok((authenticator, refresher))
}
