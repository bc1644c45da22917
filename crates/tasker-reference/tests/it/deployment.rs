//! A deployment of real processes for a test: a database of its own, and `tasker-reference`
//! processes (orchestrators, workers, submitters, all-in-one runs) spawned against it with
//! short timeouts. Every process is killed when the deployment is dropped, and the database
//! is dropped by [`Deployment::finish`].

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use sqlx::ConnectOptions as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection, PgPool};
use tasker_shared::database::pool::PoolConfig;
use tasker_shared::database::{health, migrate};
use tasker_shared::messaging::config::PgmqConfig;
use tasker_shared::messaging::config::RabbitMqConfig;
use tasker_shared::messaging::pgmq::PgmqQueue;
use tasker_shared::messaging::queue::MessageQueue as _;
use tasker_shared::messaging::queue_name::{Namespace, orchestration_queues, worker_queue};
use tasker_shared::messaging::rabbitmq::RabbitMqQueue;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long a process may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// The visibility timeout of the test deployments, in seconds: a message held by a killed
/// process comes back after this long.
pub(crate) const VISIBILITY_SECONDS: u64 = 2;
/// The consumers' safety-net poll, in seconds.
pub(crate) const POLL_SECONDS: u64 = 1;
/// How often a worker renews its lease, in seconds.
const LEASE_RENEWAL_SECONDS: u64 = 1;
/// How long a worker's lease outlives its last renewal (three renewals): a killed worker's
/// attempts are declared lost after this long.
pub(crate) const LEASE_SECONDS: u64 = 3 * LEASE_RENEWAL_SECONDS;

/// The messaging backend of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Pgmq,
    Rabbitmq,
}

impl Backend {
    fn as_str(self) -> &'static str {
        match self {
            Backend::Pgmq => "pgmq",
            Backend::Rabbitmq => "rabbitmq",
        }
    }
}

/// A spawned process, with its stdout lines arriving on a channel.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) name: String,
    pub(crate) process_id: uuid::Uuid,
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line read so far.
    pub(crate) output: Vec<String>,
    /// Every log line (stderr) so far; each is also written to the test's stderr.
    logs: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// The log lines so far, without terminal colours.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits for a stdout line containing `text`.
    pub(crate) fn wait_for_line(&mut self, text: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.output.push(line);
                    if found {
                        return Ok(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    anyhow::bail!("{} did not print {text:?} within {limit:?}", self.name)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait()?;
                    anyhow::bail!(
                        "{} exited ({status}) before printing {text:?}; it printed: {:?}",
                        self.name,
                        self.output
                    )
                }
            }
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub(crate) fn kill_9(&mut self) -> anyhow::Result<()> {
        self.child
            .kill()
            .with_context(|| format!("killing {}", self.name))?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub(crate) fn terminate(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("running kill -TERM")?;
        ensure!(status.success(), "kill -TERM {} failed", self.name);
        self.wait(limit)
    }

    /// Waits for the process to exit, reading the rest of its output.
    pub(crate) fn wait(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.output.push(line);
            }
            if let Some(status) = self.child.try_wait()? {
                // The reader thread ends with the pipe; collect what is left.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.output.push(line);
                }
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                anyhow::bail!(
                    "{} did not exit within {limit:?}; it printed {:?}",
                    self.name,
                    self.output
                );
            }
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.output.push(line);
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database of its own and the processes running against it.
#[derive(Debug)]
pub(crate) struct Deployment {
    pub(crate) backend: Backend,
    pub(crate) url: String,
    pub(crate) pool: PgPool,
    database: String,
    pool_config: PoolConfig,
}

impl Deployment {
    /// Creates and migrates a fresh database.
    pub(crate) async fn new(backend: Backend) -> anyhow::Result<Self> {
        let base =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let database = format!("tasker_reference_mp_{}", uuid::Uuid::now_v7().simple());
        let options = PgConnectOptions::from_str(&base)
            .with_context(|| format!("parsing DATABASE_URL {base:?}"))?
            .database(&database);
        let url = options.to_url_lossy().to_string();
        migrate::create_database_if_missing(&url)
            .await
            .context("creating the test database (is PostgreSQL running on 127.0.0.1:5432?)")?;
        let mut config = PoolConfig::from_options(options);
        config.max_connections = 4;
        let pool = config.connect().await?;
        migrate::run(&pool).await?;
        Ok(Self {
            backend,
            url,
            pool,
            database,
            pool_config: config,
        })
    }

    /// A `tasker-reference` command against this deployment, with short timeouts.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tasker-reference"));
        command
            .args(args)
            .args(["--messaging", self.backend.as_str()])
            .env("TASKER_ENV", "test")
            .env("DATABASE_URL", &self.url)
            .env(
                "TASKER__COMMON__QUEUES__DEFAULT_VISIBILITY_TIMEOUT_SECONDS",
                VISIBILITY_SECONDS.to_string(),
            )
            .env(
                "TASKER__ORCHESTRATION__EVENT_SYSTEMS__ORCHESTRATION__TIMING__FALLBACK_POLLING_INTERVAL_SECONDS",
                POLL_SECONDS.to_string(),
            )
            .env(
                "TASKER__WORKER__EVENT_SYSTEMS__WORKER__TIMING__HEALTH_CHECK_INTERVAL_SECONDS",
                LEASE_RENEWAL_SECONDS.to_string(),
            )
            .env("TASKER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Spawns `tasker-reference <args>` as `name`.
    pub(crate) fn spawn(&self, name: &str, args: &[&str]) -> anyhow::Result<Process> {
        self.spawn_as(name, args, uuid::Uuid::now_v7())
    }

    /// Spawns `tasker-reference <args>` as `name` with process id `process_id` (a process
    /// started again after a crash keeps its configured id).
    pub(crate) fn spawn_as(
        &self,
        name: &str,
        args: &[&str],
        process_id: uuid::Uuid,
    ) -> anyhow::Result<Process> {
        self.spawn_with(name, args, process_id, &[])
    }

    /// [`Deployment::spawn_as`] with extra environment variables (they override the
    /// deployment's own, `DATABASE_URL` included).
    pub(crate) fn spawn_with(
        &self,
        name: &str,
        args: &[&str],
        process_id: uuid::Uuid,
        env: &[(&str, String)],
    ) -> anyhow::Result<Process> {
        let mut command = self.command(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .args(["--process-id", &process_id.to_string()])
            .spawn()
            .with_context(|| format!("spawning {name}"))?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let stderr = child.stderr.take().context("the child's stderr")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                let plain = strip_colours(&line);
                kept.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(plain);
            }
        });
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Process {
            name: name.to_owned(),
            process_id,
            child,
            lines,
            output: Vec::new(),
            logs,
        })
    }

    /// Spawns a long-running role and waits until it says it is ready.
    pub(crate) fn start(&self, name: &str, args: &[&str]) -> anyhow::Result<Process> {
        self.start_as(name, args, uuid::Uuid::now_v7())
    }

    /// [`Deployment::start`] with process id `process_id`.
    pub(crate) fn start_as(
        &self,
        name: &str,
        args: &[&str],
        process_id: uuid::Uuid,
    ) -> anyhow::Result<Process> {
        let mut process = self.spawn_as(name, args, process_id)?;
        process.wait_for_line("ready", READY_WITHIN)?;
        Ok(process)
    }

    /// Closes every RabbitMQ connection of the deployment's processes from the broker's side
    /// (`rabbitmqctl close_connection`, as an operator or a broker restart would), and returns
    /// how many were closed. The processes name their connections after the deployment.
    pub(crate) async fn close_rabbitmq_connections(&self) -> anyhow::Result<usize> {
        let listed = rabbitmqctl(&["list_connections", "pid", "client_properties"]).await?;
        let name = format!("tasker-reference {}.", self.database);
        let pids: Vec<String> = listed
            .lines()
            .filter(|line| line.contains(&name))
            .filter_map(|line| line.split('\t').next())
            .map(str::to_owned)
            .collect();
        let closes = pids.iter().map(|pid| async move {
            rabbitmqctl(&[
                "close_connection",
                pid.as_str(),
                "closed by the fault suite",
            ])
            .await
        });
        for closed in futures_util::future::join_all(closes).await {
            closed?;
        }
        Ok(pids.len())
    }

    /// The messages left in the deployment's orchestration and worker queues and their
    /// dead-letter queues, counting those received and not yet acknowledged; queues holding
    /// none are left out.
    pub(crate) async fn queued_messages(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let mut queues = orchestration_queues().to_vec();
        queues.push(worker_queue(&Namespace::new("reference")?));
        let dead: Vec<_> = queues
            .iter()
            .filter_map(|queue| queue.dead_letter())
            .collect();
        queues.extend(dead);
        let mut held = Vec::new();
        match self.backend {
            Backend::Pgmq => {
                let pgmq = PgmqQueue::new(self.pool.clone(), PgmqConfig::default()).await;
                for queue in &queues {
                    let depth = pgmq.depth(queue).await?;
                    let count = depth.ready + depth.in_flight.unwrap_or(0);
                    if count > 0 {
                        held.push((queue.to_string(), count));
                    }
                }
            }
            Backend::Rabbitmq => {
                // The broker counts unacknowledged deliveries too (`messages`).
                let listed = rabbitmqctl(&["list_queues", "name", "messages"]).await?;
                let prefix = format!("{}.", self.database);
                for line in listed.lines() {
                    let mut fields = line.split('\t');
                    let (Some(name), Some(count)) = (fields.next(), fields.next()) else {
                        continue;
                    };
                    let Some(queue) = name.strip_prefix(&prefix) else {
                        continue;
                    };
                    let count: u64 = count.trim().parse().with_context(|| {
                        format!("rabbitmqctl list_queues: a count for {name}: {count:?}")
                    })?;
                    if count > 0 && queues.iter().any(|known| known.as_str() == queue) {
                        held.push((queue.to_owned(), count));
                    }
                }
            }
        }
        Ok(held)
    }

    /// Terminates every session of the deployment's database (the test's own included, which
    /// it then replaces) and returns how many were terminated.
    pub(crate) async fn terminate_sessions(&mut self) -> anyhow::Result<i64> {
        let mut one = PgConnection::connect_with(&self.pool_config.connect_options()).await?;
        let terminated = health::terminate_other_sessions(&mut one).await?;
        one.close().await?;
        let fresh = self.pool_config.connect().await?;
        let old = std::mem::replace(&mut self.pool, fresh);
        old.close().await;
        Ok(terminated)
    }

    /// Waits until every queue of the deployment is empty (a message received and not yet
    /// acknowledged counts), checking every 100 ms up to `limit`; fails naming what is left.
    pub(crate) async fn wait_for_empty_queues(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let held = self.queued_messages().await?;
            if held.is_empty() {
                return Ok(());
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "queues still hold messages after {limit:?}: {held:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The deployment's database name (on RabbitMQ, its queue prefix with a dot).
    pub(crate) fn database(&self) -> &str {
        &self.database
    }

    /// Drops the database, and on RabbitMQ the deployment's queues.
    pub(crate) async fn finish(self) -> anyhow::Result<()> {
        if self.backend == Backend::Rabbitmq {
            let broker = RabbitMqQueue::connect(RabbitMqConfig {
                url: std::env::var("RABBITMQ_URL")
                    .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
                queue_prefix: format!("{}.", self.database),
                connection_name: "tasker-reference-it-cleanup".to_owned(),
                ..RabbitMqConfig::default()
            })
            .await
            .context("connecting to RabbitMQ to delete the deployment's queues")?;
            let mut queues = orchestration_queues().to_vec();
            queues.push(worker_queue(&Namespace::new("reference")?));
            queues.push(tasker_shared::messaging::queue_name::domain_events_queue(
                &Namespace::new("reference")?,
            ));
            for queue in &queues {
                broker.delete_queue(queue).await?;
            }
        }
        self.pool.close().await;
        migrate::drop_database_if_exists(&self.url)
            .await
            .with_context(|| format!("dropping {}", self.database))?;
        Ok(())
    }
}

/// Runs `rabbitmqctl --quiet <args> --no-table-headers`-style listings and commands (the
/// broker runs on this machine, as in CI) and returns its standard output.
async fn rabbitmqctl(args: &[&str]) -> anyhow::Result<String> {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new("rabbitmqctl");
        command.arg("--quiet").args(&args);
        if args.first().is_some_and(|verb| verb.starts_with("list_")) {
            command.arg("--no-table-headers");
        }
        let output = command
            .output()
            .with_context(|| format!("running rabbitmqctl {args:?} (is rabbitmqctl on PATH?)"))?;
        ensure!(
            output.status.success(),
            "rabbitmqctl {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    })
    .await?
}

/// `line` without ANSI colour sequences (`ESC [ ... m`).
fn strip_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}
