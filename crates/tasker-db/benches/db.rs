//! Benchmarks of tasker-db on the predecessor's data shapes (5,000 and 50,000 tasks of 4-step
//! linear and diamond DAGs in mixed states; `benches/data/generate.sql`): step readiness,
//! execution context, claiming 10 ready tasks, creating 4-step and 1,000-step tasks and
//! applying a step transition.
//!
//! Needs the PostgreSQL server named by `DATABASE_URL`. The data sets live in the databases
//! `tasker_bench_5000` and `tasker_bench_50000`, generated on first use and reused while their
//! generator version matches; write benchmarks run on a fresh copy (`…_w`) so the read data
//! never drifts. Set `TASKER_BENCH_SIZES=5000` to skip the large set.
//!
//! Calls go through the crate's own functions on one connection, the way a service calls them:
//! each figure includes the client round trip over TCP.

#![expect(
    clippy::print_stderr,
    reason = "a benchmark binary reports its data sets on stderr"
)]

use std::str::FromStr;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use tasker_db::claim::{self, ClaimRequest};
use tasker_db::context;
use tasker_db::pool::PoolConfig;
use tasker_db::readiness::{self, BackoffParams};
use tasker_db::step::{self, StepTransition};
use tasker_db::task::{self, NewEdge, NewStep, NewTask};
use tasker_db::template::{self, LifecycleLimits, StepRegistration, TemplateRegistration};
use tasker_models::identity::IdentityStrategy;
use tasker_models::ids::{CorrelationId, NamedTaskId, StepId, TaskId};
use tasker_state::{StepEvent, StepState};
use tokio::runtime::Runtime;

/// Bumped whenever generate.sql changes, so stale data sets are rebuilt.
const GENERATOR: &str = "v2";
const GENERATE_SQL: &str = include_str!("data/generate.sql");

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn server() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/tasker_development".to_owned());
    PgConnectOptions::from_str(&url).expect("DATABASE_URL is a PostgreSQL URL")
}

fn sizes() -> Vec<i32> {
    std::env::var("TASKER_BENCH_SIZES")
        .unwrap_or_else(|_| "5000,50000".to_owned())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("TASKER_BENCH_SIZES lists task counts")
        })
        .collect()
}

/// A connection with Tasker's settings (search path) to `database`.
async fn connect(database: &str) -> PgConnection {
    PoolConfig::from_options(server().database(database))
        .connect_options()
        .connect()
        .await
        .expect("a connection to the benchmark database")
}

async fn admin() -> PgConnection {
    server()
        .database("postgres")
        .connect()
        .await
        .expect("a connection to the maintenance database")
}

/// Makes sure `tasker_bench_<n>` holds the current data set; returns its name.
async fn ensure_data_set(n: i32) -> String {
    let name = format!("tasker_bench_{n}");
    let url = server().database(&name).to_url_lossy().to_string();
    tasker_db::migrate::create_database_if_missing(&url)
        .await
        .expect("the benchmark database");
    let pool = PoolConfig::from_options(server().database(&name))
        .connect()
        .await
        .expect("a pool");
    // A data set migrated by other (e.g. since edited) migrations is regenerated.
    let migrated = tasker_db::migrate::run(&pool).await.is_ok();
    let current: Option<(String, i32)> = sqlx::query_as(
        "SELECT generator, n_tasks FROM public.bench_meta \
         WHERE to_regclass('public.bench_meta') IS NOT NULL",
    )
    .fetch_optional(&pool)
    .await
    .unwrap_or(None);
    pool.close().await;
    if migrated && current == Some((GENERATOR.to_owned(), n)) {
        // Earlier runs leave dead rows behind (claims are rolled back); clean them up so every
        // run starts from the same physical state.
        let mut conn = connect(&name).await;
        sqlx::raw_sql("VACUUM ANALYZE")
            .execute(&mut conn)
            .await
            .expect("vacuum");
        conn.close().await.expect("close");
        return name;
    }
    eprintln!("generating the {n}-task data set in {name} (once)…");
    tasker_db::migrate::drop_database_if_exists(&url)
        .await
        .expect("drop");
    tasker_db::migrate::create_database_if_missing(&url)
        .await
        .expect("create");
    let pool = PoolConfig::from_options(server().database(&name))
        .connect()
        .await
        .expect("a pool");
    tasker_db::migrate::run(&pool).await.expect("migrations");
    pool.close().await;
    let mut conn = connect(&name).await;
    let script = format!("SELECT set_config('bench.n_tasks', '{n}', false);\n{GENERATE_SQL}");
    sqlx::raw_sql(&script)
        .execute(&mut conn)
        .await
        .expect("generate.sql");
    sqlx::raw_sql("VACUUM ANALYZE")
        .execute(&mut conn)
        .await
        .expect("vacuum");
    conn.close().await.expect("close");
    name
}

/// A fresh copy of a data set for write benchmarks.
async fn scratch_copy(source: &str) -> String {
    let name = format!("{source}_w");
    let mut admin = admin().await;
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\" TEMPLATE \"{source}\""),
    ] {
        sqlx::raw_sql(&sql)
            .execute(&mut admin)
            .await
            .expect("scratch copy");
    }
    name
}

async fn task_ids(conn: &mut PgConnection) -> Vec<TaskId> {
    let ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT task_uuid FROM public.bench_tasks ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .expect("bench_tasks");
    ids.into_iter().map(TaskId::from_uuid).collect()
}

/// Walks the tasks in a fixed pseudo-random order (a stride coprime with the count).
struct Picker {
    ids: Vec<TaskId>,
    at: usize,
}

impl Picker {
    fn next(&mut self) -> TaskId {
        self.at = (self.at + 7_919) % self.ids.len();
        self.ids[self.at]
    }
}

fn reads(c: &mut Criterion) {
    let rt = runtime();
    for n in sizes() {
        let name = rt.block_on(ensure_data_set(n));
        let mut conn = rt.block_on(connect(&name));
        let mut picker = Picker {
            ids: rt.block_on(task_ids(&mut conn)),
            at: 0,
        };
        let candidates: i64 = rt
            .block_on(
                sqlx::query_scalar(
                    "SELECT count(*) FROM tasker.tasks WHERE state = 'pending' \
                     OR (state = 'waiting_for_retry' AND next_retry_at <= now()) \
                     OR (state = 'waiting_for_dependencies' AND state_entered_at > now() - interval '60 minutes')",
                )
                .fetch_one(&mut conn),
            )
            .expect("candidates");
        eprintln!("{name}: {n} tasks, {candidates} claim candidates");

        let mut group = c.benchmark_group("db_read");
        group
            .sample_size(50)
            .measurement_time(Duration::from_secs(5))
            .warm_up_time(Duration::from_secs(1));
        // The floor every one-call figure stands on: a bare round trip on the same connection
        // (this machine's varies from minute to minute; compare the others with it).
        group.bench_function(BenchmarkId::new("round_trip_select_1", n), |b| {
            b.iter(|| {
                rt.block_on(sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut conn))
                    .expect("select 1")
            })
        });
        group.bench_function(BenchmarkId::new("step_readiness", n), |b| {
            b.iter(|| {
                let task = picker.next();
                rt.block_on(readiness::for_task(
                    &mut conn,
                    task,
                    BackoffParams::DEFAULT,
                    None,
                ))
                .expect("readiness")
            })
        });
        group.bench_function(BenchmarkId::new("execution_context", n), |b| {
            b.iter(|| {
                let task = picker.next();
                rt.block_on(context::for_task(
                    &mut conn,
                    task,
                    BackoffParams::DEFAULT,
                    None,
                ))
                .expect("context")
            })
        });
        // Claims inside a transaction that is rolled back, so the data set stays as generated
        // (the commit's cost is measured by the write benchmarks).
        group.bench_function(BenchmarkId::new("claim_10_rolled_back", n), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut tx = conn.begin().await.expect("begin");
                    let claimed =
                        claim::claim_ready_tasks(&mut *tx, ClaimRequest::new(10, None), None)
                            .await
                            .expect("claim");
                    tx.rollback().await.expect("rollback");
                    claimed
                })
            })
        });
        group.finish();
        rt.block_on(conn.close()).expect("close");
    }
}

/// The templates the write benchmarks instantiate: a 4-step diamond and a 1,000-step layered DAG.
struct Shapes {
    diamond: (NamedTaskId, Vec<NewStep<'static>>, Vec<NewEdge>),
    big: (NamedTaskId, Vec<NewStep<'static>>, Vec<NewEdge>),
}

async fn register_shapes(conn: &mut PgConnection) -> Shapes {
    async fn shape(
        conn: &mut PgConnection,
        name: &str,
        steps: usize,
        edges: Vec<NewEdge>,
    ) -> (NamedTaskId, Vec<NewStep<'static>>, Vec<NewEdge>) {
        let names: Vec<String> = (0..steps).map(|i| format!("s{i}")).collect();
        let configuration = serde_json::json!({});
        let definition = serde_json::json!({});
        let registrations: Vec<StepRegistration<'_>> = names
            .iter()
            .map(|name| StepRegistration {
                name,
                description: None,
                definition: &definition,
            })
            .collect();
        let registered = template::register(
            &mut *conn,
            &TemplateRegistration {
                namespace: "bench_writes",
                name,
                version: "1.0.0",
                description: None,
                identity_strategy: IdentityStrategy::Strict,
                configuration: &configuration,
                lifecycle: LifecycleLimits::default(),
                steps: &registrations,
            },
        )
        .await
        .expect("register");
        let steps = registered
            .steps
            .iter()
            .map(|(_, id)| NewStep {
                named_step_id: *id,
                retryable: true,
                max_attempts: 3,
                inputs: None,
            })
            .collect();
        (registered.named_task_id, steps, edges)
    }
    let diamond_edges = [(0, 1), (0, 2), (1, 3), (2, 3)]
        .map(|(from, to)| NewEdge { from, to })
        .to_vec();
    let mut big_edges = Vec::new();
    for level in 1..50 {
        for i in 0..20 {
            let me = level * 20 + i;
            big_edges.push(NewEdge {
                from: (level - 1) * 20 + i,
                to: me,
            });
            big_edges.push(NewEdge {
                from: (level - 1) * 20 + (i + 1) % 20,
                to: me,
            });
        }
    }
    Shapes {
        diamond: shape(conn, "bench_diamond", 4, diamond_edges).await,
        big: shape(conn, "bench_layered_1000", 1_000, big_edges).await,
    }
}

async fn create(
    conn: &mut PgConnection,
    shape: &(NamedTaskId, Vec<NewStep<'static>>, Vec<NewEdge>),
    serial: u64,
) -> (TaskId, Vec<StepId>) {
    let context = serde_json::json!({ "serial": serial });
    let hash = format!("bench-write-{}", uuid::Uuid::now_v7());
    let created = task::create(
        conn,
        &NewTask {
            named_task_id: shape.0,
            identity_hash: &hash,
            context: &context,
            tags: &[],
            priority: 0,
            initiator: Some("bench"),
            source_system: None,
            reason: None,
            correlation_id: CorrelationId::new_v7(),
            parent_correlation_id: None,
            requested_at: None,
            processor_id: None,
            request_id: None,
            reply_to: None,
        },
        &shape.1,
        &shape.2,
    )
    .await
    .expect("create");
    match created {
        task::TaskCreation::Created { task_id, step_ids } => (task_id, step_ids),
        task::TaskCreation::Existing { .. } => unreachable!("identity hashes are unique"),
    }
}

fn writes(c: &mut Criterion) {
    let rt = runtime();
    for n in sizes() {
        let source = rt.block_on(ensure_data_set(n));
        let name = rt.block_on(scratch_copy(&source));
        let mut conn = rt.block_on(connect(&name));
        // Untimed setup (fresh tasks to transition) runs on its own connection.
        let mut setup = rt.block_on(connect(&name));
        let shapes = rt.block_on(register_shapes(&mut conn));
        let mut serial = 0u64;

        let mut group = c.benchmark_group("db_write");
        group
            .sample_size(30)
            .measurement_time(Duration::from_secs(5))
            .warm_up_time(Duration::from_secs(1));
        group.bench_function(BenchmarkId::new("create_4_step_task", n), |b| {
            b.iter(|| {
                serial += 1;
                rt.block_on(create(&mut conn, &shapes.diamond, serial))
            })
        });
        group.bench_function(BenchmarkId::new("apply_step_transition", n), |b| {
            b.iter_batched(
                || {
                    serial += 1;
                    rt.block_on(create(&mut setup, &shapes.diamond, serial)).1[0]
                },
                |step_id| {
                    rt.block_on(step::transition(
                        &mut conn,
                        StepTransition {
                            step_id,
                            expected: StepState::Pending,
                            event: StepEvent::Enqueue,
                            metadata: None,
                        },
                        None,
                        BackoffParams::DEFAULT,
                    ))
                    .expect("transition")
                },
                BatchSize::PerIteration,
            )
        });
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(10));
        group.bench_function(BenchmarkId::new("create_1000_step_task", n), |b| {
            b.iter(|| {
                serial += 1;
                rt.block_on(create(&mut conn, &shapes.big, serial))
            })
        });
        group.finish();
        rt.block_on(conn.close()).expect("close");
        rt.block_on(setup.close()).expect("close");
        let mut admin = rt.block_on(admin());
        rt.block_on(
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin),
        )
        .expect("drop the scratch copy");
    }
}

criterion_group!(benches, reads, writes);
criterion_main!(benches);
