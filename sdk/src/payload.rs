//! Conversion between user values and recorded payloads. One place decides
//! the format (JSON), so histories stay readable and user types can gain
//! optional fields without breaking running workflows.

use refrain_history::Payload;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

/// A value could not be converted to or from its recorded form.
#[derive(Debug)]
pub struct PayloadError {
    /// What was being converted: `"activity input"`, `"signal approve"`, ...
    pub what: String,
    /// Whether encoding (true) or decoding (false) failed.
    pub encoding: bool,
    /// The serializer's message.
    pub source: serde_json::Error,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.encoding { "encode" } else { "decode" };
        write!(f, "cannot {dir} {}: {}", self.what, self.source)
    }
}

impl std::error::Error for PayloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Encodes `value` as a payload.
///
/// # Errors
/// `PayloadError` if serde cannot serialize it (for instance a map with
/// non-string keys).
pub fn encode<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<Payload, PayloadError> {
    serde_json::to_vec(value)
        .map(Payload::from_bytes)
        .map_err(|source| PayloadError {
            what: what.to_owned(),
            encoding: true,
            source,
        })
}

/// Decodes a payload as `T`.
///
/// # Errors
/// `PayloadError` if the bytes are not a `T`.
pub fn decode<T: DeserializeOwned>(what: &str, payload: &Payload) -> Result<T, PayloadError> {
    serde_json::from_slice(payload.as_bytes()).map_err(|source| PayloadError {
        what: what.to_owned(),
        encoding: false,
        source,
    })
}
