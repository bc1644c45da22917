//! The PGMQ backend's metrics: `PgmqQueue::with_metrics` counts the transactional operations
//! (which bypass the queue trait) and the trait's own, each once.

use std::time::Duration;

use anyhow::ensure;
use tasker_messaging::config::PgmqConfig;
use tasker_messaging::pgmq::PgmqQueue;
use tasker_messaging::queue::MessageQueue;
use tasker_messaging::queue_name::QueueName;
use tasker_metrics::config::{MetricsConfig, MetricsExporter};
use tasker_metrics::instruments::Metrics;

use crate::pg_support::TestDb;
use crate::suite::{Harness, payload};

/// `PgmqQueue::with_metrics` counts the transactional operations (which bypass the queue
/// trait) and the trait's own, each once.
#[tokio::test]
async fn metrics_count_transactional_and_trait_operations_once() -> anyhow::Result<()> {
    TestDb::with(async |db| {
        let metrics = Metrics::install(&MetricsConfig {
            exporter: MetricsExporter::Prometheus,
            service_name: "pgmq-test".to_owned(),
        })?;
        let config = PgmqConfig {
            messaging: Harness::config(),
            ..PgmqConfig::default()
        };
        let backend = PgmqQueue::new(db.pool.clone(), config)
            .await
            .with_metrics(metrics.messaging.clone());
        let queue = QueueName::new("counted")?;
        backend.ensure_queue(&queue).await?;
        // Two through the trait (which sends with `send_batch_in`), one in a transaction.
        backend
            .send_batch(&queue, &[payload(1), payload(2)])
            .await?;
        let mut tx = db.pool.begin().await?;
        backend.send_in(&mut tx, &queue, &payload(3)).await?;
        tx.commit().await?;
        // One received through the trait and acknowledged; two popped, one dead-lettered.
        let received = backend.receive(&queue, 1, Duration::from_secs(30)).await?;
        backend.ack(received[0].receipt()).await?;
        let mut tx = db.pool.begin().await?;
        let popped = backend.pop_in(&mut tx, &queue, 10).await?;
        ensure!(popped.len() == 2, "{popped:?}");
        backend
            .dead_letter_in(&mut tx, &popped[0], "counted".to_owned())
            .await?;
        tx.commit().await?;

        let text = metrics.render_prometheus();
        let labels = r#"{messaging_destination_name="counted",messaging_system="pgmq"}"#;
        for (family, want) in [
            ("messaging_client_sent_messages_total", 3),
            ("messaging_client_consumed_messages_total", 3),
            ("tasker_messages_acked_total", 3),
            ("tasker_messages_dead_lettered_total", 1),
        ] {
            let line = format!("{family}{labels} {want}");
            ensure!(text.contains(&line), "no {line:?} in\n{text}");
        }
        Ok(())
    })
    .await
}
