//! The header and its failures.

use super::*;

#[test]
fn round_trips_with_the_header() {
    let bytes = encode(&vec![1u32, 2, 3]).expect("encodes");
    assert_eq!(&bytes[..2], &[MAGIC, FORMAT_VERSION]);
    assert_eq!(decode::<Vec<u32>>(&bytes).expect("decodes"), vec![1, 2, 3]);
}

#[test]
fn other_versions_foreign_bytes_and_other_types_do_not_decode() {
    let mut bytes = encode(&"text").expect("encodes");
    bytes[1] = FORMAT_VERSION + 1;
    assert!(matches!(
        decode::<String>(&bytes),
        Err(DecodeError::Version { .. })
    ));
    assert!(matches!(
        decode::<String>(b"\"plain json\""),
        Err(DecodeError::NotOurs)
    ));
    assert!(matches!(decode::<String>(&[]), Err(DecodeError::NotOurs)));
    let number = encode(&42u64).expect("encodes");
    assert!(matches!(
        decode::<Vec<String>>(&number),
        Err(DecodeError::Json(_))
    ));
}
