//! Web API settings (`orchestration.web`, `worker.web`): bind address, timeouts, the web
//! database pool and authentication.

use crate::{
    problem::ProblemKind,
    schema::{NON_EMPTY, config_enum, range, section},
    types::{BindAddress, HttpUrl, Secret, UrlError},
};

section! {
    /// An HTTP API server.
    pub struct WebConfig => RawWebConfig {
        /// Whether the HTTP API is served.
        enabled: bool = true;
        /// Address the HTTP server binds to (`ip:port`).
        bind_address: BindAddress = "0.0.0.0:8080";
        /// Longest time one request may take, in milliseconds.
        request_timeout_ms: u32 = 30_000, range(100, 300_000);
        /// Largest request body accepted, in bytes (a template or a task request).
        body_limit_bytes: u32 = 1_048_576, range(1024, 67_108_864);
        /// Origins allowed to call the API from a browser (CORS); empty denies every
        /// cross-origin call.
        cors_allowed_origins: Vec<String> = Vec::new();
        /// Whether `GET /config` shows the (redacted) configuration. Meant for test and
        /// development environments.
        config_endpoint_enabled: bool = false;
        /// Database pool of the API handlers.
        database_pools: WebDatabasePools = RawWebDatabasePools::default();
        /// Authentication of API requests.
        auth: AuthConfig = RawAuthConfig::default();
    }
}

section! {
    /// Database pool of the API handlers, separate from the processing pool so API traffic
    /// cannot starve processing.
    pub struct WebDatabasePools => RawWebDatabasePools {
        /// Connections kept open for API handlers.
        web_api_pool_size: u32 = 20, range(1, 1000);
        /// Maximum connections of the API pool.
        web_api_max_connections: u32 = 30, range(1, 1000);
        /// Longest wait for an API connection, in seconds.
        web_api_connection_timeout_seconds: u32 = 30, range(1, 300);
        /// Idle time after which an API connection is closed, in seconds.
        web_api_idle_timeout_seconds: u32 = 600, range(1, 3600);
        /// Expected total connections of this process (processing plus API), for capacity
        /// planning and warnings.
        max_total_connections_hint: u32 = 50, range(1, 10_000);
    }
    cross(raw, v) {
        v.le("web_api_pool_size", &raw.web_api_pool_size, "web_api_max_connections", &raw.web_api_max_connections);
    }
}

config_enum! {
    /// How JWT signatures are verified.
    pub enum JwtVerificationMethod {
        /// With a configured public key (`jwt_public_key` or `jwt_public_key_path`).
        PublicKey = "public_key",
        /// With keys fetched from a JWKS endpoint (`jwks_url`).
        Jwks = "jwks",
    }
}

config_enum! {
    /// An accepted JWT signature algorithm (asymmetric only: the API never holds a shared
    /// signing secret).
    pub enum JwtAlgorithm {
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        Rs256 = "RS256",
        /// RSASSA-PKCS1-v1_5 with SHA-384.
        Rs384 = "RS384",
        /// RSASSA-PKCS1-v1_5 with SHA-512.
        Rs512 = "RS512",
        /// RSASSA-PSS with SHA-256.
        Ps256 = "PS256",
        /// RSASSA-PSS with SHA-384.
        Ps384 = "PS384",
        /// RSASSA-PSS with SHA-512.
        Ps512 = "PS512",
        /// ECDSA P-256 with SHA-256.
        Es256 = "ES256",
        /// ECDSA P-384 with SHA-384.
        Es384 = "ES384",
        /// Ed25519.
        EdDsa = "EdDSA",
    }
}

section! {
    /// Authentication of API requests: JWT bearer tokens and/or API keys.
    pub struct AuthConfig => RawAuthConfig {
        /// Whether requests must authenticate.
        enabled: bool = false;
        /// Expected `iss` claim.
        jwt_issuer: String = "tasker-core", NON_EMPTY;
        /// Expected `aud` claim.
        jwt_audience: String = "tasker-api", NON_EMPTY;
        /// Lifetime of tokens issued by Tasker tooling, in hours.
        jwt_token_expiry_hours: u32 = 24, range(1, 168);
        /// PEM private key for issuing tokens (tooling only; services verify, they do not
        /// sign). Secret: inject it through a placeholder.
        jwt_private_key: Secret = "";
        /// PEM public key that verifies tokens. Defaults through `${TASKER_JWT_PUBLIC_KEY}`.
        jwt_public_key: String = "${TASKER_JWT_PUBLIC_KEY:-}";
        /// Path of a PEM public key file, used when `jwt_public_key` is empty. Defaults
        /// through `${TASKER_JWT_PUBLIC_KEY_PATH}`.
        jwt_public_key_path: String = "${TASKER_JWT_PUBLIC_KEY_PATH:-}";
        /// How token signatures are verified.
        jwt_verification_method: JwtVerificationMethod = JwtVerificationMethod::PublicKey;
        /// JWKS endpoint, required when `jwt_verification_method = "jwks"`.
        jwks_url: Option<HttpUrl> = "";
        /// Interval between JWKS refreshes, in seconds.
        jwks_refresh_interval_seconds: u32 = 3600, range(60, 86_400);
        /// How long stale JWKS keys stay usable when a refresh fails, in seconds.
        jwks_max_stale_seconds: u32 = 300, range(0, 86_400);
        /// Whether `jwks_url` may use plain `http://` (local testing only).
        jwks_url_allow_http: bool = false;
        /// Accepted signature algorithms.
        jwt_allowed_algorithms: Vec<JwtAlgorithm> = ["RS256"], NON_EMPTY;
        /// Claim holding the caller's permissions.
        permissions_claim: String = "permissions", NON_EMPTY;
        /// Whether tokens with unknown claims or missing `exp`/`nbf` are rejected.
        strict_validation: bool = true;
        /// Whether unknown permission names in tokens are logged.
        log_unknown_permissions: bool = true;
        /// Header that carries an API key.
        api_key_header: String = "X-API-Key", NON_EMPTY;
        /// Whether API keys are accepted.
        api_keys_enabled: bool = false;
        /// API keys with their permissions, written as `[[...auth.api_keys]]` tables.
        api_keys: Vec<ApiKeyConfig> = Vec::new();
    }
    cross(raw, v) {
        if raw.enabled {
            check_auth(raw, v);
        }
    }
}

fn check_auth<'r>(raw: &'r RawAuthConfig, v: &mut crate::validate::Validator<'r>) {
    let method = JwtVerificationMethod::from_name(&raw.jwt_verification_method);
    let api_keys_only = raw.api_keys_enabled;
    match method {
        Some(JwtVerificationMethod::PublicKey)
            if !api_keys_only
                && raw.jwt_public_key.is_empty()
                && raw.jwt_public_key_path.is_empty() =>
        {
            v.require(
                "jwt_public_key",
                &raw.jwt_public_key,
                "auth is enabled with `jwt_verification_method = \"public_key\"` (or set `jwt_public_key_path`)",
            );
        }
        Some(JwtVerificationMethod::Jwks) if raw.jwks_url.is_empty() => {
            v.require(
                "jwks_url",
                &raw.jwks_url,
                "auth is enabled with `jwt_verification_method = \"jwks\"`",
            );
        }
        Some(JwtVerificationMethod::Jwks)
            if !raw.jwks_url_allow_http
                && raw.jwks_url.to_ascii_lowercase().starts_with("http://") =>
        {
            v.reject_field(
                "jwks_url",
                &raw.jwks_url,
                ProblemKind::InvalidUrl(UrlError::Scheme {
                    found: "http".to_owned(),
                    allowed: &["https"],
                }),
            );
        }
        _ => {}
    }
    if raw.api_keys_enabled && raw.api_keys.is_empty() {
        v.require(
            "api_keys",
            &raw.api_keys,
            "auth is enabled with `api_keys_enabled = true`",
        );
    }
}

section! {
    /// One API key and the permissions it grants.
    pub struct ApiKeyConfig => RawApiKeyConfig {
        /// The key. Secret: inject it through a placeholder.
        key: Secret = "", NON_EMPTY;
        /// Permissions granted, e.g. `tasks:create`; empty grants none.
        permissions: Vec<String> = Vec::new();
        /// What the key is for (shown in audit logs).
        description: String = "";
    }
}
