//! `worker.orchestration_client`: how a worker calls the orchestration API.

use crate::{
    schema::{NON_EMPTY, config_enum, range, section},
    types::{HttpUrl, Secret},
};

config_enum! {
    /// Transport used to call the orchestration service.
    pub enum ClientTransport {
        /// HTTP/JSON.
        Rest = "rest",
        /// gRPC.
        Grpc = "grpc",
    }
}

config_enum! {
    /// How the worker authenticates to the orchestration API.
    pub enum ClientAuthMethod {
        /// No credentials.
        None = "none",
        /// `Authorization: Bearer <token>`.
        Bearer = "bearer",
        /// An API key in `header_name`.
        ApiKey = "api_key",
    }
}

section! {
    /// Client of the orchestration API.
    pub struct OrchestrationClientConfig => RawOrchestrationClientConfig {
        /// Base URL of the orchestration API.
        base_url: HttpUrl = "http://localhost:8080";
        /// Transport.
        transport: ClientTransport = ClientTransport::Rest;
        /// Timeout of one call, in milliseconds.
        timeout_ms: u32 = 30_000, range(100, 300_000);
        /// Retries of a failed call.
        max_retries: u32 = 3, range(0, 10);
        /// Credentials.
        auth: ClientAuthConfig = RawClientAuthConfig::default();
    }
}

section! {
    /// Credentials of the orchestration client.
    pub struct ClientAuthConfig => RawClientAuthConfig {
        /// Authentication method.
        method: ClientAuthMethod = ClientAuthMethod::None;
        /// Bearer token, required when `method = "bearer"`. Secret: inject it through a
        /// placeholder.
        token: Secret = "";
        /// API key, required when `method = "api_key"`. Secret: inject it through a
        /// placeholder.
        key: Secret = "";
        /// Header that carries the API key.
        header_name: String = "X-API-Key", NON_EMPTY;
    }
    cross(raw, v) {
        match ClientAuthMethod::from_name(&raw.method) {
            Some(ClientAuthMethod::Bearer) if raw.token.is_empty() => {
                v.require("token", &raw.token, "`method = \"bearer\"`");
            }
            Some(ClientAuthMethod::ApiKey) if raw.key.is_empty() => {
                v.require("key", &raw.key, "`method = \"api_key\"`");
            }
            _ => {}
        }
    }
}
