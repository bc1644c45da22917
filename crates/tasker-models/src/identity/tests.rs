//! Tests for identity strategies and hashes, with golden values.
//!
//! The golden hashes were computed independently (Python's `hashlib` over the byte layout in
//! the module docs). If one of them changes, every stored `tasks.identity_hash` silently stops
//! deduplicating: do not update them without a migration plan.

use serde_json::json;
use uuid::Uuid;

use super::*;

const NAMED_TASK: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

fn named_task() -> NamedTaskId {
    NamedTaskId::from_uuid(Uuid::parse_str(NAMED_TASK).expect("valid uuid"))
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).expect("valid key")
}

fn strict(context: &serde_json::Value) -> IdentityHash {
    compute_identity_hash(IdentityStrategy::Strict, named_task(), context, None)
        .expect("strict never fails")
}

#[test]
fn golden_values() {
    let cases = [
        (
            json!({"b": 2, "a": 1}),
            "7f38d181ce5c69675632ab2feaf7b5e1f1c09138a3204a7202e0f3f7c4a2bccd",
        ),
        (
            json!({}),
            "e7419e15f29822fa51f61ecc6655efdc3144fcf8d15281aa7677d958d1ada5da",
        ),
        (
            json!(null),
            "73e8feb3d371160ef7604e77d2434cd6d449d0f35bb94122c3fa3122f3f76d64",
        ),
        (
            json!({"order_id": 12345, "amount": 19.99, "customer": {"tags": ["vip", "b2b"], "name": "Zoë"}, "none": null, "flag": true}),
            "de500fcb8e10cedca4c746b6432da4b06a186a3decfe91001947e4164d8e73d0",
        ),
    ];
    for (context, expected) in cases {
        assert_eq!(strict(&context).as_str(), expected, "context {context}");
    }
    let keyed = compute_identity_hash(
        IdentityStrategy::Strict,
        named_task(),
        &json!({}),
        Some(&key("my-key")),
    )
    .expect("keyed");
    assert_eq!(
        keyed.as_str(),
        "2c7b288c3bb2e5e88da33d1cce5c679af72a7d24e2bf65c0fcf0683f70849f32"
    );
}

#[test]
fn strict_hash_depends_on_content_not_key_order() {
    assert_eq!(
        strict(&json!({"b": 2, "a": 1})),
        strict(&json!({"a": 1, "b": 2}))
    );
    assert_eq!(
        strict(&json!({"x": {"y": {"b": 1, "a": [1, {"d": 4, "c": 3}]}}})),
        strict(&json!({"x": {"y": {"a": [1, {"c": 3, "d": 4}], "b": 1}}}))
    );
    assert_ne!(
        strict(&json!({"order_id": 12345})),
        strict(&json!({"order_id": 99999}))
    );
    assert_ne!(
        strict(&json!({"items": [3, 1, 2]})),
        strict(&json!({"items": [1, 2, 3]}))
    );
    assert_eq!(strict(&json!({"n": 1})), strict(&json!({"n": 1.0})));
    assert_eq!(strict(&json!(null)), strict(&json!(null)));
    assert_eq!(strict(&json!({})), strict(&json!({})));
}

#[test]
fn strict_hash_depends_on_the_template() {
    let context = json!({"a": 1});
    let other = NamedTaskId::new_v7();
    assert_ne!(
        compute_identity_hash(IdentityStrategy::Strict, other, &context, None).expect("strict"),
        strict(&context)
    );
}

#[test]
fn caller_provided_requires_a_key() {
    let err = compute_identity_hash(
        IdentityStrategy::CallerProvided,
        named_task(),
        &json!({}),
        None,
    )
    .expect_err("no key");
    assert!(matches!(err, IdentityError::IdempotencyKeyRequired { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "an idempotency_key is required: template {NAMED_TASK} uses the caller_provided identity strategy"
        )
    );
}

#[test]
fn keys_decide_identity_per_template() {
    let hash = |strategy, named, text: &str| {
        compute_identity_hash(strategy, named, &json!({"ignored": true}), Some(&key(text)))
            .expect("keyed")
    };
    let caller = IdentityStrategy::CallerProvided;
    assert_eq!(
        hash(caller, named_task(), "my-key"),
        hash(caller, named_task(), "my-key")
    );
    assert_ne!(
        hash(caller, named_task(), "my-key"),
        hash(caller, named_task(), "different-key")
    );
    assert_ne!(
        hash(caller, named_task(), "my-key"),
        hash(caller, NamedTaskId::new_v7(), "my-key")
    );
    let all: Vec<_> = IdentityStrategy::ALL
        .into_iter()
        .map(|strategy| hash(strategy, named_task(), "override-key"))
        .collect();
    assert!(
        all.windows(2).all(|pair| pair[0] == pair[1]),
        "a key wins over every strategy"
    );
}

#[test]
fn always_unique_differs_every_time() {
    let unique = || {
        compute_identity_hash(
            IdentityStrategy::AlwaysUnique,
            named_task(),
            &json!({}),
            None,
        )
        .expect("unique")
    };
    let (first, second) = (unique(), unique());
    assert_ne!(first, second);
    assert!(first.as_str().parse::<IdentityHash>().is_ok());
}

#[test]
fn strategy_parsing_is_forgiving_about_case_and_separators() {
    let cases = [
        ("STRICT", IdentityStrategy::Strict),
        ("strict", IdentityStrategy::Strict),
        ("CallerProvided", IdentityStrategy::CallerProvided),
        ("caller-provided", IdentityStrategy::CallerProvided),
        ("caller_provided", IdentityStrategy::CallerProvided),
        ("alwaysunique", IdentityStrategy::AlwaysUnique),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<IdentityStrategy>().expect(text), expected);
    }
    let err = "sometimes"
        .parse::<IdentityStrategy>()
        .expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "unknown identity strategy \"sometimes\"; expected one of: strict, caller_provided, always_unique"
    );
    assert_eq!(IdentityStrategy::default(), IdentityStrategy::Strict);
    assert_eq!(
        serde_json::to_string(&IdentityStrategy::CallerProvided).expect("json"),
        "\"caller_provided\""
    );
}

#[test]
fn idempotency_key_rules() {
    assert!(IdempotencyKey::new("order-42/retry 1").is_ok());
    assert_eq!(IdempotencyKey::new(""), Err(InvalidIdempotencyKey::Empty));
    assert_eq!(
        IdempotencyKey::new(" a"),
        Err(InvalidIdempotencyKey::SurroundingWhitespace)
    );
    assert_eq!(
        IdempotencyKey::new("a\u{0}b"),
        Err(InvalidIdempotencyKey::ControlCharacter { position: 1 })
    );
    assert_eq!(
        IdempotencyKey::new("k".repeat(IDEMPOTENCY_KEY_MAX_LEN + 1)),
        Err(InvalidIdempotencyKey::TooLong {
            len: IDEMPOTENCY_KEY_MAX_LEN + 1
        })
    );
}

#[test]
fn identity_hash_parsing() {
    let hash = strict(&json!({}));
    assert_eq!(
        hash.as_str().parse::<IdentityHash>().expect("round trip"),
        hash
    );
    assert!("ABC".parse::<IdentityHash>().is_err());
    assert!(
        hash.as_str()
            .to_uppercase()
            .parse::<IdentityHash>()
            .is_err()
    );
}
