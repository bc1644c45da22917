//! `submit --api http`: task requests posted to an orchestrator's HTTP API instead of its
//! request queue. No database or broker connection is needed.
//!
//! The API's address is `--api-url`, or `orchestration.web.bind_address` of the configuration
//! (an unspecified IP such as `0.0.0.0` is reached on `127.0.0.1`). Credentials never come
//! from the command line: `TASKER_API_TOKEN` (a JWT, sent as `Authorization: Bearer`) or
//! `TASKER_API_KEY` (sent in `orchestration.web.auth.api_key_header`), read from the
//! environment. Requests are posted `--concurrency` at a time, and the rate is printed. With
//! `--wait`, each created task is read through the API until it finishes.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use futures_util::StreamExt as _;
use serde_json::Value;

use crate::{SubmitArgs, driver, write_out};

/// The environment variable holding a bearer token.
pub(crate) const TOKEN_VAR: &str = "TASKER_API_TOKEN";
/// The environment variable holding an API key.
pub(crate) const API_KEY_VAR: &str = "TASKER_API_KEY";

/// A credential for the API.
enum Credential {
    None,
    Bearer(String),
    ApiKey { header: String, key: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::None => "None",
            Credential::Bearer(_) => "Bearer(<redacted>)",
            Credential::ApiKey { .. } => "ApiKey(<redacted>)",
        })
    }
}

/// Posts the planned requests to the API; with `--wait`, follows the tasks to their end.
pub(crate) async fn submit(args: &SubmitArgs) -> anyhow::Result<ExitCode> {
    let templates = driver::load_templates(&args.templates.templates)?;
    let (config, _) = crate::setup::load_config()?;
    let base = match &args.api_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let mut address = config.orchestration.web.bind_address.0;
            if address.ip().is_unspecified() {
                address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{address}")
        }
    };
    let credential = if let Ok(token) = std::env::var(TOKEN_VAR) {
        Credential::Bearer(token)
    } else if let Ok(key) = std::env::var(API_KEY_VAR) {
        Credential::ApiKey {
            header: config.orchestration.web.auth.api_key_header.clone(),
            key,
        }
    } else {
        Credential::None
    };
    let client = client()?;
    let send = |request: reqwest::RequestBuilder| match &credential {
        Credential::None => request,
        Credential::Bearer(token) => request.bearer_auth(token),
        Credential::ApiKey { header, key } => request.header(header.as_str(), key.as_str()),
    };
    let planned = driver::plan(&templates, args.tasks, uuid::Uuid::now_v7());
    let concurrency = args.follow.concurrency.max(1);
    let started = std::time::Instant::now();
    let posted: Vec<anyhow::Result<(String, bool)>> = futures_util::stream::iter(&planned)
        .map(|item| {
            let request = send(client.post(format!("{base}/v1/tasks")).json(&item.request));
            let base = &base;
            async move {
                let response = request
                    .send()
                    .await
                    .with_context(|| format!("posting a task request to {base}"))?;
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                ensure!(
                    status.is_success(),
                    "the API refused a task request ({status}): {body}"
                );
                let task = body["task_uuid"]
                    .as_str()
                    .context("the API's answer names no task")?
                    .to_owned();
                Ok((task, body["existing"] == true))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut created = Vec::with_capacity(posted.len());
    let mut existing = 0usize;
    for result in posted {
        let (task, was_existing) = result?;
        existing += usize::from(was_existing);
        created.push(task);
    }
    let rate = planned.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    write_out(&format!(
        "sent {} task request(s) to {base}: {} created, {existing} existing, in {:.2} s \
         ({rate:.0} requests/s with {concurrency} concurrent clients)\n",
        planned.len(),
        planned.len() - existing,
        elapsed.as_secs_f64()
    ))?;
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let stall = Duration::from_secs(args.follow.stall_limit);
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for task in &created {
        let deadline = tokio::time::Instant::now() + stall;
        loop {
            let body: Value = send(client.get(format!("{base}/v1/tasks/{task}")))
                .send()
                .await?
                .json()
                .await?;
            let state = body["task"]["state"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned();
            if ["complete", "error", "cancelled", "resolved_manually"].contains(&state.as_str()) {
                *states.entry(state).or_default() += 1;
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                *states.entry("unfinished".to_owned()).or_default() += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let summary: Vec<String> = states
        .iter()
        .map(|(state, n)| format!("{state}: {n}"))
        .collect();
    write_out(&format!("finished: {}\n", summary.join(", ")))?;
    Ok(if states.contains_key("unfinished") {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A client over rustls with the ring provider the workspace links.
#[expect(
    deprecated,
    reason = "ring is the provider the workspace links; see tasker-web's jwks.rs"
)]
fn client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}
