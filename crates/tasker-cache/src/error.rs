//! The errors of the cache: what a backend operation reports ([`CacheError`]) and what building
//! a cache from its settings reports ([`ConnectError`]).
//!
//! The typed [`crate::Cache`] never hands a [`CacheError`] to the caller of `get`, `set` or
//! `delete`: it counts it, marks the backend down when the error says the backend is
//! unreachable ([`CacheError::is_transient`]) and answers with a miss. Backends and
//! [`crate::Cache::invalidate`] report them.

use std::fmt;
use std::time::Duration;

use crate::config::BackendKind;

/// The operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reading an entry.
    Get,
    /// Writing an entry.
    Set,
    /// Removing an entry.
    Delete,
    /// Reading a namespace's generation.
    Generation,
    /// Moving a namespace to its next generation.
    Invalidate,
    /// Checking that the backend answers.
    Health,
    /// Connecting to the server.
    Connect,
}

impl Operation {
    /// A lowercase verb phrase for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "read an entry",
            Self::Set => "write an entry",
            Self::Delete => "delete an entry",
            Self::Generation => "read a namespace's generation",
            Self::Invalidate => "invalidate a namespace",
            Self::Health => "answer a health check",
            Self::Connect => "connect",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The underlying library's or protocol's error.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The Redis client.
    #[cfg(feature = "redis")]
    #[error("redis error")]
    Redis(#[from] redis::RedisError),
    /// The connection to memcached failed (refused, reset, closed).
    #[error("connection error")]
    Io(#[from] std::io::Error),
    /// memcached answered something this client does not understand.
    #[error("unexpected reply {reply:?}")]
    Protocol {
        /// The reply's first line, shortened.
        reply: String,
    },
    /// memcached refused the request (`SERVER_ERROR ...`, `CLIENT_ERROR ...`): for example a
    /// value larger than its item size limit.
    #[error("the server refused the request: {message}")]
    Refused {
        /// The server's message.
        message: String,
    },
}

/// A backend operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend did not answer in time.
    #[error("{backend} did not answer within {after:?} when asked to {operation}")]
    TimedOut {
        /// The backend.
        backend: BackendKind,
        /// The operation.
        operation: Operation,
        /// The limit that passed.
        after: Duration,
    },
    /// The backend reported an error.
    #[error("{backend} could not {operation}")]
    Backend {
        /// The backend.
        backend: BackendKind,
        /// The operation.
        operation: Operation,
        /// The library's error.
        #[source]
        source: BackendError,
    },
    /// The value is larger than the backend stores.
    #[error("{backend} cannot store a value of {size} bytes (its limit is {limit} bytes)")]
    TooLarge {
        /// The backend.
        backend: BackendKind,
        /// The encoded value's size.
        size: usize,
        /// The backend's limit.
        limit: usize,
    },
}

impl CacheError {
    /// Whether the error says the backend is unreachable or unwell (a connection refused or
    /// lost, a timeout), rather than that this one request was refused. The typed
    /// [`crate::Cache`] marks a backend down on transient errors only.
    pub fn is_transient(&self) -> bool {
        match self {
            CacheError::TimedOut { .. } => true,
            CacheError::TooLarge { .. } => false,
            CacheError::Backend { source, .. } => match source {
                #[cfg(feature = "redis")]
                BackendError::Redis(error) => {
                    error.is_io_error()
                        || error.is_timeout()
                        || error.is_connection_dropped()
                        || error.is_connection_refusal()
                        || error.is_unrecoverable_error()
                        || matches!(
                            error.kind(),
                            redis::ErrorKind::Server(
                                redis::ServerErrorKind::BusyLoading
                                    | redis::ServerErrorKind::TryAgain
                                    | redis::ServerErrorKind::ClusterDown
                                    | redis::ServerErrorKind::MasterDown
                            )
                        )
                }
                BackendError::Io(_) | BackendError::Protocol { .. } => true,
                BackendError::Refused { .. } => false,
            },
        }
    }

    pub(crate) fn backend(
        backend: BackendKind,
        operation: Operation,
        source: impl Into<BackendError>,
    ) -> Self {
        Self::Backend {
            backend,
            operation,
            source: source.into(),
        }
    }
}

/// Building a cache from its settings failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The configured backend is not compiled into this build.
    #[error(
        "cache backend `{backend}` is not compiled in; enable the `{feature}` feature of \
         tasker-cache (or the matching `cache-*` feature of tasker-shared)"
    )]
    FeatureDisabled {
        /// The backend.
        backend: BackendKind,
        /// The feature that compiles it in.
        feature: &'static str,
    },
    /// The URL cannot be used; it is shown redacted.
    #[error("invalid {backend} URL `{url}`: {problem}")]
    InvalidUrl {
        /// The backend.
        backend: BackendKind,
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The key prefix breaks the namespace rule.
    #[error("invalid key prefix")]
    InvalidPrefix(#[source] crate::namespace::InvalidNamespace),
    /// A setting is out of range.
    #[error("invalid cache setting `{setting}`: {problem}")]
    InvalidSetting {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The Redis client refused its settings.
    #[cfg(feature = "redis")]
    #[error("the redis client refused its settings")]
    Redis(#[source] redis::RedisError),
}
