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
//!
//! # Schema versions
//!
//! bincode stores no field names, so a field added to a persisted type
//! changes what the bytes of every later field mean. Each value carries the
//! schema version that wrote it, and a field added in version 2 is marked
//! `#[serde(deserialize_with = "crate::codec::since_v2")]`: while a value
//! written by version 1 is decoded, such a field reads nothing and takes
//! its default (an empty list, `None`), so every byte after it keeps its
//! meaning. The version being decoded is known only inside [`decode`]
//! (a thread-local, set for the duration of one call), which is what lets
//! a changed type nested anywhere (an event in a journal entry, a record
//! in a list) decode right without a parallel copy of every type that
//! contains it. The frozen version-1 bytes of every persisted value are
//! kept as golden fixtures (`tests/golden/v1/`) and decoded by the tests.
//!
//! | version | added |
//! |---|---|
//! | 1 | the first format |
//! | 2 | `WorkflowTerminated::terminated_by`; `HumanTaskAssigned::escalations`; `HumanTaskRecord::escalations`, `claimed_from`; `RunRecord::awaited_signals`; the `HumanTaskClaimed` event |

use bincode::error::DecodeError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::Cell;
use std::fmt;

/// First two bytes of every stored value.
pub const MAGIC: [u8; 2] = *b"RF";
/// Codec id of bincode 2 with its standard configuration.
pub const CODEC_BINCODE2: u8 = 1;
/// Schema version written by this build (see the module docs for what
/// each version added).
pub const SCHEMA_VERSION: u16 = 2;

thread_local! {
    /// The schema version of the value [`decode`] is decoding on this
    /// thread; [`SCHEMA_VERSION`] outside it (serde_json and other formats
    /// always see the current shape).
    static DECODING: Cell<u16> = const { Cell::new(SCHEMA_VERSION) };
}

/// Sets [`DECODING`] for one decode and restores it after, also when the
/// decoder returns early.
struct DecodingVersion(u16);

impl DecodingVersion {
    fn set(version: u16) -> Self {
        DecodingVersion(DECODING.with(|d| d.replace(version)))
    }
}

impl Drop for DecodingVersion {
    fn drop(&mut self) {
        DECODING.with(|d| d.set(self.0));
    }
}

/// Deserializes a field added in schema version 2: from a version-1 value,
/// where its bytes are absent, it reads nothing and is `T::default()`.
/// Use as `#[serde(deserialize_with = "crate::codec::since_v2")]`.
///
/// # Errors
/// Whatever `T`'s own deserializer returns for a version-2 value.
pub fn since_v2<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    if DECODING.with(Cell::get) < 2 {
        Ok(T::default())
    } else {
        T::deserialize(deserializer)
    }
}
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
                write!(
                    f,
                    "declared length {declared} exceeds the limit of {limit} bytes"
                )
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

/// The bincode configuration of codec 1 (decoding uses the same one with a
/// limit in proportion to the payload, see `decode_body`). The limit bounds
/// what a corrupt length prefix inside the payload can make the decoder
/// allocate.
fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_VALUE_BYTES }>()
}

/// Decodes a checked payload with a limit in proportion to its length.
///
/// bincode counts what a value claims as it decodes (every primitive its
/// in-memory width, every string or vector its length) and refuses a claim
/// past the limit before allocating for it. Each claim stands for at least
/// one payload byte and asks for at most 16 bytes per payload byte, so a
/// real value of `n` bytes claims well under 64 × `n`; a corrupt length
/// prefix whose checksum happens to match (or was resealed) can then make
/// a small value allocate at most that much, not the codec's whole limit
/// (a 45-byte value could otherwise ask for 256 MiB). The limit is a type
/// constant, hence the tiers.
fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<(T, usize), DecodeError> {
    fn with<T: DeserializeOwned, const LIMIT: usize>(
        body: &[u8],
    ) -> Result<(T, usize), DecodeError> {
        bincode::serde::decode_from_slice(body, bincode::config::standard().with_limit::<LIMIT>())
    }
    const KIB: usize = 1024;
    match body.len() {
        n if n <= 4 * KIB => with::<T, { 64 * 4 * KIB }>(body),
        n if n <= 64 * KIB => with::<T, { 64 * 64 * KIB }>(body),
        n if n <= 1024 * KIB => with::<T, { 64 * 1024 * KIB }>(body),
        _ => with::<T, MAX_VALUE_BYTES>(body),
    }
}

/// Encodes `value` in the envelope.
///
/// # Errors
/// `CodecError::Encode` if bincode cannot encode it, `TooLarge` if the
/// payload exceeds `MAX_VALUE_BYTES`.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode_sized(value, TYPICAL_PAYLOAD)
}

/// As [`encode`], with room for `payload_hint` payload bytes reserved up
/// front, for a caller that knows about how large its value encodes (the
/// store's journal chunks), so that the buffer is not regrown on the way.
///
/// # Errors
/// As [`encode`].
pub fn encode_sized<T: Serialize>(value: &T, payload_hint: usize) -> Result<Vec<u8>, CodecError> {
    // Header and payload share one buffer: the payload is written in place
    // and the header's length and checksum filled in afterwards, so the
    // value is neither grown from an empty buffer nor copied. Every commit
    // encodes several values, so this is on the hot path.
    let mut out = Vec::with_capacity(HEADER_LEN + payload_hint);
    out.extend_from_slice(&MAGIC);
    out.push(CODEC_BINCODE2);
    out.extend_from_slice(&SCHEMA_VERSION.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    bincode::serde::encode_into_writer(value, Append(&mut out), bincode_config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    let payload = out.len() - HEADER_LEN;
    if payload > MAX_VALUE_BYTES {
        return Err(CodecError::TooLarge {
            declared: payload as u64,
            limit: MAX_VALUE_BYTES,
        });
    }
    // Checked just above: the length fits in u32 because the limit does.
    let len = u32::try_from(payload).map_err(|_| CodecError::TooLarge {
        declared: payload as u64,
        limit: MAX_VALUE_BYTES,
    })?;
    let crc = crc32c::crc32c(&out[HEADER_LEN..]);
    out[5..9].copy_from_slice(&len.to_be_bytes());
    out[9..HEADER_LEN].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Payload bytes reserved up front: run records, events and activity
/// tasks of ordinary workflows fit, larger values grow the buffer.
const TYPICAL_PAYLOAD: usize = 128;

/// bincode writer that appends to a buffer.
struct Append<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for Append<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes an enveloped value, checking magic, codec, schema version,
/// length, checksum, the size limit and trailing bytes, in that order of
/// cost.
///
/// # Errors
/// Every malformed input gives a `CodecError`; none panics or allocates
/// more than `MAX_VALUE_BYTES`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(CodecError::Truncated {
            needed: HEADER_LEN,
            got: bytes.len(),
        })?;
    let magic = [header[0], header[1]];
    if magic != MAGIC {
        return Err(CodecError::BadMagic { found: magic });
    }
    if header[2] != CODEC_BINCODE2 {
        return Err(CodecError::UnknownCodec { id: header[2] });
    }
    let version = u16::from_be_bytes([header[3], header[4]]);
    // Version 0 was never written; treat it like any unknown version rather
    // than guessing at its layout.
    if version == 0 || version > SCHEMA_VERSION {
        return Err(CodecError::UnsupportedSchema {
            version,
            supported: SCHEMA_VERSION,
        });
    }
    let declared = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
    let expected_crc = u32::from_be_bytes([header[9], header[10], header[11], header[12]]);
    // Widening u32 -> usize is lossless on every platform sled supports
    // (32- and 64-bit).
    let declared = declared as usize;
    if declared > MAX_VALUE_BYTES {
        return Err(CodecError::TooLarge {
            declared: declared as u64,
            limit: MAX_VALUE_BYTES,
        });
    }
    let body = &bytes[HEADER_LEN..];
    if body.len() < declared {
        return Err(CodecError::Truncated {
            needed: HEADER_LEN + declared,
            got: bytes.len(),
        });
    }
    if body.len() > declared {
        return Err(CodecError::TrailingBytes {
            count: body.len() - declared,
        });
    }
    let actual_crc = crc32c::crc32c(body);
    if actual_crc != expected_crc {
        return Err(CodecError::ChecksumMismatch {
            expected: expected_crc,
            actual: actual_crc,
        });
    }
    let decoded = {
        let _version = DecodingVersion::set(version);
        decode_body(body)
    };
    let (value, read) = decoded.map_err(|e| CodecError::Decode(e.to_string()))?;
    if read != body.len() {
        return Err(CodecError::Decode(format!(
            "{} of {} payload bytes left unread",
            body.len() - read,
            body.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::ids::CommandSeq;
    use crate::samples::every_event;

    /// An envelope around arbitrary payload bytes, with a correct checksum.
    fn envelope(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.push(CODEC_BINCODE2);
        out.extend_from_slice(&SCHEMA_VERSION.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// bincode's standard (varint) encoding of a u64 above u32::MAX.
    fn varint_u64(v: u64) -> Vec<u8> {
        let mut out = vec![253];
        out.extend_from_slice(&v.to_le_bytes());
        out
    }

    #[test]
    fn every_event_variant_round_trips() {
        let events = every_event();
        let variants: std::collections::BTreeSet<_> = events.iter().map(Event::kind).collect();
        assert_eq!(variants.len(), 32, "one sample or more of every variant");
        for e in events {
            let bytes = encode(&e).unwrap();
            assert_eq!(&bytes[..2], b"RF");
            assert_eq!(bytes[2], CODEC_BINCODE2);
            assert_eq!(decode::<Event>(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn every_prefix_is_truncated() {
        for e in every_event() {
            let bytes = encode(&e).unwrap();
            for n in 0..bytes.len() {
                match decode::<Event>(&bytes[..n]) {
                    Err(CodecError::Truncated { got, .. }) => assert_eq!(got, n),
                    other => panic!("prefix {n} of {} gave {other:?}", e.kind()),
                }
            }
        }
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let mut bytes = encode(&Event::TimerFired { cmd: CommandSeq(1) }).unwrap();
        bytes.extend_from_slice(b"xyz");
        assert_eq!(
            decode::<Event>(&bytes),
            Err(CodecError::TrailingBytes { count: 3 })
        );
    }

    #[test]
    fn declared_length_beyond_limit_is_too_large() {
        let mut bytes = encode(&Event::TimerFired { cmd: CommandSeq(1) }).unwrap();
        bytes[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode::<Event>(&bytes),
            Err(CodecError::TooLarge {
                declared: u64::from(u32::MAX),
                limit: MAX_VALUE_BYTES
            })
        );
    }

    #[test]
    fn inner_length_prefix_of_2_pow_62_is_a_decode_error() {
        // ActivityCompleted (variant 3), cmd 1, attempt 1, then a result
        // payload claiming 2^62 bytes, behind a valid checksum.
        let mut payload = vec![3, 1, 1];
        payload.extend(varint_u64(1 << 62));
        let r = decode::<Event>(&envelope(&payload));
        assert!(matches!(r, Err(CodecError::Decode(_))), "{r:?}");

        // WorkflowStarted (variant 0) whose type name claims 2^62 bytes.
        let mut payload = vec![0];
        payload.extend(varint_u64(1 << 62));
        payload.extend_from_slice(b"abc");
        let r = decode::<Event>(&envelope(&payload));
        assert!(matches!(r, Err(CodecError::Decode(_))), "{r:?}");
    }

    #[test]
    fn payload_bincode_leaves_unread_is_a_decode_error() {
        let mut payload = bincode::serde::encode_to_vec(
            Event::TimerFired { cmd: CommandSeq(1) },
            bincode_config(),
        )
        .unwrap();
        payload.push(0);
        let r = decode::<Event>(&envelope(&payload));
        assert!(matches!(r, Err(CodecError::Decode(_))), "{r:?}");
    }

    #[test]
    fn unknown_variant_is_a_decode_error() {
        let r = decode::<Event>(&envelope(&[200]));
        assert!(matches!(r, Err(CodecError::Decode(_))), "{r:?}");
    }

    #[test]
    fn header_fields_are_checked() {
        let good = encode(&Event::TimerFired { cmd: CommandSeq(1) }).unwrap();

        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(
            decode::<Event>(&b),
            Err(CodecError::BadMagic { found: *b"XF" })
        );

        let mut b = good.clone();
        b[2] = 9;
        assert_eq!(decode::<Event>(&b), Err(CodecError::UnknownCodec { id: 9 }));

        let mut b = good.clone();
        b[3..5].copy_from_slice(&(SCHEMA_VERSION + 1).to_be_bytes());
        assert_eq!(
            decode::<Event>(&b),
            Err(CodecError::UnsupportedSchema {
                version: SCHEMA_VERSION + 1,
                supported: SCHEMA_VERSION
            })
        );

        let mut b = good;
        let last = b.len() - 1;
        b[last] ^= 0x80;
        assert!(matches!(
            decode::<Event>(&b),
            Err(CodecError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        for e in every_event() {
            let bytes = encode(&e).unwrap();
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut b = bytes.clone();
                    b[i] ^= 1 << bit;
                    assert!(
                        decode::<Event>(&b).is_err(),
                        "flip of bit {bit} of byte {i} in {} went undetected",
                        e.kind()
                    );
                }
            }
        }
    }

    #[test]
    fn fuzzed_events_give_named_errors_within_the_limit() {
        let corpus: Vec<Vec<u8>> = every_event().iter().map(|e| encode(e).unwrap()).collect();
        // Half the mutants carry a matching checksum and reach bincode,
        // whose allocations the limit bounds in proportion to the payload
        // (`decode_body`): every sample and mutant is under 64 KiB, so
        // nothing may ask for more than 4 MiB.
        assert!(corpus.iter().all(|c| c.len() + 4 * 64 < 64 * 1024));
        crate::fuzz::Fuzz::from_env("event codec", 60_000)
            .resealing()
            .max_allocation(4 * 1024 * 1024)
            .run(&corpus, decode::<Event>);
    }

    /// A small value whose string length was overwritten with a huge one,
    /// and resealed so the checksum matches: refused by name, without
    /// allocating anything near the claimed length.
    #[test]
    fn a_small_value_cannot_ask_for_a_large_allocation() {
        let value = String::from("a short string");
        let mut bytes = encode(&value).unwrap();
        // bincode's varint: 0xfc then a u32 little-endian length of 200 MiB.
        let mut payload = vec![0xfc];
        payload.extend_from_slice(&(200u32 * 1024 * 1024).to_le_bytes());
        payload.extend_from_slice(b"xyz");
        bytes.truncate(HEADER_LEN);
        bytes[5..9].copy_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes[9..13].copy_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        bytes.extend_from_slice(&payload);
        let (outcome, largest) = crate::fuzz::largest_allocation(|| decode::<String>(&bytes));
        assert!(matches!(outcome, Err(CodecError::Decode(_))), "{outcome:?}");
        assert!(
            largest < 1024 * 1024,
            "allocated {largest} bytes for a {}-byte value",
            bytes.len()
        );
    }

    #[test]
    fn empty_and_short_inputs_are_truncated() {
        assert_eq!(
            decode::<Event>(&[]),
            Err(CodecError::Truncated {
                needed: HEADER_LEN,
                got: 0
            })
        );
    }
}
