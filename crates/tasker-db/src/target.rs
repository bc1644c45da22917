//! A password-free description of which database a URL points at, for errors and logs.

use std::fmt;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

/// Where a connection goes: host, port and database, never the user's password.
///
/// Errors and log lines name the target with this type so that a failure says which server and
/// database were involved without leaking credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseTarget {
    /// Host name, IP address or Unix socket directory.
    pub host: String,
    /// TCP port (also the socket file suffix for Unix sockets).
    pub port: u16,
    /// Database name; PostgreSQL defaults it to the user name when the URL has none.
    pub database: String,
}

impl DatabaseTarget {
    /// Describes the target of already parsed connect options.
    pub fn from_options(options: &PgConnectOptions) -> Self {
        Self {
            host: options.get_host().to_owned(),
            port: options.get_port(),
            database: options
                .get_database()
                .unwrap_or_else(|| options.get_username())
                .to_owned(),
        }
    }
}

impl fmt::Display for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database `{}` on {}:{}",
            self.database, self.host, self.port
        )
    }
}

/// A PostgreSQL URL that was rejected, with the reason and a password-free rendering of it.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid PostgreSQL URL `{redacted}`: {reason} (expected postgres://user[:password]@host[:port]/database)"
)]
pub struct InvalidUrl {
    /// The URL with any password replaced by `***`.
    pub redacted: String,
    /// What is wrong with it.
    pub reason: String,
    #[source]
    source: Option<sqlx::Error>,
}

/// Parses a PostgreSQL URL into connect options, without echoing a password in the error.
pub fn parse_url(url: &str) -> Result<PgConnectOptions, InvalidUrl> {
    let redacted = redact_url(url);
    let parsed = url::Url::parse(url).map_err(|err| InvalidUrl {
        redacted: redacted.clone(),
        reason: err.to_string(),
        source: None,
    })?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(InvalidUrl {
            redacted,
            reason: format!("unsupported scheme `{}`", parsed.scheme()),
            source: None,
        });
    }
    PgConnectOptions::from_str(url).map_err(|err| InvalidUrl {
        redacted,
        reason: "sqlx could not interpret it".to_owned(),
        source: Some(err),
    })
}

/// Renders a URL with its password replaced by `***`. Unparseable input is summarised by its
/// scheme only, because it might contain a password in a place a parser cannot find.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Setting a password only fails for URLs that cannot have one.
                let _ = parsed.set_password(Some("***"));
            }
            // Query parameters may carry a password too (`?password=...`).
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(key, value)| {
                    let value = if key.eq_ignore_ascii_case("password") {
                        "***".to_owned()
                    } else {
                        value.into_owned()
                    };
                    (key.into_owned(), value)
                })
                .collect();
            if !pairs.is_empty() {
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}://…")
            }
            _ => "<unparseable>".to_owned(),
        },
    }
}

/// Replaces the URL's password, wherever it occurs in `text`, with `***`: a last line of
/// defence for messages that embed driver or server text.
pub fn scrub_password(text: &str, url: &str) -> String {
    let password = url::Url::parse(url)
        .ok()
        .and_then(|parsed| parsed.password().map(str::to_owned))
        .filter(|password| !password.is_empty());
    match password {
        Some(password) => {
            let decoded = url::form_urlencoded::parse(format!("p={password}").as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            let scrubbed = text.replace(&password, "***");
            if decoded.is_empty() {
                scrubbed
            } else {
                scrubbed.replace(&decoded, "***")
            }
        }
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
