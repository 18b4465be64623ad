//! The one module that names bincode. Every stored value is wrapped in an
//! envelope:
//!
//! ```text
//! magic "RF" (2) | codec id (1) | schema version u16 BE (2)
//! | payload length u32 BE (4) | CRC32C of payload u32 BE (4) | payload
//! ```
//!
//! The payload is bincode 2 (standard config) decoded with a size limit,
//! after the length and checksum are verified, and trailing bytes are an
//! error. A corrupt length prefix therefore can never make the decoder
//! allocate more than the limit.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

/// First two bytes of every stored value.
pub const MAGIC: [u8; 2] = *b"RF";
/// Codec id of bincode 2 with its standard configuration.
pub const CODEC_BINCODE2: u8 = 1;
/// Schema version written by this build.
pub const SCHEMA_VERSION: u16 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 13;
/// Largest payload the decoder accepts. Larger than any payload the store
/// admits (`StoreConfig::max_payload_bytes`) plus the event around it.
pub const MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// Why stored bytes could not be decoded (or a value encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// Fewer bytes than the header or the declared length.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The value does not start with `MAGIC`.
    BadMagic {
        /// The first bytes found.
        found: [u8; 2],
    },
    /// A codec id this build does not know.
    UnknownCodec {
        /// The id found.
        id: u8,
    },
    /// A schema version this build cannot read.
    UnsupportedSchema {
        /// The version found.
        version: u16,
        /// The newest version this build reads.
        supported: u16,
    },
    /// The declared payload length exceeds `MAX_VALUE_BYTES`.
    TooLarge {
        /// Declared length.
        declared: u64,
        /// The limit.
        limit: usize,
    },
    /// Bytes follow the declared payload.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The payload's CRC32C does not match the header.
    ChecksumMismatch {
        /// CRC in the header.
        expected: u32,
        /// CRC of the bytes.
        actual: u32,
    },
    /// bincode rejected the payload (or left part of it unread).
    Decode(String),
    /// bincode could not encode the value.
    Encode(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Truncated { needed, got } => {
                write!(f, "truncated value: needed {needed} bytes, got {got}")
            }
            CodecError::BadMagic { found } => write!(f, "bad magic bytes {found:02x?}"),
            CodecError::UnknownCodec { id } => write!(f, "unknown codec id {id}"),
            CodecError::UnsupportedSchema { version, supported } => write!(
                f,
                "schema version {version} is newer than this build reads (up to {supported})"
            ),
            CodecError::TooLarge { declared, limit } => {
                write!(f, "declared length {declared} exceeds the limit of {limit} bytes")
            }
            CodecError::TrailingBytes { count } => {
                write!(f, "{count} trailing bytes after the value")
            }
            CodecError::ChecksumMismatch { expected, actual } => write!(
                f,
                "checksum mismatch: header says {expected:08x}, bytes give {actual:08x}"
            ),
            CodecError::Decode(e) => write!(f, "undecodable payload: {e}"),
            CodecError::Encode(e) => write!(f, "unencodable value: {e}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Encodes `value` in the envelope.
///
/// # Errors
/// `CodecError::Encode` if bincode cannot encode it, `TooLarge` if the
/// payload exceeds `MAX_VALUE_BYTES`.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let _ = value;
    todo!("codec::encode")
}

/// Decodes an enveloped value, checking magic, codec, schema version,
/// length, checksum, the size limit and trailing bytes, in that order of
/// cost.
///
/// # Errors
/// Every malformed input gives a `CodecError`; none panics or allocates
/// more than `MAX_VALUE_BYTES`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let _ = bytes;
    todo!("codec::decode")
}
