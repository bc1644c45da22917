//! Tests of URL checking and redaction.

use super::{
    AmqpUrl, DatabaseUrl, HttpUrl, MemcachedUrl, RedisUrl, Secret, UrlError, redact_url_text,
};

#[test]
fn accepted_url_forms() {
    let database = [
        "postgres://localhost/tasker",
        "postgresql://tasker:pa%40ss@db.internal:5432/tasker?sslmode=require",
        "postgresql:///tasker?host=/var/run/postgresql",
        "postgresql://%2Fvar%2Frun%2Fpostgresql/tasker",
        "postgresql://user:secret@/tasker?host=/tmp",
        "postgresql://user:secret@[::1]:5432/tasker",
        "postgresql://[2001:db8::1]/tasker",
        "postgresql://host-a:5432,host-b:5433/tasker?target_session_attrs=read-write",
        "POSTGRES://localhost/tasker",
    ];
    for url in database {
        assert_eq!(
            DatabaseUrl::parse(url).map(|u| u.expose().to_owned()),
            Ok(url.to_owned())
        );
    }
    for url in [
        "amqp://guest:guest@localhost:5672/%2F",
        "amqps://u:p@mq.internal/vhost",
        "amqp://[::1]",
    ] {
        assert!(AmqpUrl::parse(url).is_ok(), "{url}");
    }
    for url in [
        "redis://localhost:6379",
        "redis://:password@[::1]:6379/0",
        "rediss://user:pass@cache.internal:6380/2",
        "redis+unix:///run/redis.sock?db=1",
        "unix:///run/redis.sock",
    ] {
        assert!(RedisUrl::parse(url).is_ok(), "{url}");
    }
    for url in [
        "tcp://localhost:11211",
        "memcache://cache:11211",
        "unix:///run/memcached.sock",
    ] {
        assert!(MemcachedUrl::parse(url).is_ok(), "{url}");
    }
    for url in [
        "http://localhost:4317",
        "https://auth.example.com/.well-known/jwks.json",
    ] {
        assert!(HttpUrl::parse(url).is_ok(), "{url}");
    }
}

#[test]
fn rejected_url_forms() {
    let cases: &[(&str, UrlError)] = &[
        ("localhost:5432/tasker", UrlError::MissingScheme),
        (
            "mysql://localhost/tasker",
            UrlError::Scheme {
                found: "mysql".to_owned(),
                allowed: DatabaseUrl::SCHEMES,
            },
        ),
        (
            "postgres://host:99999/db",
            UrlError::InvalidPort {
                port: "99999".to_owned(),
            },
        ),
        (
            "postgres://host:port/db",
            UrlError::InvalidPort {
                port: "port".to_owned(),
            },
        ),
        ("postgres://[::1/db", UrlError::UnbalancedBracket),
        ("postgres://host/db name", UrlError::ForbiddenCharacter),
        ("postgres://host/%zz", UrlError::InvalidPercentEscape),
        ("postgres://a:5432,:5433/db", UrlError::MissingHost),
    ];
    for (url, expected) in cases {
        assert_eq!(
            DatabaseUrl::parse(url).as_ref().map_err(Clone::clone).err(),
            Some(expected.clone()),
            "{url}"
        );
    }
    assert_eq!(
        AmqpUrl::parse("amqp:///vhost").err(),
        Some(UrlError::MissingHost)
    );
}

#[test]
fn redaction_masks_credentials_and_keeps_the_rest() {
    let cases = [
        (
            "postgresql://tasker:s3cret@db:5432/tasker",
            "postgresql://tasker:***@db:5432/tasker",
        ),
        (
            "postgresql://tasker@db/tasker",
            "postgresql://tasker@db/tasker",
        ),
        ("redis://:s3cret@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("amqp://u:p@ss@host/%2F", "amqp://u:***@host/%2F"),
        (
            "postgresql://db/tasker?user=u&password=s3cret&sslmode=require",
            "postgresql://db/tasker?user=u&password=***&sslmode=require",
        ),
        (
            "host=db password=s3cret dbname=tasker",
            "host=db password=*** dbname=tasker",
        ),
        ("user:s3cret@db/tasker", "user:***@db/tasker"),
        (
            "https://example.com/jwks?token=abc",
            "https://example.com/jwks?token=***",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(redact_url_text(input), expected, "{input}");
    }
}

#[test]
fn debug_and_display_never_show_the_password() {
    let url = DatabaseUrl::parse("postgresql://tasker:s3cret@db/tasker").expect("valid");
    for shown in [format!("{url}"), format!("{url:?}"), format!("{url:#?}")] {
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("tasker:***@db"), "{shown}");
    }
    let secret = Secret::new("t0ken");
    assert_eq!(
        format!("{secret} {secret:?}"),
        "<redacted> Secret(<redacted>)"
    );
    assert_eq!(format!("{}", Secret::default()), "<empty>");
}
