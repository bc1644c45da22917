//! Authentication on the real server: an API key per permission set, a JWT signed by a test
//! key, a key differing in its last byte, no credential, and a permission missing.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, ensure};
use reqwest::StatusCode;
use serde_json::json;

use super::{Api, linear, problem, register_linear};
use crate::deployment::{Backend, Deployment};

const RSA_PRIVATE: &str = include_str!("../keys/rsa.pem");
const RSA_PUBLIC: &str = include_str!("../keys/rsa.pub.pem");
const CREATOR_KEY: &str = "creator-0123456789abcdef0123456789abcdef";
const READER_KEY: &str = "reader-0123456789abcdef0123456789abcdef";

/// A copy of the shipped configuration whose test environment enables authentication: the
/// test public key and two API keys.
fn config_root(dir: &Path) -> anyhow::Result<PathBuf> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tasker");
    copy_dir(&shipped, dir)?;
    let file = dir.join("environments/test/orchestration.toml");
    let mut text = std::fs::read_to_string(&file)?;
    text.push_str(&format!(
        r#"
[orchestration.web.auth]
enabled = true
jwt_public_key = """{RSA_PUBLIC}"""
api_keys_enabled = true

[[orchestration.web.auth.api_keys]]
key = "{CREATOR_KEY}"
permissions = ["tasks:create", "templates:*"]
description = "creator"

[[orchestration.web.auth.api_keys]]
key = "{READER_KEY}"
permissions = ["tasks:read", "tasks:list"]
description = "reader"
"#
    ));
    std::fs::write(&file, text)?;
    Ok(dir.to_owned())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn token(permissions: &[&str], expires_in: i64) -> anyhow::Result<String> {
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
    let claims = json!({
        "sub": "alice",
        "iss": "tasker-core",
        "aud": "tasker-api",
        "iat": now,
        "exp": now + expires_in,
        "permissions": permissions,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes())?;
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )?)
}

#[tokio::test]
async fn api_keys_and_jwts_authenticate_and_permissions_are_enforced() -> anyhow::Result<()> {
    let deployment = Deployment::new(Backend::Pgmq).await?;
    let dir = std::env::temp_dir().join(format!("tasker-api-auth-{}", deployment.database()));
    let outcome = async {
        let root = config_root(&dir)?;
        let api = Api::start(
            &deployment,
            &[("TASKER_CONFIG_ROOT", root.display().to_string())],
        )?;
        check(&api).await?;
        submit_with_a_key(&deployment, &api, &root).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let finished = deployment.finish().await;
    outcome.and(finished)
}

async fn check(api: &Api) -> anyhow::Result<()> {
    let client = &api.client;
    let tasks = api.url("/v1/tasks");

    // Public routes need nothing; the others need a credential (401 with a challenge).
    ensure!(client.get(api.url("/health/live")).send().await?.status() == StatusCode::OK);
    let anonymous = client.get(&tasks).send().await?;
    ensure!(
        anonymous.headers().contains_key("www-authenticate"),
        "401 carries WWW-Authenticate"
    );
    problem(anonymous, StatusCode::UNAUTHORIZED).await?;

    // The creator key registers and creates, and may not list.
    let creator = [("x-api-key", CREATOR_KEY.to_owned())];
    register_linear(api, &creator).await?;
    let created = client
        .post(&tasks)
        .header("x-api-key", CREATOR_KEY)
        .json(&linear(3))
        .send()
        .await?;
    ensure!(
        created.status() == StatusCode::CREATED,
        "{}",
        created.text().await?
    );
    let denied = client
        .get(&tasks)
        .header("x-api-key", CREATOR_KEY)
        .send()
        .await?;
    let denied = problem(denied, StatusCode::FORBIDDEN).await?;
    ensure!(
        denied["detail"]
            .as_str()
            .is_some_and(|d| d.contains("tasks:list")),
        "{denied}"
    );

    // The reader key lists, and may not create; a key differing in its last byte is refused.
    let listed = client
        .get(&tasks)
        .header("x-api-key", READER_KEY)
        .send()
        .await?;
    ensure!(listed.status() == StatusCode::OK);
    let refused = client
        .post(&tasks)
        .header("x-api-key", READER_KEY)
        .json(&linear(4))
        .send()
        .await?;
    problem(refused, StatusCode::FORBIDDEN).await?;
    let mut near = READER_KEY.to_owned();
    near.pop();
    near.push('g');
    let near = client.get(&tasks).header("x-api-key", near).send().await?;
    problem(near, StatusCode::UNAUTHORIZED).await?;

    // A JWT signed by the configured key, with its permissions; an expired one is refused.
    let bearer = token(&["tasks:list"], 600)?;
    let listed = client.get(&tasks).bearer_auth(&bearer).send().await?;
    ensure!(
        listed.status() == StatusCode::OK,
        "{}",
        listed.text().await?
    );
    let refused = client
        .post(&tasks)
        .bearer_auth(&bearer)
        .json(&linear(5))
        .send()
        .await?;
    problem(refused, StatusCode::FORBIDDEN).await?;
    let expired = token(&["tasks:list"], -3600)?;
    let expired = client.get(&tasks).bearer_auth(expired).send().await?;
    problem(expired, StatusCode::UNAUTHORIZED).await?;
    let wildcard = token(&["tasks:*"], 600)?;
    let created = client
        .post(&tasks)
        .bearer_auth(wildcard)
        .json(&linear(6))
        .send()
        .await?;
    ensure!(
        created.status() == StatusCode::CREATED,
        "{}",
        created.text().await?
    );
    Ok(())
}

/// `submit --api http` authenticates with the API key from its environment.
async fn submit_with_a_key(deployment: &Deployment, api: &Api, root: &Path) -> anyhow::Result<()> {
    // submit cycles through every reference template: register them all through the API.
    for name in [
        "diamond",
        "linear",
        "mixed_dag",
        "permanent_failure",
        "retry_once",
        "tree",
    ] {
        let response = api
            .client
            .post(api.url("/v1/templates"))
            .header("x-api-key", CREATOR_KEY)
            .header("content-type", "application/yaml")
            .body(super::template_yaml(name)?)
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "registering {name}: {}",
            response.status()
        );
    }
    let env = [
        ("TASKER_CONFIG_ROOT", root.display().to_string()),
        ("TASKER_API_KEY", CREATOR_KEY.to_owned()),
    ];
    let args = [
        "submit",
        "--api",
        "http",
        "--api-url",
        api.base.as_str(),
        "--tasks",
        "3",
    ];
    let mut submit = deployment.spawn_with("submit", &args, uuid::Uuid::now_v7(), &env)?;
    let status = submit.wait(std::time::Duration::from_secs(60))?;
    let output = submit.output.join("\n");
    ensure!(
        status.success(),
        "submit --api http failed ({status}): {output}"
    );
    ensure!(output.contains("sent 3 task request(s)"), "{output}");
    // Without a credential the API refuses it, and submit says so.
    let env = [("TASKER_CONFIG_ROOT", root.display().to_string())];
    let mut refused = deployment.spawn_with("submit", &args, uuid::Uuid::now_v7(), &env)?;
    let status = refused.wait(std::time::Duration::from_secs(60))?;
    ensure!(!status.success(), "submit without a credential must fail");
    Ok(())
}
