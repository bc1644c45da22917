//! [`MetricsListener`]: a small HTTP/1.1 server that answers `GET /metrics` with
//! [`Metrics::render_prometheus`] (`text/plain; version=0.0.4`) and 404 elsewhere. Behind the
//! `listener` feature.
//!
//! Processes without an HTTP API of their own (the worker) serve their metrics with it; a
//! process that has one mounts [`router`] into it instead. The listener is owned: it runs
//! until [`MetricsListener::shutdown`], and dropping it stops it too.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::instruments::Metrics;

/// The content type of the Prometheus text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Called before each scrape is rendered: to sample gauges and counters kept elsewhere (the
/// pool's connections, a breaker's state) so the scrape sees them as they are now. It must be
/// quick and must not block.
pub type ScrapeHook = Arc<dyn Fn() + Send + Sync>;

/// The routes: `GET /metrics` renders `metrics` (after `on_scrape`, if any); anything else is
/// 404. For a process that serves HTTP already, to merge into its own router.
pub fn router(metrics: Metrics, on_scrape: Option<ScrapeHook>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            let on_scrape = on_scrape.clone();
            async move {
                if let Some(hook) = &on_scrape {
                    hook();
                }
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, CONTENT_TYPE)],
                    metrics.render_prometheus(),
                )
                    .into_response()
            }
        }),
    )
}

/// Why the listener could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The address could not be bound (in use, not local, not permitted).
    #[error("bind the metrics listener to {address}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while serving.
    #[error("serve metrics")]
    Serve(#[source] std::io::Error),
    /// The server's task panicked or was aborted.
    #[error("the metrics listener's task ended abnormally")]
    Task(#[source] tokio::task::JoinError),
}

/// A running `GET /metrics` server.
#[derive(Debug)]
pub struct MetricsListener {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), std::io::Error>>>,
}

impl MetricsListener {
    /// Binds `address` (port 0: any free port; see [`MetricsListener::local_addr`]) and serves
    /// `metrics` on it until shutdown.
    pub async fn bind(
        address: SocketAddr,
        metrics: Metrics,
        on_scrape: Option<ScrapeHook>,
    ) -> Result<Self, ListenerError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ListenerError::Bind { address, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ListenerError::Bind { address, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(metrics, on_scrape);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // A dropped sender stops the server as a sent signal does.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            local_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the listener is bound to (the actual port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL of the exposition, `http://<address>/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.local_addr)
    }

    /// Stops accepting connections, lets scrapes in progress finish and waits for the server.
    pub async fn shutdown(mut self) -> Result<(), ListenerError> {
        if let Some(stop) = self.stop.take() {
            // The server may have stopped already; its outcome is read below.
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(ListenerError::Task)?
                .map_err(ListenerError::Serve),
            None => Ok(()),
        }
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        // Not shut down: stop the server without waiting for it.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
