//! Benchmarks of the PGMQ backend against raw pgmq on the same database, the notification round
//! trip, and the RabbitMQ backend's confirmed publishing and consuming.
//!
//! Needs PostgreSQL (`DATABASE_URL`'s server; a fresh database `tasker_msg_bench_<random>` is
//! created and dropped) and RabbitMQ at 127.0.0.1:5672 (guest/guest; queues are deleted after).
//! Run with `cargo bench -p tasker-messaging`. The notification round trip prints p50/p95 over
//! 1,000 sends, which criterion does not report.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Postgres};
use tasker_messaging::config::{MessagingConfig, PgmqConfig, RabbitMqConfig};
use tasker_messaging::envelope::Payload;
use tasker_messaging::messages::StepMessage;
use tasker_messaging::pgmq::PgmqQueue;
use tasker_messaging::queue::MessageQueue;
use tasker_messaging::queue_name::QueueName;
use tasker_messaging::rabbitmq::RabbitMqQueue;
use tasker_models::ids::{CorrelationId, StepId, TaskId};
use tokio::runtime::Runtime;
use uuid::Uuid;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn step(n: u64) -> StepMessage {
    StepMessage {
        task_id: TaskId::from_uuid(Uuid::from_u128(u128::from(n))),
        step_id: StepId::from_uuid(Uuid::now_v7()),
        correlation_id: CorrelationId::from_uuid(Uuid::now_v7()),
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

struct BenchDb {
    url: String,
    pool: PgPool,
}

async fn create_db() -> BenchDb {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let options = PgConnectOptions::from_str(&server)
        .expect("DATABASE_URL parses")
        .database(&format!("tasker_msg_bench_{:08x}", rand::random::<u32>()));
    let url = options.to_url_lossy().to_string();
    Postgres::create_database(&url)
        .await
        .expect("creating the benchmark database (is PostgreSQL running?)");
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await
        .expect("connecting to the benchmark database");
    pgmq::install::install_sql_from_embedded(&pool)
        .await
        .expect("installing pgmq");
    BenchDb { url, pool }
}

async fn drop_db(db: BenchDb) {
    db.pool.close().await;
    Postgres::force_drop_database(&db.url)
        .await
        .expect("dropping the benchmark database");
}

fn pgmq_vs_raw(c: &mut Criterion) {
    let rt = runtime();
    let db = rt.block_on(create_db());
    let ours = rt.block_on(PgmqQueue::new(db.pool.clone(), PgmqConfig::default()));
    let raw = rt.block_on(pgmq::PGMQueueExt::new_with_pool(db.pool.clone()));
    let ours_q = QueueName::new("bench_ours").expect("valid");
    let raw_q = "bench_raw";
    rt.block_on(async {
        ours.ensure_queue(&ours_q).await.expect("ensure");
        raw.create(raw_q).await.expect("create");
    });

    let mut group = c.benchmark_group("pgmq_send");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for n in 0..iters {
                    let payload = Payload::encode(&step(n)).expect("encodes");
                    ours.send(&ours_q, &payload).await.expect("send");
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("raw_pgmq", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for n in 0..iters {
                    raw.send(raw_q, &step(n)).await.expect("send");
                }
                start.elapsed()
            })
        });
    });
    group.finish();

    let mut group = c.benchmark_group("pgmq_send_batch_100");
    group.throughput(Throughput::Elements(100));
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let payloads: Vec<Payload> = (0..100)
                        .map(|n| Payload::encode(&step(i * 100 + n)).expect("encodes"))
                        .collect();
                    ours.send_batch(&ours_q, &payloads).await.expect("send");
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("raw_pgmq", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let messages: Vec<StepMessage> = (0..100).map(|n| step(i * 100 + n)).collect();
                    raw.send_batch(raw_q, &messages).await.expect("send");
                }
                start.elapsed()
            })
        });
    });
    group.finish();

    // Receive 10 and ack each: both sides read with one statement and delete one by one.
    let mut group = c.benchmark_group("pgmq_receive_ack_10");
    group.throughput(Throughput::Elements(10));
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                refill(&raw, ours_q.as_str(), iters * 10).await;
                let start = Instant::now();
                for _ in 0..iters {
                    let batch = ours
                        .receive(&ours_q, 10, Duration::from_secs(30))
                        .await
                        .expect("receive");
                    for message in &batch {
                        ours.ack(message.receipt()).await.expect("ack");
                    }
                }
                start.elapsed()
            })
        });
    });
    // The same with the ten acknowledgements in one statement.
    group.bench_function("ours_ack_batch", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                refill(&raw, ours_q.as_str(), iters * 10).await;
                let start = Instant::now();
                for _ in 0..iters {
                    let batch = ours
                        .receive(&ours_q, 10, Duration::from_secs(30))
                        .await
                        .expect("receive");
                    let receipts: Vec<_> = batch.iter().map(|m| m.receipt().clone()).collect();
                    for outcome in ours.ack_batch(&receipts).await.expect("ack batch") {
                        outcome.expect("acked");
                    }
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("raw_pgmq", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                refill(&raw, raw_q, iters * 10).await;
                let start = Instant::now();
                for _ in 0..iters {
                    let batch: Vec<pgmq::Message<serde_json::Value>> =
                        raw.read_batch(raw_q, 30, 10).await.expect("read");
                    for message in &batch {
                        raw.delete(raw_q, message.msg_id).await.expect("delete");
                    }
                }
                start.elapsed()
            })
        });
    });
    group.finish();

    rt.block_on(notification_round_trip(&ours));
    drop(ours);
    rt.block_on(drop_db(db));
}

/// Empties `queue` and fills it with `count` envelopes (outside the timed part).
async fn refill(raw: &pgmq::PGMQueueExt, queue: &str, count: u64) {
    raw.purge_queue(queue).await.expect("purge");
    let mut sent = 0;
    while sent < count {
        let chunk = (count - sent).min(500);
        let payloads: Vec<serde_json::Value> = (0..chunk)
            .map(|n| {
                let payload = Payload::encode(&step(sent + n)).expect("encodes");
                serde_json::from_str(payload.as_str()).expect("json")
            })
            .collect();
        raw.send_batch(queue, &payloads).await.expect("fill");
        sent += chunk;
    }
}

#[expect(clippy::print_stdout, reason = "a benchmark reports its percentiles")]
async fn notification_round_trip(backend: &PgmqQueue) {
    const SAMPLES: usize = 1000;
    let queue = QueueName::new("bench_notify").expect("valid");
    backend.ensure_queue(&queue).await.expect("ensure");
    let mut subscription = backend
        .subscribe(std::slice::from_ref(&queue))
        .await
        .expect("subscribe");
    while subscription.try_recv().is_some() {}
    let mut samples = Vec::with_capacity(SAMPLES);
    for n in 0..SAMPLES as u64 {
        let payload = Payload::encode(&step(n)).expect("encodes");
        let start = Instant::now();
        backend.send(&queue, &payload).await.expect("send");
        loop {
            let signal = subscription.recv().await.expect("subscribed");
            if signal.queue == queue {
                break;
            }
        }
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    let at = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "pgmq notification round trip (send to signal, {SAMPLES} samples): \
         p50 {:?}, p95 {:?}, p99 {:?}, max {:?}",
        at(50),
        at(95),
        at(99),
        samples[samples.len() - 1]
    );
}

fn rabbitmq(c: &mut Criterion) {
    let rt = runtime();
    let config = RabbitMqConfig {
        messaging: MessagingConfig::default(),
        url: AMQP_URL.to_owned(),
        connection_name: "tasker-bench".to_owned(),
        prefetch: 200,
        ..RabbitMqConfig::default()
    };
    let backend = Arc::new(
        rt.block_on(RabbitMqQueue::connect(config))
            .expect("connecting to RabbitMQ at 127.0.0.1:5672"),
    );
    let queue = QueueName::new(format!("bench_{:08x}", rand::random::<u32>())).expect("valid");
    rt.block_on(backend.ensure_queue(&queue)).expect("ensure");

    let mut group = c.benchmark_group("rabbitmq");
    group.throughput(Throughput::Elements(1));
    group.bench_function("send_confirmed", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for n in 0..iters {
                    let payload = Payload::encode(&step(n)).expect("encodes");
                    backend.send(&queue, &payload).await.expect("send");
                }
                start.elapsed()
            })
        });
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("send_batch_100_confirmed", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let payloads: Vec<Payload> = (0..100)
                        .map(|n| Payload::encode(&step(i * 100 + n)).expect("encodes"))
                        .collect();
                    backend.send_batch(&queue, &payloads).await.expect("send");
                }
                start.elapsed()
            })
        });
    });
    // Consume what the sends above left (and more if needed): receive up to 10, ack each.
    group.throughput(Throughput::Elements(10));
    group.bench_function("receive_ack_10", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let payloads: Vec<Payload> = (0..iters * 10)
                    .map(|n| Payload::encode(&step(n)).expect("encodes"))
                    .collect();
                for chunk in payloads.chunks(500) {
                    backend.send_batch(&queue, chunk).await.expect("fill");
                }
                let start = Instant::now();
                let mut acked = 0;
                while acked < iters * 10 {
                    let batch = backend
                        .receive(&queue, 10, Duration::from_secs(30))
                        .await
                        .expect("receive");
                    if batch.is_empty() {
                        tokio::task::yield_now().await;
                    }
                    for message in &batch {
                        backend.ack(message.receipt()).await.expect("ack");
                        acked += 1;
                    }
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("receive_ack_batch_10", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let payloads: Vec<Payload> = (0..iters * 10)
                    .map(|n| Payload::encode(&step(n)).expect("encodes"))
                    .collect();
                for chunk in payloads.chunks(500) {
                    backend.send_batch(&queue, chunk).await.expect("fill");
                }
                let start = Instant::now();
                let mut acked = 0;
                while acked < iters * 10 {
                    let batch = backend
                        .receive(&queue, 10, Duration::from_secs(30))
                        .await
                        .expect("receive");
                    if batch.is_empty() {
                        tokio::task::yield_now().await;
                    }
                    let receipts: Vec<_> = batch.iter().map(|m| m.receipt().clone()).collect();
                    for outcome in backend.ack_batch(&receipts).await.expect("ack batch") {
                        outcome.expect("acked");
                        acked += 1;
                    }
                }
                start.elapsed()
            })
        });
    });
    group.finish();

    drop(backend);
    rt.block_on(async {
        let connection =
            lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
                .await
                .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        for name in [queue.to_string(), format!("{queue}_dlq")] {
            let _ = channel
                .queue_delete(
                    name.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await;
        }
        let _ = channel
            .exchange_delete(
                format!("{queue}_dlx").as_str().into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await;
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = pgmq_vs_raw, rabbitmq
}
criterion_main!(benches);
