//! Extractors whose every rejection is a problem document: a path, a query or a JSON body that
//! cannot be read is a 400 (or 413, 415, 422) naming what is wrong, never a 5xx and never an
//! internal message.
//!
//! A JSON body is scanned before it is parsed: nesting deeper than [`MAX_JSON_DEPTH`] is
//! refused in one linear pass (serde_json would recurse up to its own limit of 128 first), and
//! so is a `\u0000` escape, which PostgreSQL cannot store in text or `jsonb`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use tasker_web::problem::{FieldProblem, Problem, ProblemKind};

/// The deepest nesting of arrays and objects accepted in a JSON body.
pub const MAX_JSON_DEPTH: usize = 64;

/// A path's parameters, or a 400.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(_) => Err(Problem::new(
                ProblemKind::BadRequest,
                "The path's parameters cannot be read (they must be UTF-8 text).",
            )),
        }
    }
}

/// A query string's parameters, or a 400 naming the first one at fault.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(value) => Ok(Self(value)),
            Err(error) => {
                let name = error.path().to_string();
                let detail = error.into_inner().to_string();
                Err(Problem::new(
                    ProblemKind::BadRequest,
                    format!("The query string is invalid: {detail}"),
                )
                .with_errors(vec![FieldProblem {
                    pointer: name,
                    detail,
                }]))
            }
        }
    }
}

/// A JSON body (`application/json` or `application/*+json`), or a problem: 415 for another
/// media type, 413 past the body limit, 400 for text that is not JSON (or nests too deep, or
/// holds a NUL), 422 for JSON of the wrong shape, located by a JSON pointer.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(Problem::new(
                ProblemKind::UnsupportedMediaType,
                "Send the body as `application/json`.",
            ));
        }
        let bytes = body(request, state).await?;
        parse_json(&bytes).map(Self)
    }
}

/// The body's bytes, or the problem of the body limit (413) or of a body that broke off.
pub(crate) async fn body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Problem> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            let kind = ProblemKind::for_status(rejection.status());
            let detail = match kind {
                ProblemKind::PayloadTooLarge => {
                    "The request body is larger than the server accepts."
                }
                _ => "The request body could not be read.",
            };
            Problem::new(kind, detail)
        })
}

/// Whether the content type is JSON.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|media| {
        media == "application/json"
            || (media.starts_with("application/") && media.ends_with("+json"))
    })
}

/// The content type's media type, lowercase, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    (!media.is_empty()).then_some(media)
}

/// Parses a JSON body into `T` after the depth and NUL scan.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    scan(bytes)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut deserializer)
        .map_err(|error| json_problem(error.path().to_string(), error.into_inner()))?;
    deserializer
        .end()
        .map_err(|error| json_problem(String::new(), error))?;
    Ok(value)
}

fn json_problem(path: String, error: serde_json::Error) -> Problem {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            let pointer = pointer_of(&path);
            let detail = strip_position(&error.to_string());
            Problem::new(
                ProblemKind::Validation,
                format!("The request body has the wrong shape at `{pointer}`: {detail}"),
            )
            .with_errors(vec![FieldProblem { pointer, detail }])
        }
        Category::Syntax | Category::Eof | Category::Io => Problem::new(
            ProblemKind::BadRequest,
            format!("The request body is not valid JSON: {error}"),
        ),
    }
}

/// serde_path_to_error's path (`context.items[0]`, `.` for the root) as a JSON pointer.
pub(crate) fn pointer_of(path: &str) -> String {
    if path == "." || path.is_empty() {
        return String::new();
    }
    let mut pointer = String::new();
    for segment in path.split('.') {
        let mut rest = segment;
        // `items[0][1]`: a key, then indexes.
        let key_end = rest.find('[').unwrap_or(rest.len());
        let (key, indexes) = rest.split_at(key_end);
        if !key.is_empty() {
            pointer.push('/');
            pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        }
        rest = indexes;
        while let Some(open) = rest.find('[') {
            let close = rest[open..].find(']').map_or(rest.len(), |i| open + i);
            pointer.push('/');
            pointer.push_str(&rest[open + 1..close]);
            rest = rest.get(close + 1..).unwrap_or("");
        }
    }
    pointer
}

/// serde_json's message without its ` at line 1 column 17` suffix.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Why a body was refused by the scan.
fn scan(bytes: &[u8]) -> Result<(), Problem> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if in_string {
            match byte {
                b'\\' => {
                    if bytes.get(index + 1) == Some(&b'u')
                        && bytes.get(index + 2..index + 6) == Some(b"0000".as_slice())
                    {
                        return Err(Problem::new(
                            ProblemKind::BadRequest,
                            "The request body holds a NUL character (`\\u0000`), which cannot be stored.",
                        ));
                    }
                    index += 1;
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_JSON_DEPTH {
                        return Err(Problem::new(
                            ProblemKind::BadRequest,
                            format!(
                                "The request body is nested more than {MAX_JSON_DEPTH} levels deep."
                            ),
                        ));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        index += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
