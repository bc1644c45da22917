//! gRPC API settings (`orchestration.grpc`, `worker.grpc`).

use crate::{
    schema::{range, section},
    types::BindAddress,
};

section! {
    /// A gRPC API server.
    pub struct GrpcConfig => RawGrpcConfig {
        /// Whether the gRPC API is served.
        enabled: bool = true;
        /// Address the gRPC server binds to (`ip:port`).
        bind_address: BindAddress = "0.0.0.0:9190";
        /// Whether the server uses TLS (then `tls_cert_path` and `tls_key_path` are required).
        tls_enabled: bool = false;
        /// Path of the PEM certificate chain.
        tls_cert_path: String = "";
        /// Path of the PEM private key.
        tls_key_path: String = "";
        /// Interval of HTTP/2 keepalive pings, in seconds.
        keepalive_interval_seconds: u32 = 30, range(1, 3600);
        /// Time to wait for a keepalive answer before closing the connection, in seconds;
        /// less than `keepalive_interval_seconds`.
        keepalive_timeout_seconds: u32 = 20, range(1, 300);
        /// Concurrent streams per connection.
        max_concurrent_streams: u32 = 200, range(1, 10_000);
        /// Largest HTTP/2 frame, in bytes.
        max_frame_size: u32 = 16_384, range(16_384, 16_777_215);
        /// Whether the reflection service is exposed (for grpcurl; turn off in production).
        enable_reflection: bool = true;
        /// Whether the standard health service is exposed.
        enable_health_service: bool = true;
    }
    cross(raw, v) {
        if raw.tls_enabled {
            if raw.tls_cert_path.is_empty() {
                v.require("tls_cert_path", &raw.tls_cert_path, "`tls_enabled` is true");
            }
            if raw.tls_key_path.is_empty() {
                v.require("tls_key_path", &raw.tls_key_path, "`tls_enabled` is true");
            }
        }
        v.lt(
            "keepalive_timeout_seconds",
            &raw.keepalive_timeout_seconds,
            "keepalive_interval_seconds",
            &raw.keepalive_interval_seconds,
        );
    }
}
