//! Tests of the borrowed YAML value.

use std::borrow::Cow;

use super::{Mapping, Value};

fn string(text: &str) -> Value<'_> {
    Value::String(Cow::Borrowed(text))
}

#[test]
fn borrowing_keeps_order_numbers_and_tags() {
    let parsed: serde_yaml_ng::Value =
        serde_yaml_ng::from_str("z: 1\na: [-2, 0.5, null, true]\nm: !tag {k: v}\n").expect("yaml");
    let Value::Mapping(map) = Value::borrowed(&parsed) else {
        panic!("a mapping");
    };
    let keys: Vec<&Value<'_>> = map.keys().collect();
    assert_eq!(keys, [&string("z"), &string("a"), &string("m")]);
    assert_eq!(map.get("z"), Some(&Value::Number(1.into())));
    let Some(Value::Sequence(items)) = map.get("a") else {
        panic!("a sequence");
    };
    assert_eq!(
        items,
        &[
            Value::Number((-2).into()),
            Value::Number(0.5.into()),
            Value::Null,
            Value::Bool(true)
        ]
    );
    let Some(Value::Tagged(tagged)) = map.get("m") else {
        panic!("a tagged value");
    };
    assert_eq!(tagged.tag.to_string(), "!tag");
    assert!(matches!(&tagged.value, Value::Mapping(inner) if inner.contains_key("k")));
    assert!(!map.contains_key("k"));
}

#[test]
fn mappings_refuse_duplicate_and_unusual_keys() {
    for count in [2, 20] {
        let keys: Vec<String> = (0..count).map(|index| format!("k{index}")).collect();
        let entries: Vec<(Value<'_>, Value<'_>)> =
            keys.iter().map(|key| (string(key), Value::Null)).collect();
        let unique = Mapping::from_unique_entries(entries.clone()).expect("unique keys");
        assert_eq!(unique.len(), count);

        let mut duplicated = entries.clone();
        duplicated.push((string("k1"), Value::Bool(true)));
        assert!(Mapping::from_unique_entries(duplicated).is_none());

        let mut numbers = entries.clone();
        numbers.push((Value::Number(1.into()), Value::Null));
        numbers.push((Value::Number((-1).into()), Value::Null));
        numbers.push((Value::Bool(true), Value::Null));
        numbers.push((Value::Null, Value::Null));
        assert!(Mapping::from_unique_entries(numbers.clone()).is_some());
        numbers.push((Value::Number(1.into()), Value::Null));
        assert!(Mapping::from_unique_entries(numbers).is_none());

        for unusual in [
            Value::Number(0.5.into()),
            Value::Sequence(Vec::new()),
            Value::Mapping(Mapping::default()),
        ] {
            let mut with_unusual = entries.clone();
            with_unusual.push((unusual, Value::Null));
            assert!(Mapping::from_unique_entries(with_unusual).is_none());
        }
    }
}
