//! The versioned encoding of typed values: a two-byte header, then the value as JSON.
//!
//! The header is [`MAGIC`] and [`FORMAT_VERSION`]. A stored value whose header differs (an
//! older or newer format, bytes some other program wrote) or whose JSON no longer fits the type
//! asked for does not decode; the typed cache treats it as a miss and deletes it.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The first byte of every value this crate encodes.
pub const MAGIC: u8 = 0xCA;
/// The encoding's version: the second byte. Raise it when the encoding changes, and every
/// value written before becomes a miss instead of a misread.
pub const FORMAT_VERSION: u8 = 1;

/// Encodes a value: the header, then its JSON.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = vec![MAGIC, FORMAT_VERSION];
    serde_json::to_writer(&mut bytes, value)?;
    Ok(bytes)
}

/// Decodes a value that [`encode`] wrote.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes {
        [MAGIC, FORMAT_VERSION, json @ ..] => {
            serde_json::from_slice(json).map_err(DecodeError::Json)
        }
        [MAGIC, version, ..] => Err(DecodeError::Version { found: *version }),
        _ => Err(DecodeError::NotOurs),
    }
}

/// A stored value that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The value was written in another version of the encoding.
    #[error(
        "the value was encoded in format version {found}; this build reads version {FORMAT_VERSION}"
    )]
    Version {
        /// The version found.
        found: u8,
    },
    /// The value does not start with this crate's header.
    #[error("the value was not written by tasker-cache (no header)")]
    NotOurs,
    /// The JSON does not fit the type asked for.
    #[error("the value does not decode as the type asked for")]
    Json(#[source] serde_json::Error),
}

#[cfg(test)]
mod tests;
