//! The messaging circuit breaker under a broker that goes away: every connection of the
//! engines to RabbitMQ is cut and new ones are refused for a while. Their sends and receives
//! fail, the `messaging` breaker opens (they fail fast instead of waiting on the broker), and
//! when the broker is back a trial call closes it; every task still finishes exactly once with
//! its correct result, and every queue ends empty.

use std::time::Duration;

use anyhow::ensure;

use crate::deployment::{Backend, Deployment, VISIBILITY_SECONDS};
use crate::proxy::Proxy;

/// How long the broker is away: an operation waits up to 10 s for a lost connection to come
/// back (the RabbitMQ backend's reconnect wait) before it fails, so this is long enough for
/// three failures to open the breaker (the test configuration) and for trial calls to find
/// the broker still away (its open period is 1 s).
const AWAY: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_messaging_breaker_opens_while_the_broker_is_away_and_the_run_recovers()
-> anyhow::Result<()> {
    let deployment = Deployment::new(Backend::Rabbitmq).await?;
    let outcome = async {
        let proxy = Proxy::default();
        let port = proxy.start("127.0.0.1:5672".to_owned()).await?;
        let through_proxy = [
            (
                "TASKER__COMMON__QUEUES__RABBITMQ__URL",
                format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            ),
            ("TASKER_LOG", "warn,tasker_resilience=info".to_owned()),
        ];
        let start = |name: &str, args: &[&str]| -> anyhow::Result<crate::deployment::Process> {
            let mut process =
                deployment.spawn_with(name, args, uuid::Uuid::now_v7(), &through_proxy)?;
            process.wait_for_line("ready", Duration::from_secs(60))?;
            Ok(process)
        };
        let mut worker = start("worker", &crate::WORKER)?;
        let mut orchestrator = start("orchestrator", &["orchestrator"])?;
        // The submitter talks to the broker directly: the fault is the engines'.
        let tasks = "150"; // check_database below expects as many
        let mut submitter = deployment.spawn(
            "submitter",
            &[
                "submit",
                "--tasks",
                tasks,
                "--wait",
                "--no-progress",
                "--stall-limit",
                "60",
            ],
        )?;
        crate::wait_for_finished(&deployment, 30).await?;
        proxy.cut();
        tokio::time::sleep(AWAY).await;
        proxy.forward();

        let status = tokio::task::block_in_place(|| submitter.wait(crate::RUN_LIMIT))?;
        let output = submitter.output.join("\n");
        ensure!(
            status.success(),
            "the submitter failed ({status}):\n{output}"
        );
        ensure!(
            output.contains(&format!("{tasks} ok, 0 wrong, 0 unchecked")),
            "every result verified:\n{output}"
        );
        // Exactly once: one task per request, one terminal state each, no attempt lost.
        let checked = crate::check_database(&deployment, 150, None).await?;
        ensure!(
            checked.rerun == 0,
            "no worker died, yet {} attempts were lost",
            checked.rerun
        );
        deployment
            .wait_for_empty_queues(Duration::from_secs(3 * VISIBILITY_SECONDS + 10))
            .await?;

        // The breaker opened while the broker was away, and closed once it was back.
        let changes: Vec<String> = [&worker, &orchestrator]
            .iter()
            .flat_map(|process| process.logs())
            .filter(|line| {
                line.contains("circuit breaker state changed")
                    && line.contains("component=messaging")
            })
            .collect();
        ensure!(
            changes
                .iter()
                .any(|line| line.contains("to=\"open\"") || line.contains("to=open")),
            "the messaging breaker opened: {changes:#?}"
        );
        ensure!(
            changes
                .iter()
                .any(|line| line.contains("to=\"closed\"") || line.contains("to=closed")),
            "the messaging breaker closed again: {changes:#?}"
        );
        for process in [&mut worker, &mut orchestrator] {
            let status =
                tokio::task::block_in_place(|| process.terminate(Duration::from_secs(60)))?;
            ensure!(
                status.success(),
                "{} exited {status} on SIGTERM",
                process.name
            );
        }
        anyhow::Ok(())
    }
    .await;
    let finished = deployment.finish().await;
    outcome.and(finished)
}
