//! Service URLs (`postgres://`, `amqp://`, `redis://` ...) that redact their credentials.
//!
//! The parser is deliberately permissive about host forms, because libpq and friends accept
//! more than WHATWG URLs do: unix-socket hosts (`postgresql:///db?host=/run/postgresql`,
//! `postgresql://%2Frun%2Fpostgresql/db`), multi-host lists (`postgresql://a:5432,b:5433/db`),
//! IPv6 literals (`redis://[::1]:6379`). It checks what matters for a configuration file:
//! the scheme is allowed, the authority is well formed (brackets balance, ports are numbers),
//! percent-escapes are valid and there is no whitespace. Redaction never depends on the URL
//! being valid, so a malformed URL in an error message is redacted too.

use std::{fmt, ops::Range};

use crate::{
    problem::ProblemKind,
    schema::{Secrecy, Setting, Shape, reject},
    validate::Validator,
};

/// Why a URL was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://` prefix.
    #[error("missing `scheme://` prefix")]
    MissingScheme,
    /// A scheme that this setting does not accept.
    #[error("scheme `{found}` is not allowed here")]
    Scheme {
        /// The scheme found.
        found: String,
        /// The schemes accepted by this setting.
        allowed: &'static [&'static str],
    },
    /// No host, for a scheme that needs one.
    #[error("missing host")]
    MissingHost,
    /// A port that is not a number from 0 to 65535.
    #[error("invalid port `{port}`")]
    InvalidPort {
        /// The port text.
        port: String,
    },
    /// An IPv6 literal without its closing bracket, or a stray bracket.
    #[error("unbalanced `[` `]` in host")]
    UnbalancedBracket,
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-escape")]
    InvalidPercentEscape,
    /// Whitespace or a control character.
    #[error("contains whitespace or a control character")]
    ForbiddenCharacter,
}

/// Query parameters whose values are credentials.
const SECRET_PARAMS: &[&str] = &[
    "password",
    "sslpassword",
    "pass",
    "secret",
    "token",
    "access_token",
    "api_key",
    "apikey",
    "auth",
];

/// The mask that replaces a credential.
pub(crate) const MASK: &str = "***";

/// Byte ranges of credentials in `text`: the password of the user info and the values of
/// credential-like query parameters. Works on any text, valid URL or not.
fn secret_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let start = text.find("://").map_or(0, |i| i + 3);
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    if let Some(at) = text[start..authority_end].rfind('@') {
        let userinfo = start..start + at;
        if let Some(colon) = text[userinfo.clone()].find(':') {
            let password = userinfo.start + colon + 1..userinfo.end;
            if !password.is_empty() {
                ranges.push(password);
            }
        }
    }
    // Credential-like `key=value` pairs anywhere (query strings and libpq keyword strings).
    let lower = text.to_ascii_lowercase();
    let mut search = 0;
    while let Some(eq) = lower[search..].find('=').map(|i| search + i) {
        let key_start = lower[..eq].rfind(['?', '&', ' ', ';']).map_or(0, |i| i + 1);
        let key = &lower[key_start..eq];
        let value_end = lower[eq + 1..]
            .find(['&', ' ', '#', ';'])
            .map_or(text.len(), |i| eq + 1 + i);
        if SECRET_PARAMS.contains(&key) && value_end > eq + 1 {
            ranges.push(eq + 1..value_end);
        }
        search = eq + 1;
    }
    ranges.sort_by_key(|r| r.start);
    ranges
}

/// `text` with every credential replaced by `***`.
pub(crate) fn redact_url_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for range in secret_ranges(text) {
        if range.start < last {
            continue;
        }
        out.push_str(&text[last..range.start]);
        out.push_str(MASK);
        last = range.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Checks `text` against the URL rules for a setting that accepts `allowed` schemes, of
/// which `hostless` may omit the host (unix sockets).
pub(crate) fn check_url(
    text: &str,
    allowed: &'static [&'static str],
    hostless: &[&str],
) -> Result<(), UrlError> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::ForbiddenCharacter);
    }
    let Some(scheme_end) = text.find("://") else {
        return Err(UrlError::MissingScheme);
    };
    let scheme = &text[..scheme_end];
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(UrlError::MissingScheme);
    }
    let scheme = scheme.to_ascii_lowercase();
    if !allowed.contains(&scheme.as_str()) {
        return Err(UrlError::Scheme {
            found: scheme,
            allowed,
        });
    }
    check_percent_escapes(text)?;
    let rest = &text[scheme_end + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let hosts = authority
        .rfind('@')
        .map_or(authority, |at| &authority[at + 1..]);
    if hosts.is_empty() {
        return if hostless.contains(&scheme.as_str()) {
            Ok(())
        } else {
            Err(UrlError::MissingHost)
        };
    }
    hosts.split(',').try_for_each(check_host)
}

fn check_percent_escapes(text: &str) -> Result<(), UrlError> {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('%') {
        let valid = bytes
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if !valid {
            return Err(UrlError::InvalidPercentEscape);
        }
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), UrlError> {
    let (name, port) = if let Some(inner) = host.strip_prefix('[') {
        let close = inner.find(']').ok_or(UrlError::UnbalancedBracket)?;
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(UrlError::UnbalancedBracket),
        };
        (&inner[..close], port)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if name.contains(['[', ']']) {
        return Err(UrlError::UnbalancedBracket);
    }
    if name.is_empty() {
        return Err(UrlError::MissingHost);
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| p <= 65535);
        if !valid {
            return Err(UrlError::InvalidPort {
                port: port.to_owned(),
            });
        }
    }
    Ok(())
}

macro_rules! url_type {
    (
        $(#[doc = $doc:literal])*
        $name:ident, schemes = [$($scheme:literal),*], hostless = [$($hostless:literal),*]
    ) => {
        $(#[doc = $doc])*
        ///
        /// `Debug` and `Display` mask the password and credential-like query parameters;
        /// [`Self::expose`] returns the full URL for the one place that connects.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The schemes this URL accepts.
            pub const SCHEMES: &'static [&'static str] = &[$($scheme),*];
            const HOSTLESS: &'static [&'static str] = &[$($hostless),*];

            /// Parses and checks a URL.
            pub fn parse(text: &str) -> Result<Self, UrlError> {
                check_url(text, Self::SCHEMES, Self::HOSTLESS)?;
                Ok(Self(text.to_owned()))
            }

            /// The full URL, credentials included. Pass it to the client library only.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// The scheme, lowercased.
            pub fn scheme(&self) -> String {
                self.0[..self.0.find("://").unwrap_or(0)].to_ascii_lowercase()
            }

            /// The URL with credentials masked.
            pub fn redacted(&self) -> String {
                redact_url_text(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.redacted()).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.redacted())
            }
        }

        impl Setting for $name {
            type Raw = String;
            const SHAPE: Shape = Shape::String;
            const SECRECY: Secrecy = Secrecy::Url;

            fn type_name() -> String {
                "URL".to_owned()
            }

            fn constraint() -> Option<String> {
                let schemes: Vec<String> = Self::SCHEMES.iter().map(|s| format!("`{s}://`")).collect();
                Some(format!("scheme {}", schemes.join(", ")))
            }

            fn validate<'r>(raw: &'r String, v: &mut Validator<'r>) -> Option<Self> {
                match Self::parse(raw) {
                    Ok(url) => Some(url),
                    Err(err) => reject(v, ProblemKind::InvalidUrl(err)),
                }
            }
        }
    };
}

url_type! {
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`), including unix-socket
    /// and multi-host forms.
    DatabaseUrl, schemes = ["postgres", "postgresql"], hostless = ["postgres", "postgresql"]
}

url_type! {
    /// A RabbitMQ (AMQP 0.9.1) URL: `amqp://` or `amqps://`.
    AmqpUrl, schemes = ["amqp", "amqps"], hostless = []
}

url_type! {
    /// A Redis URL: `redis://`, `rediss://` (TLS), or a unix socket (`redis+unix://`, `unix://`).
    RedisUrl, schemes = ["redis", "rediss", "redis+unix", "unix"], hostless = ["redis+unix", "unix"]
}

url_type! {
    /// A memcached URL: `tcp://host:port`, `memcache://host:port` or `unix:///path`.
    MemcachedUrl, schemes = ["tcp", "memcache", "unix"], hostless = ["unix"]
}

url_type! {
    /// An HTTP(S) URL, e.g. a JWKS endpoint, the orchestration API or an OTLP collector.
    HttpUrl, schemes = ["http", "https"], hostless = []
}
