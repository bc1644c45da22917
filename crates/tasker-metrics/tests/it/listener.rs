//! The `GET /metrics` listener, over a real socket: the exposition with its content type, 404
//! elsewhere, the scrape hook, and a shutdown that frees the port.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tasker_metrics::listener::{CONTENT_TYPE, MetricsListener};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::installed;

/// A minimal HTTP/1.1 GET: the status line, the headers (lowercased names) and the body.
async fn get(
    address: std::net::SocketAddr,
    path: &str,
) -> anyhow::Result<(String, Vec<(String, String)>, String)> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no end of headers in {response:?}"))?;
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok((status, headers, body.to_owned()))
}

#[tokio::test]
async fn serves_the_exposition_and_404_elsewhere() -> anyhow::Result<()> {
    let metrics = installed();
    metrics.orchestration.task_completed("payments");
    let scrapes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&scrapes);
    let listener = MetricsListener::bind(
        "127.0.0.1:0".parse()?,
        metrics,
        Some(Arc::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
        })),
    )
    .await?;
    let address = listener.local_addr();
    assert_ne!(address.port(), 0);
    assert_eq!(listener.url(), format!("http://{address}/metrics"));

    let (status, headers, body) = get(address, "/metrics").await?;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(
        headers
            .iter()
            .any(|(name, value)| name == "content-type" && value == CONTENT_TYPE),
        "{headers:?}"
    );
    assert!(
        body.contains(r#"tasker_tasks_completed_total{tasker_namespace="payments"} 1"#),
        "{body}"
    );
    assert_eq!(scrapes.load(Ordering::Relaxed), 1);

    let (status, _, _) = get(address, "/other").await?;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    assert_eq!(scrapes.load(Ordering::Relaxed), 1);

    listener.shutdown().await?;
    // The port is free again.
    let again = MetricsListener::bind(address, crate::support::installed(), None).await?;
    again.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_taken_address_is_an_error_naming_it() -> anyhow::Result<()> {
    let first = MetricsListener::bind("127.0.0.1:0".parse()?, installed(), None).await?;
    let error = MetricsListener::bind(first.local_addr(), installed(), None)
        .await
        .expect_err("the address is taken");
    assert_eq!(
        error.to_string(),
        format!("bind the metrics listener to {}", first.local_addr())
    );
    first.shutdown().await?;
    Ok(())
}
