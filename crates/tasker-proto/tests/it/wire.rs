//! Wire compatibility: the descriptors of `tasker.v1` against the committed baseline
//! (`proto/wire-baseline.binpb`). A field number or enum value of the baseline must keep its
//! type and cardinality, or be reserved; a reserved number must not come back. Adding is
//! always fine.
//!
//! A deliberate break is accepted by updating the baseline:
//! `cp crates/tasker-proto/src/gen/tasker_descriptor.binpb crates/tasker-proto/proto/wire-baseline.binpb`

use std::collections::BTreeMap;

use prost::Message as _;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

const BASELINE: &[u8] = include_bytes!("../../proto/wire-baseline.binpb");

/// A field's wire shape: type, label (cardinality) and message or enum type name.
type Shape = (Option<i32>, Option<i32>, String);

/// The [`Shape`] of each field number, per message; value numbers per enum;
/// reserved numbers per message and enum.
#[derive(Debug, Default)]
struct Wire {
    fields: BTreeMap<String, BTreeMap<i32, Shape>>,
    reserved: BTreeMap<String, Vec<(i32, i32)>>,
    enum_values: BTreeMap<String, BTreeMap<i32, String>>,
}

impl Wire {
    fn of(set: &FileDescriptorSet) -> Self {
        let mut wire = Self::default();
        for file in set.file.iter().filter(|f| f.package() == "tasker.v1") {
            for message in &file.message_type {
                wire.message(&format!("tasker.v1.{}", message.name()), message);
            }
            for enumeration in &file.enum_type {
                wire.enumeration(&format!("tasker.v1.{}", enumeration.name()), enumeration);
            }
        }
        wire
    }

    fn message(&mut self, path: &str, message: &DescriptorProto) {
        let fields = self.fields.entry(path.to_owned()).or_default();
        for field in &message.field {
            // A oneof member and a plain field encode alike; proto3 `optional` is a synthetic
            // oneof, so `oneof_index` is not part of the wire.
            fields.insert(
                field.number(),
                (field.r#type, field.label, field.type_name().to_owned()),
            );
        }
        self.reserved.insert(
            path.to_owned(),
            message
                .reserved_range
                .iter()
                .map(|r| (r.start(), r.end()))
                .collect(),
        );
        for nested in &message.nested_type {
            self.message(&format!("{path}.{}", nested.name()), nested);
        }
        for enumeration in &message.enum_type {
            self.enumeration(&format!("{path}.{}", enumeration.name()), enumeration);
        }
    }

    fn enumeration(&mut self, path: &str, enumeration: &EnumDescriptorProto) {
        self.enum_values.insert(
            path.to_owned(),
            enumeration
                .value
                .iter()
                .map(|v| (v.number(), v.name().to_owned()))
                .collect(),
        );
        self.reserved.insert(
            path.to_owned(),
            // Enum reserved ranges are inclusive; message ones exclusive at the end.
            enumeration
                .reserved_range
                .iter()
                .map(|r| (r.start(), r.end() + 1))
                .collect(),
        );
    }

    fn is_reserved(&self, path: &str, number: i32) -> bool {
        self.reserved.get(path).is_some_and(|ranges| {
            ranges
                .iter()
                .any(|(start, end)| (*start..*end).contains(&number))
        })
    }
}

/// Every wire-breaking difference between `baseline` and `current`.
fn breaks(baseline: &FileDescriptorSet, current: &FileDescriptorSet) -> Vec<String> {
    let (old, new) = (Wire::of(baseline), Wire::of(current));
    let mut breaks = Vec::new();
    for (message, fields) in &old.fields {
        let Some(now) = new.fields.get(message) else {
            breaks.push(format!("message {message} was removed"));
            continue;
        };
        for (number, shape) in fields {
            match now.get(number) {
                Some(current) if current == shape => {}
                Some(current) => breaks.push(format!(
                    "{message} field {number} changed its wire shape from {shape:?} to {current:?}"
                )),
                None if new.is_reserved(message, *number) => {}
                None => breaks.push(format!(
                    "{message} field {number} was removed without being reserved"
                )),
            }
        }
        for number in now.keys() {
            if old.is_reserved(message, *number) {
                breaks.push(format!("{message} field {number} reuses a reserved number"));
            }
        }
    }
    for (enumeration, values) in &old.enum_values {
        let now = new.enum_values.get(enumeration);
        for number in values.keys() {
            let kept = now.is_some_and(|now| now.contains_key(number));
            if !kept && !new.is_reserved(enumeration, *number) {
                breaks.push(format!(
                    "{enumeration} value {number} was removed without being reserved"
                ));
            }
        }
    }
    breaks
}

fn task(set: &mut FileDescriptorSet) -> &mut DescriptorProto {
    set.file
        .iter_mut()
        .flat_map(|f| f.message_type.iter_mut())
        .find(|m| m.name() == "Task")
        .expect("message Task")
}

fn decode(bytes: &[u8]) -> FileDescriptorSet {
    FileDescriptorSet::decode(bytes).expect("a descriptor set")
}

#[test]
fn the_current_protos_are_wire_compatible_with_the_baseline() {
    let found = breaks(
        &decode(BASELINE),
        &decode(tasker_proto::FILE_DESCRIPTOR_SET),
    );
    assert!(
        found.is_empty(),
        "wire-breaking changes:\n  {}\nIf they are deliberate, update the baseline (see this file's header).",
        found.join("\n  ")
    );
}

#[test]
fn the_check_catches_retyped_removed_and_reused_fields() {
    let baseline = decode(BASELINE);

    let mut retyped = baseline.clone();
    task(&mut retyped).field[1].r#type =
        Some(prost_types::field_descriptor_proto::Type::Int64 as i32);
    assert_eq!(
        breaks(&baseline, &retyped).len(),
        1,
        "{:?}",
        breaks(&baseline, &retyped)
    );

    let mut removed = baseline.clone();
    task(&mut removed).field.remove(1);
    assert_eq!(
        breaks(&baseline, &removed),
        ["tasker.v1.Task field 2 was removed without being reserved"]
    );

    let mut reserved = removed.clone();
    task(&mut reserved)
        .reserved_range
        .push(prost_types::descriptor_proto::ReservedRange {
            start: Some(2),
            end: Some(3),
        });
    assert!(
        breaks(&baseline, &reserved).is_empty(),
        "reserving the number is compatible"
    );

    let mut reused = reserved.clone();
    task(&mut reused)
        .field
        .push(prost_types::FieldDescriptorProto {
            name: Some("again".into()),
            number: Some(2),
            ..Default::default()
        });
    assert!(
        breaks(&reserved, &reused)
            .iter()
            .any(|b| b.contains("reuses a reserved number"))
    );
}
