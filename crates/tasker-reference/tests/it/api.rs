//! The orchestrator's HTTP API against a real orchestrator process on PostgreSQL, driven
//! with an HTTP client: templates registered through the API, tasks created (and again, as
//! duplicates), read, listed page by page while other tasks are inserted, cancelled, and their
//! audit trails read; authentication with an API key and a JWT; and the malformed-request
//! suite generated from the served OpenAPI document.

mod auth;
mod malformed;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::deployment::{Backend, Deployment, Process};

/// How long an orchestrator may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// An orchestrator process serving the API, and a client for it.
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    /// Kept for its lifetime: the process is killed when it is dropped.
    _process: Process,
}

impl Api {
    /// Starts an orchestrator (with `env`) against `deployment` and reads the API's address
    /// from its output.
    pub(crate) fn start(deployment: &Deployment, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut process =
            deployment.spawn_with("orchestrator", &["orchestrator"], uuid::Uuid::now_v7(), env)?;
        process.wait_for_line("orchestrator ready", READY_WITHIN)?;
        let base = process
            .output
            .iter()
            .find_map(|line| line.strip_prefix("api listening on "))
            .context("the orchestrator printed no `api listening on` line")?
            .trim()
            .to_owned();
        Ok(Self {
            base,
            client: client(),
            _process: process,
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// An HTTP client (reqwest over rustls needs the process's TLS provider, as tasker-web's
/// JWKS client does).
#[expect(
    deprecated,
    reason = "ring is the provider the workspace links; see tasker-web's jwks.rs"
)]
pub(crate) fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The reference template `name` as YAML text.
pub(crate) fn template_yaml(name: &str) -> anyhow::Result<String> {
    let path = format!("{}/templates/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))
}

/// A request for `reference/linear:1.0.0` with `value`.
pub(crate) fn linear(value: i64) -> Value {
    json!({
        "namespace": "reference",
        "name": "linear",
        "version": "1.0.0",
        "context": {"value": value},
    })
}

/// Registers `reference/linear` through the API.
pub(crate) async fn register_linear(api: &Api, headers: &[(&str, String)]) -> anyhow::Result<()> {
    let mut request = api
        .client
        .post(api.url("/v1/templates"))
        .header("content-type", "application/yaml")
        .body(template_yaml("linear")?);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await?;
    ensure!(
        matches!(response.status(), StatusCode::CREATED | StatusCode::OK),
        "registering linear: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(())
}

/// Asserts `response` is a problem document with `status`, and returns it.
pub(crate) async fn problem(
    response: reqwest::Response,
    status: StatusCode,
) -> anyhow::Result<Value> {
    let got = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await?;
    ensure!(got == status, "expected {status}, got {got}: {body}");
    ensure!(
        content_type == "application/problem+json",
        "a problem document, got {content_type}: {body}"
    );
    Ok(serde_json::from_str(&body)?)
}

#[tokio::test]
async fn the_api_drives_templates_and_tasks_against_a_real_orchestrator() -> anyhow::Result<()> {
    let deployment = Deployment::new(Backend::Pgmq).await?;
    let outcome = drive(&deployment).await;
    let finished = deployment.finish().await;
    outcome.and(finished)
}

async fn drive(deployment: &Deployment) -> anyhow::Result<()> {
    // No worker: tasks stay in process, so they can be cancelled.
    let api = Api::start(deployment, &[])?;
    let client = &api.client;

    // Health and the document are public.
    ensure!(client.get(api.url("/health/live")).send().await?.status() == StatusCode::OK);
    let ready: Value = client
        .get(api.url("/health/ready"))
        .send()
        .await?
        .json()
        .await?;
    ensure!(ready["status"] == "ok", "ready: {ready}");
    let document: Value = client
        .get(api.url("/api-docs/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    ensure!(document["openapi"] == "3.1.0");

    // Templates: registered (201), again unchanged (200), listed, read; an invalid one is 422
    // with its problems located; 100,000 nested `[` are refused at once.
    let yaml = template_yaml("linear")?;
    let post_yaml = |body: String| {
        client
            .post(api.url("/v1/templates"))
            .header("content-type", "application/yaml")
            .body(body)
            .send()
    };
    let created = post_yaml(yaml.clone()).await?;
    ensure!(
        created.status() == StatusCode::CREATED,
        "{}",
        created.text().await?
    );
    let again = post_yaml(yaml.clone()).await?;
    ensure!(again.status() == StatusCode::OK);
    let again: Value = again.json().await?;
    ensure!(again["change"] == "unchanged", "{again}");
    let listed: Value = client
        .get(api.url("/v1/templates"))
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        listed["templates"]
            .as_array()
            .is_some_and(|templates| templates.iter().any(|t| t["name"] == "linear")),
        "{listed}"
    );
    let detail = client
        .get(api.url("/v1/templates/reference/linear/1.0.0"))
        .send()
        .await?;
    ensure!(detail.status() == StatusCode::OK);
    let invalid = yaml.replace("dependencies: [", "dependencies: [nowhere, ");
    let invalid = problem(post_yaml(invalid).await?, StatusCode::UNPROCESSABLE_ENTITY).await?;
    ensure!(
        invalid["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|e| e["pointer"]
                .as_str()
                .is_some_and(|p| p.starts_with("/steps/")))),
        "located problems: {invalid}"
    );
    let started = std::time::Instant::now();
    let deep = problem(
        post_yaml("[".repeat(100_000)).await?,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await?;
    ensure!(
        deep["detail"]
            .as_str()
            .is_some_and(|d| d.contains("max_flow_depth")),
        "{deep}"
    );
    println!("100,000 nested [ refused in {:?}", started.elapsed());

    // Tasks: created (201), the same request again is the same task (200).
    let post = |body: Value| client.post(api.url("/v1/tasks")).json(&body).send();
    let first = post(linear(7)).await?;
    ensure!(
        first.status() == StatusCode::CREATED,
        "{}",
        first.text().await?
    );
    let first: Value = first.json().await?;
    let duplicate = post(linear(7)).await?;
    ensure!(duplicate.status() == StatusCode::OK);
    let duplicate: Value = duplicate.json().await?;
    ensure!(duplicate["task_uuid"] == first["task_uuid"] && duplicate["existing"] == true);

    // An invalid request: every problem with its JSON pointer.
    let invalid = json!({
        "namespace": "reference",
        "name": "linear",
        "version": "1.0.0",
        "context": {"value": "seven"},
        "priority": 1000,
        "tags": [""],
    });
    let invalid = problem(post(invalid).await?, StatusCode::UNPROCESSABLE_ENTITY).await?;
    let pointers: HashSet<&str> = invalid["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    ensure!(
        pointers.contains("/priority") && pointers.contains("/tags/0"),
        "pointers: {invalid}"
    );
    let schema = json!({"namespace": "reference", "name": "linear", "version": "1.0.0", "context": {"value": "seven"}});
    let schema = problem(post(schema).await?, StatusCode::UNPROCESSABLE_ENTITY).await?;
    ensure!(
        schema["errors"][0]["pointer"]
            .as_str()
            .is_some_and(|p| p.starts_with("/context")),
        "input_schema violations are located under /context: {schema}"
    );

    // Read: the task, its steps and its execution status, once it is started.
    let task_uuid = first["task_uuid"].as_str().context("task_uuid")?.to_owned();
    let task = wait_for_steps(&api, &task_uuid).await?;
    ensure!(task["task"]["name"] == "linear");
    ensure!(task["execution"]["status"].is_string(), "{task}");
    let missing = client
        .get(api.url(&format!("/v1/tasks/{}", uuid::Uuid::now_v7())))
        .send()
        .await?;
    problem(missing, StatusCode::NOT_FOUND).await?;

    // Cancel, then 409; the audit trail shows it.
    let cancelled = client
        .delete(api.url(&format!("/v1/tasks/{task_uuid}")))
        .send()
        .await?;
    ensure!(
        cancelled.status() == StatusCode::OK,
        "{}",
        cancelled.text().await?
    );
    let again = client
        .delete(api.url(&format!("/v1/tasks/{task_uuid}")))
        .send()
        .await?;
    problem(again, StatusCode::CONFLICT).await?;
    let trail: Value = client
        .get(api.url(&format!("/v1/tasks/{task_uuid}/transitions")))
        .send()
        .await?
        .json()
        .await?;
    let states: Vec<&str> = trail["transitions"]
        .as_array()
        .context("transitions")?
        .iter()
        .filter_map(|t| t["to_state"].as_str())
        .collect();
    ensure!(
        states.first() == Some(&"pending") && states.last() == Some(&"cancelled"),
        "{states:?}"
    );
    ensure!(
        trail["steps"]
            .as_array()
            .is_some_and(|steps| !steps.is_empty()),
        "step trails: {trail}"
    );

    paginate_under_inserts(&api).await
}

/// Waits (up to 30 s) until the task has steps, and returns it.
async fn wait_for_steps(api: &Api, task_uuid: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let task: Value = api
            .client
            .get(api.url(&format!("/v1/tasks/{task_uuid}")))
            .send()
            .await?
            .json()
            .await?;
        if task["steps"]
            .as_array()
            .is_some_and(|steps| !steps.is_empty())
            && task["task"]["state"] != "pending"
        {
            return Ok(task);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the task was not started within 30 s: {task}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 40 tasks exist; the list is read 7 at a time while 40 more are created: no task is seen
/// twice, and none of the first 40 is skipped.
async fn paginate_under_inserts(api: &Api) -> anyhow::Result<()> {
    let mut before = HashSet::new();
    for value in 1000..1040 {
        let created: Value = api
            .client
            .post(api.url("/v1/tasks"))
            .json(&linear(value))
            .send()
            .await?
            .json()
            .await?;
        before.insert(created["task_uuid"].as_str().context("uuid")?.to_owned());
    }
    let inserter = {
        let client = api.client.clone();
        let url = api.url("/v1/tasks");
        tokio::spawn(async move {
            for value in 2000..2040 {
                let response = client.post(&url).json(&linear(value)).send().await?;
                ensure!(response.status() == StatusCode::CREATED);
            }
            anyhow::Ok(())
        })
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = api.url("/v1/tasks?namespace=reference&limit=7");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = api.client.get(&url).send().await?.json().await?;
        for task in page["tasks"].as_array().context("tasks")? {
            seen.push(task["task_uuid"].as_str().context("uuid")?.to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    inserter.await??;
    let unique: HashSet<_> = seen.iter().cloned().collect();
    ensure!(unique.len() == seen.len(), "a task was listed twice");
    let skipped: Vec<_> = before.difference(&unique).collect();
    ensure!(skipped.is_empty(), "tasks skipped: {skipped:?}");
    Ok(())
}
