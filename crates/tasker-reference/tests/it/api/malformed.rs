//! Malformed requests generated from the served OpenAPI document: for every route, bad path
//! parameters, bad query parameters and bad bodies (wrong types, huge, deeply nested, invalid
//! UTF-8, NUL, wrong media types). Every answer is below 500, and every error is a problem
//! document.

use anyhow::{Context as _, ensure};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Api, register_linear};
use crate::deployment::{Backend, Deployment};

/// Path segments that are not what a route expects (percent-encoded where needed).
fn bad_segments() -> Vec<String> {
    vec![
        "not-a-uuid".to_owned(),
        "%FF%FE".to_owned(),
        "%00".to_owned(),
        "x".repeat(3000),
        "..".to_owned(),
        "%2F".to_owned(),
        "1e309".to_owned(),
        "-1".to_owned(),
        "null".to_owned(),
        "%E2%80%AE".to_owned(),
        "00000000-0000-0000-0000-000000000000".to_owned(),
        "Reference".to_owned(),
    ]
}

/// Query values that are not what a parameter expects.
fn bad_values() -> Vec<String> {
    vec![
        "-1".to_owned(),
        "0".to_owned(),
        "abc".to_owned(),
        "99999999999999999999".to_owned(),
        "%FF".to_owned(),
        "%00".to_owned(),
        "%2B262143-01-01T00:00:00Z".to_owned(),
        "-262143-01-01T00:00:00Z".to_owned(),
        "2024-13-45".to_owned(),
        String::new(),
        "x".repeat(3000),
        "true,false".to_owned(),
        "pending,bogus".to_owned(),
        "00".to_owned(),
    ]
}

/// Bodies that are not what a route takes: (content type, bytes).
fn bad_bodies(schema_properties: &[String]) -> Vec<(String, Vec<u8>)> {
    let json = |value: Value| {
        (
            "application/json".to_owned(),
            value.to_string().into_bytes(),
        )
    };
    let mut bodies = vec![
        ("application/json".to_owned(), b"{".to_vec()),
        ("application/json".to_owned(), Vec::new()),
        json(json!([])),
        json(json!(null)),
        json(json!("text")),
        json(json!({"name": 5})),
        json(json!({"unknown": true})),
        (
            "application/json".to_owned(),
            "[".repeat(100_000).into_bytes(),
        ),
        (
            "application/json".to_owned(),
            format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
        ),
        (
            "application/json".to_owned(),
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
        ),
        (
            "application/json".to_owned(),
            br#"{"name": "a\u0000b", "namespace": "reference", "version": "1.0.0"}"#.to_vec(),
        ),
        ("application/json".to_owned(), vec![b' '; 2 * 1024 * 1024]),
        ("text/plain".to_owned(), b"hello".to_vec()),
        (
            "application/x-www-form-urlencoded".to_owned(),
            b"a=b".to_vec(),
        ),
        (String::new(), b"{}".to_vec()),
        (
            "application/yaml".to_owned(),
            "[".repeat(100_000).into_bytes(),
        ),
        ("application/yaml".to_owned(), b"\xff\xfe: x".to_vec()),
        ("application/yaml".to_owned(), b"a: [1, 2".to_vec()),
        (
            "application/yaml".to_owned(),
            b"name: \"a\\0b\"\nnamespace_name: reference\nversion: 1.0.0\nsteps: []\n".to_vec(),
        ),
        ("application/yaml".to_owned(), b"- a\n- b\n".to_vec()),
        json(json!({
            "name": "linear", "namespace": "reference", "version": "1.0.0",
            "context": {"value": 1e300}, "priority": 2147483647,
            "requested_at": "+262143-01-01T00:00:00Z",
        })),
        json(json!({
            "name": "linear", "namespace": "reference", "version": "1.0.0",
            "idempotency_key": "x".repeat(10_000), "tags": vec!["t"; 10_000],
        })),
    ];
    // Every documented property with each wrong type.
    let wrong = [
        json!(null),
        json!(true),
        json!(-1),
        json!("x"),
        json!([]),
        json!({}),
        json!(1e300),
    ];
    for property in schema_properties {
        for value in &wrong {
            let mut body = json!({"name": "linear", "namespace": "reference", "version": "1.0.0"});
            body[property.as_str()] = value.clone();
            bodies.push(json(body));
        }
    }
    bodies
}

/// A valid value for a path parameter.
fn good_segment(name: &str) -> String {
    match name {
        "namespace" => "reference".to_owned(),
        "name" => "linear".to_owned(),
        "version" => "1.0.0".to_owned(),
        _ => uuid::Uuid::now_v7().to_string(),
    }
}

struct Case {
    method: Method,
    path: String,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
    what: String,
}

/// The cases for one operation of the document.
fn cases(
    path: &str,
    method: &str,
    operation: &Value,
    properties: &[String],
) -> anyhow::Result<Vec<Case>> {
    let method = Method::from_bytes(method.to_uppercase().as_bytes())?;
    let parameters = operation["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let path_params: Vec<String> = parameters
        .iter()
        .filter(|p| p["in"] == "path")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let query_params: Vec<String> = parameters
        .iter()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let fill = |bad: Option<(&str, &str)>| {
        let mut filled = path.to_owned();
        for name in &path_params {
            let value = match bad {
                Some((which, value)) if which == name => value.to_owned(),
                _ => good_segment(name),
            };
            filled = filled.replace(&format!("{{{name}}}"), &value);
        }
        filled
    };
    let mut out = Vec::new();
    let case = |path: String, what: String| Case {
        method: method.clone(),
        path,
        content_type: None,
        body: None,
        what,
    };
    for name in &path_params {
        for segment in bad_segments() {
            out.push(case(
                fill(Some((name, &segment))),
                format!("path {name}={segment:.40}"),
            ));
        }
    }
    let mut queries: Vec<String> = vec!["zzz=1".to_owned(), "%FF=1".to_owned(), "&&&=".to_owned()];
    for name in &query_params {
        for value in bad_values() {
            queries.push(format!("{name}={value}"));
        }
        queries.push(format!("{name}=1&{name}=2"));
    }
    for query in queries {
        out.push(case(
            format!("{}?{query}", fill(None)),
            format!("query {query:.60}"),
        ));
    }
    if operation.get("requestBody").is_some() {
        for (content_type, body) in bad_bodies(properties) {
            let what = format!(
                "body {content_type} {:.60}",
                String::from_utf8_lossy(&body[..body.len().min(60)])
            );
            out.push(Case {
                method: method.clone(),
                path: fill(None),
                content_type: (!content_type.is_empty()).then_some(content_type),
                body: Some(body),
                what,
            });
        }
    }
    Ok(out)
}

#[tokio::test]
async fn malformed_requests_from_the_openapi_document_get_4xx_problems() -> anyhow::Result<()> {
    let deployment = Deployment::new(Backend::Pgmq).await?;
    let outcome = async {
        let api = Api::start(&deployment, &[])?;
        register_linear(&api, &[]).await?;
        run(&api).await
    }
    .await;
    let finished = deployment.finish().await;
    outcome.and(finished)
}

async fn run(api: &Api) -> anyhow::Result<()> {
    let document: Value = api
        .client
        .get(api.url("/api-docs/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let properties: Vec<String> = document["components"]["schemas"]["TaskRequest"]["properties"]
        .as_object()
        .context("the TaskRequest schema")?
        .keys()
        .cloned()
        .collect();
    // A fresh connection per request: the server closes a connection whose body it refused
    // unread (413), and a pooled client could race it by reusing that connection.
    super::client();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut failures = Vec::new();
    let mut count = 0;
    for (path, item) in document["paths"].as_object().context("paths")? {
        for (method, operation) in item.as_object().context("a path item")? {
            for case in cases(path, method, operation, &properties)? {
                count += 1;
                let mut request = client.request(case.method.clone(), api.url(&case.path));
                if let Some(content_type) = &case.content_type {
                    request = request.header("content-type", content_type);
                }
                if let Some(body) = case.body {
                    request = request.body(body);
                }
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(error) => {
                        failures.push(format!(
                            "{} {} ({}): no answer: {error}",
                            case.method, path, case.what
                        ));
                        continue;
                    }
                };
                let status = response.status();
                let content_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if status.is_server_error() {
                    let body = response.text().await.unwrap_or_default();
                    failures.push(format!(
                        "{} {} ({}): {status} {body:.200}",
                        case.method, path, case.what
                    ));
                } else if status.is_client_error() && content_type != "application/problem+json" {
                    failures.push(format!(
                        "{} {} ({}): {status} as {content_type}, not a problem",
                        case.method, path, case.what
                    ));
                }
            }
        }
    }
    // The server is still well after all of it.
    let live = api.client.get(api.url("/health/ready")).send().await?;
    ensure!(live.status() == StatusCode::OK, "ready after the suite");
    println!("{count} malformed requests, {} failures", failures.len());
    ensure!(
        failures.is_empty(),
        "{} of {count} requests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
