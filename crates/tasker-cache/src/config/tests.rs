//! Redaction of URLs and the backend names.

use super::*;

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redact_url("redis://:secret@host:6379/2"),
        "redis://:***@host:6379/2"
    );
    assert_eq!(
        redact_url("rediss://user:secret@host"),
        "rediss://user:***@host"
    );
    assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
    assert_eq!(
        redact_url("redis+unix:///tmp/redis.sock?db=1&pass=secret"),
        "redis+unix:///tmp/redis.sock?db=1&pass=***"
    );
    assert_eq!(redact_url("not a url with secret"), "***");
}

#[test]
fn debug_never_shows_the_password() {
    let config = CacheConfig {
        redis: RedisConfig {
            url: "redis://admin:hunter2@cache:6379".to_owned(),
            ..RedisConfig::default()
        },
        memcached: MemcachedConfig {
            url: "tcp://user:hunter2@cache:11211".to_owned(),
            ..MemcachedConfig::default()
        },
        ..CacheConfig::default()
    };
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("redis://admin:***@cache:6379"), "{debug}");
}

#[test]
fn backend_names_round_trip() {
    for kind in [
        BackendKind::Redis,
        BackendKind::Moka,
        BackendKind::Memcached,
        BackendKind::Noop,
    ] {
        assert_eq!(BackendKind::parse(kind.as_str()), Ok(kind));
    }
    assert!(BackendKind::parse("dragonfly").is_err());
}
