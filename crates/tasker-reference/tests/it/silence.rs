//! A database that goes silent mid-run: every connection open at that moment, and every one
//! opened during the next seconds, stops carrying bytes for good without being closed, as a
//! network partition or a hung server leaves them. Nothing in the process may wait on them
//! forever: each unit of work gives up after the processing timeout, drops its connection and
//! is tried again on a fresh one, and the run finishes every task with its correct result.

use std::time::Duration;

use crate::deployment::{Backend, Deployment};
use crate::proxy::Proxy;
use anyhow::ensure;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_gone_silent_mid_run_is_waited_out_not_waited_on() -> anyhow::Result<()> {
    let deployment = Deployment::new(Backend::Pgmq).await?;
    let outcome = async {
        let proxy = Proxy::default();
        let options: sqlx::postgres::PgConnectOptions = deployment.url.parse()?;
        let upstream = format!("{}:{}", options.get_host(), options.get_port());
        let port = proxy.start(upstream).await?;
        let via_proxy = {
            use sqlx::ConnectOptions as _;
            options.port(port).to_url_lossy().to_string()
        };
        let timeout = [
            "TASKER__ORCHESTRATION__EVENT_SYSTEMS__ORCHESTRATION__TIMING__PROCESSING_TIMEOUT_SECONDS",
            "TASKER__WORKER__EVENT_SYSTEMS__WORKER__TIMING__PROCESSING_TIMEOUT_SECONDS",
        ];
        let mut env: Vec<(&str, String)> = timeout.iter().map(|key| (*key, "1".to_owned())).collect();
        env.push(("DATABASE_URL", via_proxy));
        env.push(("TASKER__COMMON__DATABASE__POOL__ACQUIRE_TIMEOUT_SECONDS", "2".to_owned()));
        let mut run = deployment.spawn_with(
            "run",
            &["run", "--tasks", "100", "--workers", "4", "--no-progress", "--stall-limit", "30"],
            uuid::Uuid::now_v7(),
            &env,
        )?;
        crate::wait_for_finished(&deployment, 20).await?;
        proxy.black_hole();
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.forward();
        let status = tokio::task::block_in_place(|| run.wait(crate::RUN_LIMIT))?;
        let output = run.output.join("\n");
        ensure!(status.success(), "the run failed ({status}):\n{output}");
        ensure!(
            output.contains("100 ok, 0 wrong, 0 unchecked"),
            "every result verified:\n{output}"
        );
        // Silent for 3 s, then every unit of work that waited gives up within the 1 s timeout
        // (2 s for a connection's release check) and starts over on a fresh connection.
        let pause = crate::longest_pause(&output)?;
        println!(
            "FIGURES | the database silent for 3 s (connections black-holed) | pgmq | 100 | 0 | - | longest pause {} ms | p99 {} |",
            pause.as_millis(),
            crate::summary_row(&output, "task latency p99").unwrap_or("?"),
        );
        ensure!(
            pause <= Duration::from_secs(3 + 15),
            "no task finished for {pause:?}"
        );
        anyhow::Ok(())
    }
    .await;
    let finished = deployment.finish().await;
    outcome.and(finished)
}
