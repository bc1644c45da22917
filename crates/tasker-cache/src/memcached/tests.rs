//! Keys, TTLs and URLs in memcached's terms.

use std::time::Duration;

use super::*;

fn ns(name: &str) -> Namespace {
    Namespace::new(name).expect("valid")
}

#[test]
fn plain_keys_stay_readable_and_others_are_hashed() {
    let (prefix, namespace) = (ns("tasker"), ns("templates"));
    assert_eq!(
        storable_key(&prefix, &namespace, 7, "a/b:1"),
        "tasker:templates:7:a/b:1"
    );
    for awkward in ["with space", "new\nline", "é", &"x".repeat(300), "#abc"] {
        let key = storable_key(&prefix, &namespace, 7, awkward);
        assert!(key.starts_with("tasker:templates:7:#"), "{key}");
        assert!(
            key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic()),
            "{key}"
        );
    }
    assert_ne!(
        storable_key(&prefix, &namespace, 7, "a b"),
        storable_key(&prefix, &namespace, 7, "a  b")
    );
}

#[test]
fn ttls_round_up_to_seconds_and_long_ones_become_unix_times() {
    assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
    assert_eq!(ttl_seconds(Duration::from_millis(1500)), 2);
    assert_eq!(ttl_seconds(Duration::from_secs(3600)), 3600);
    assert!(ttl_seconds(Duration::from_secs(MAX_RELATIVE_TTL + 1)) > 1_600_000_000);
}

#[test]
fn urls() {
    assert_eq!(
        parse_url("tcp://localhost:11211"),
        Ok(Address::Tcp("localhost:11211".into()))
    );
    assert_eq!(
        parse_url("memcache://10.0.0.1"),
        Ok(Address::Tcp("10.0.0.1:11211".into()))
    );
    assert_eq!(
        parse_url("tcp://[::1]:11212/"),
        Ok(Address::Tcp("[::1]:11212".into()))
    );
    assert_eq!(
        parse_url("unix:///run/memcached.sock"),
        Ok(Address::Unix("/run/memcached.sock".into()))
    );
    assert!(parse_url("tcp://host:port").is_err());
    assert!(parse_url("http://host").is_err());
    assert!(parse_url("unix://relative").is_err());
}
