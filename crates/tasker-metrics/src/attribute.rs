//! Attribute keys shared by the areas, and the bucket boundaries of the histograms.
//!
//! Keys follow the OpenTelemetry semantic conventions where one exists (`db.*`, `messaging.*`);
//! Tasker's own are under `tasker.*`.

/// `db.system.name`: always `postgresql`.
pub(crate) const DB_SYSTEM_NAME: &str = "db.system.name";
/// `db.operation.name`: the operation, e.g. `claim_steps`.
pub(crate) const DB_OPERATION_NAME: &str = "db.operation.name";
/// `db.client.connection.state`: `used` or `idle`.
pub(crate) const DB_CONNECTION_STATE: &str = "db.client.connection.state";
/// `messaging.system`: `pgmq`, `rabbitmq`, `in_memory`.
pub(crate) const MESSAGING_SYSTEM: &str = "messaging.system";
/// `messaging.destination.name`: the queue.
pub(crate) const MESSAGING_DESTINATION: &str = "messaging.destination.name";
/// `messaging.operation.name`: `receive` for the receive latency.
pub(crate) const MESSAGING_OPERATION: &str = "messaging.operation.name";
/// `tasker.namespace`: a task's namespace.
pub(crate) const NAMESPACE: &str = "tasker.namespace";
/// `tasker.handler`: a step handler's name.
pub(crate) const HANDLER: &str = "tasker.handler";
/// `tasker.component`: a circuit breaker's component.
pub(crate) const COMPONENT: &str = "tasker.component";
/// `tasker.cache.kind`: what a cache lookup was for, e.g. `template`.
pub(crate) const CACHE_KIND: &str = "tasker.cache.kind";
/// `tasker.auth.outcome`: the outcome of an authentication: `success` or the failure's reason.
pub(crate) const AUTH_OUTCOME: &str = "tasker.auth.outcome";
/// `tasker.auth.method`: how a request authenticated: `jwt`, `api_key`, `none`.
pub(crate) const AUTH_METHOD: &str = "tasker.auth.method";
/// `tasker.permission`: the permission a request lacked.
pub(crate) const PERMISSION: &str = "tasker.permission";

/// Boundaries of the client-side operation durations, in seconds: the semantic conventions'
/// advice for `db.client.operation.duration` and `messaging.client.operation.duration`.
pub(crate) const CLIENT_DURATION_BOUNDS: [f64; 9] =
    [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// Boundaries of a credential's verification time, in seconds: an API key takes
/// microseconds, an RSA signature tens of microseconds, a JWKS fetch up to its timeout.
pub(crate) const VERIFICATION_DURATION_BOUNDS: [f64; 10] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025, 0.1, 1.0,
];

/// Boundaries of a step's duration, in seconds: handlers run from milliseconds to minutes.
pub(crate) const STEP_DURATION_BOUNDS: [f64; 12] = [
    0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Boundaries of a task's end-to-end duration, in seconds: from a second to an hour.
pub(crate) const TASK_DURATION_BOUNDS: [f64; 11] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Boundaries of a claim batch's size, in steps.
pub(crate) const BATCH_SIZE_BOUNDS: [f64; 10] =
    [0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0];
