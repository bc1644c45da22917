//! Metrics of real processes: an orchestrator and a worker (each with its `GET /metrics`
//! listener on a free port, which it prints) run the reference workflow for a submitter; then
//! each exposition is scraped over HTTP and checked against the database (tasks created,
//! completed and failed by namespace; one step duration per handler run), for plausible
//! messaging, database, pool, claim and breaker instruments, and by the real `promtool check
//! metrics`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use tasker_shared::database::{step, task};
use tasker_shared::state_machine::TaskState;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::deployment::{Backend, Deployment, Process};

/// Tasks of the run.
const TASKS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expositions_hold_every_instrument_with_plausible_values() -> anyhow::Result<()> {
    let deployment = Deployment::new(Backend::Pgmq).await?;
    let outcome = run_and_scrape(&deployment).await;
    let finished = deployment.finish().await;
    outcome.and(finished)
}

async fn run_and_scrape(deployment: &Deployment) -> anyhow::Result<()> {
    let mut worker = deployment.start("worker", &crate::WORKER)?;
    let mut orchestrator = deployment.start("orchestrator", &["orchestrator"])?;
    let worker_at = metrics_address(&worker)?;
    let orchestrator_at = metrics_address(&orchestrator)?;
    let tasks = TASKS.to_string();
    let mut submitter = deployment.spawn(
        "submitter",
        &["submit", "--tasks", &tasks, "--wait", "--no-progress"],
    )?;
    let status = tokio::task::block_in_place(|| submitter.wait(crate::RUN_LIMIT))?;
    let output = submitter.output.join("\n");
    ensure!(
        status.success(),
        "the submitter failed ({status}):\n{output}"
    );
    ensure!(
        output.contains(&format!("{TASKS} ok, 0 wrong, 0 unchecked")),
        "every result verified:\n{output}"
    );

    // What the database says happened.
    let records = task::TaskScope::new().all(&deployment.pool).await?;
    ensure!(records.len() == TASKS, "{} tasks", records.len());
    let mut expected: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for record in &records {
        let counts = expected.entry(record.namespace_name.clone()).or_default();
        counts[0] += 1;
        match record.state {
            TaskState::Complete => counts[1] += 1,
            TaskState::Error => counts[2] += 1,
            other => anyhow::bail!("task {} ended {other}", record.task_id),
        }
    }
    let ids: Vec<_> = records.iter().map(|record| record.task_id).collect();
    let handler_runs: u64 = step::for_tasks(&deployment.pool, &ids)
        .await?
        .values()
        .flatten()
        .map(|step| u64::try_from(step.attempts).unwrap_or(0))
        .sum();

    // A task is counted right after the commit that finished it, which the submitter may
    // learn of first: scrape until the counts settle (or the deadline).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let orchestrator_text = loop {
        let text = scrape(orchestrator_at).await?;
        let settled = expected.iter().all(|(namespace, [_, completed, failed])| {
            let label = format!(r#"tasker_namespace="{namespace}""#);
            value(&text, "tasker_tasks_completed_total", &[&label]) == *completed as f64
                && value(&text, "tasker_tasks_failed_total", &[&label]) == *failed as f64
        });
        if settled || tokio::time::Instant::now() >= deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let worker_text = scrape(worker_at).await?;
    let text = &orchestrator_text;
    for (namespace, [created, completed, failed]) in &expected {
        let label = format!(r#"tasker_namespace="{namespace}""#);
        let label = [label.as_str()];
        let check = |family: &str, want: u64| {
            let got = value(text, family, &label);
            ensure!(
                got == want as f64,
                "{family} of {namespace}: {got}, the database says {want}\n{text}"
            );
            Ok(())
        };
        check("tasker_tasks_created_total", *created)?;
        check("tasker_tasks_completed_total", *completed)?;
        check("tasker_tasks_failed_total", *failed)?;
        check("tasker_task_duration_seconds_count", completed + failed)?;
    }
    let steps = value(&worker_text, "tasker_step_duration_seconds_count", &[]);
    ensure!(
        steps == handler_runs as f64,
        "{steps} step durations, the database counts {handler_runs} attempts\n{worker_text}"
    );

    for (name, text) in [("orchestrator", text), ("worker", &worker_text)] {
        // Messaging: traffic both ways, and never more acknowledged than received.
        let sent = value(text, "messaging_client_sent_messages_total", &[]);
        let received = value(text, "messaging_client_consumed_messages_total", &[]);
        let acked = value(text, "tasker_messages_acked_total", &[]);
        ensure!(
            sent > 0.0 && received > 0.0 && acked > 0.0,
            "{name}: sent {sent}, received {received}, acked {acked}\n{text}"
        );
        ensure!(
            acked <= received,
            "{name}: acked {acked} > received {received}"
        );
        for family in [
            "messaging_client_operation_duration_seconds_count",
            "db_client_operation_duration_seconds_count",
            "db_client_connection_wait_time_seconds_count",
        ] {
            ensure!(
                value(text, family, &[]) > 0.0,
                "{name}: no {family}\n{text}"
            );
        }
        for present in [
            r#"db_client_connection_count_value{db_client_connection_state="idle"}"#,
            r#"db_client_connection_count_value{db_client_connection_state="used"}"#,
            r#"tasker_breaker_state{tasker_component="messaging"} 0"#,
            r#"tasker_queue_depth{"#,
            "target_info{",
        ] {
            ensure!(text.contains(present), "{name}: no {present}\n{text}");
        }
        promtool(name, text)?;
    }
    for operation in [
        "claim_ready_tasks",
        "create_tasks",
        "complete_steps",
        "step_readiness",
    ] {
        let label = format!(r#"db_operation_name="{operation}""#);
        let count = value(
            text,
            "db_client_operation_duration_seconds_count",
            &[&label],
        );
        ensure!(
            count > 0.0,
            "orchestrator: no {operation} durations\n{text}"
        );
    }
    for operation in ["start_steps", "store_results"] {
        let label = format!(r#"db_operation_name="{operation}""#);
        let count = value(
            &worker_text,
            "db_client_operation_duration_seconds_count",
            &[&label],
        );
        ensure!(
            count > 0.0,
            "worker: no {operation} durations\n{worker_text}"
        );
    }
    // Claims: the claim loop's rounds (new tasks start in the transaction that creates them,
    // so a run without retries may claim none at all).
    let claims = value(text, "tasker_claim_batch_size_count", &[]);
    let claimed = value(text, "tasker_claim_batch_size_sum", &[]);
    ensure!(
        claims > 0.0 && claimed <= TASKS as f64 * 4.0,
        "{claims} claims of {claimed} tasks\n{text}"
    );

    // A scrape is a GET of /metrics; anything else is 404.
    let (status, _) = get(worker_at, "/").await?;
    ensure!(status.contains(" 404 "), "GET / answered {status}");

    for process in [&mut worker, &mut orchestrator] {
        let status = process.terminate(Duration::from_secs(60))?;
        ensure!(status.success(), "{} exited {status}", process.name);
    }
    Ok(())
}

/// The address a process printed for its metrics listener.
fn metrics_address(process: &Process) -> anyhow::Result<SocketAddr> {
    let line = process
        .output
        .iter()
        .find_map(|line| line.strip_prefix("metrics listening on http://"))
        .with_context(|| {
            format!(
                "{} printed no metrics address: {:?}",
                process.name, process.output
            )
        })?;
    let address = line.strip_suffix("/metrics").unwrap_or(line);
    address
        .parse()
        .with_context(|| format!("{}'s metrics address {address:?}", process.name))
}

/// `GET /metrics`: the exposition, checked to be a 200 of the Prometheus text format.
async fn scrape(address: SocketAddr) -> anyhow::Result<String> {
    let (status, response) = get(address, "/metrics").await?;
    ensure!(status.contains(" 200 "), "GET /metrics answered {status}");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("a response without a blank line")?;
    ensure!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "the exposition's headers: {head}"
    );
    Ok(body.to_owned())
}

/// A minimal HTTP/1.1 GET (the test needs no client library): the status line and the whole
/// response.
async fn get(address: SocketAddr, path: &str) -> anyhow::Result<(String, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .with_context(|| format!("GET http://{address}{path} timed out"))??;
    let status = response.lines().next().unwrap_or_default().to_owned();
    Ok((status, response))
}

/// The sum of the samples of `family` whose labels contain every one of `labels`.
fn value(text: &str, family: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(family)?;
            let (labelled, sample) = rest.rsplit_once(' ')?;
            let matches = (labelled.is_empty() || labelled.starts_with('{'))
                && labels.iter().all(|label| labelled.contains(label));
            matches.then(|| sample.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// `promtool check metrics` accepts `text`. Without promtool it is noted and skipped, except
/// under `CI=true`, where it is a failure (`.ci/run` installs it).
fn promtool(name: &str, text: &str) -> anyhow::Result<()> {
    let in_ci = std::env::var("CI").is_ok_and(|value| value == "true");
    if Command::new("promtool").arg("--version").output().is_err() {
        ensure!(
            !in_ci,
            "promtool is missing and CI=true; install it (`apt-get install -y prometheus`)"
        );
        eprintln!("note: promtool is not installed; the {name}'s exposition was not checked by it");
        return Ok(());
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("promtool's stdin")?
        .write_all(text.as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "promtool rejected the {name}'s exposition ({}):\n{}{}\n--- exposition ---\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    Ok(())
}
