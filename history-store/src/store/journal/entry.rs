//! How a journal entry is stored: the write set's layout, and the chunks
//! it is cut into, each in the codec's envelope.
//!
//! An entry's layout, big-endian lengths:
//!
//! ```text
//! trees u32, then per tree: name (len u32, bytes) | writes u32,
//!   then per write: key (len u32, bytes) | 0 (remove)
//!                                        | 1 (insert) value (len u32, bytes)
//! ```
//!
//! The layout is cut into chunks of at most `CHUNK_BYTES`, and each chunk
//! is stored as its own value: the codec envelope (magic, codec id, schema
//! version, length, CRC32C) around `(last: bool, bytes)`. Every chunk is
//! checked on its own, so a flipped bit anywhere, the last-chunk flag
//! included, is a checksum or header error rather than a different write
//! set or a silently dropped entry.
//!
//! Builds before the envelope stored a chunk as one flag byte (0: more
//! follow, 1: last) then the bytes, unchecked. An envelope starts with
//! `R`, so the first byte tells the two apart, and [`decode_chunk`] reads
//! both: such a chunk exists only if an older build crashed mid-commit,
//! and its writes must still be completed.

use crate::codec::{self, CodecError};
use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sled::{IVec, Tree};
use std::collections::BTreeMap;
use std::fmt;

/// Largest part of an entry's layout in one chunk: with the envelope
/// around it, a chunk stays below sled's blob threshold (a file per value).
pub(super) const CHUNK_BYTES: usize = 32 * 1024;

/// Flag bytes of a chunk in the pre-envelope format.
const LEGACY_MORE: u8 = 0;
const LEGACY_LAST: u8 = 1;

/// Tags of a write in the layout.
const REMOVE: u8 = 0;
const INSERT: u8 = 1;

/// One tree's writes in a decoded entry, borrowed from its bytes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TreeWrites<'a> {
    /// The tree's name.
    pub(super) name: &'a [u8],
    /// Each key with its new value, `None` to remove it.
    pub(super) writes: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// One stored chunk, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Chunk {
    /// Whether the entry ends with this chunk.
    pub(super) last: bool,
    /// Its part of the layout.
    pub(super) bytes: Vec<u8>,
    /// Written before the envelope: no checksum was there to verify.
    pub(super) legacy: bool,
}

/// The stored chunks of the entry holding `sets`, in order.
pub(super) fn encode_entry(sets: &[(&Tree, BTreeMap<IVec, Option<IVec>>)]) -> Vec<Vec<u8>> {
    let layout = layout(sets);
    let n = layout.len().div_ceil(CHUNK_BYTES);
    layout
        .chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(i, part)| seal(i + 1 == n, part))
        .collect()
}

/// One chunk in the envelope.
fn seal(last: bool, part: &[u8]) -> Vec<u8> {
    // The flag takes a byte, the length's varint at most five.
    match codec::encode_sized(&(last, AsBytes(part)), 6 + part.len()) {
        Ok(bytes) => bytes,
        // A chunk is a bool and at most CHUNK_BYTES bytes, far below the
        // codec's limit, and bincode encodes both without fail.
        Err(e) => unreachable!("a journal chunk failed to encode: {e}"),
    }
}

/// Decodes one stored chunk, in either format.
///
/// # Errors
/// Whatever the codec rejects (header, length, checksum, payload).
pub(super) fn decode_chunk(value: &[u8]) -> Result<Chunk, CodecError> {
    match value.split_first() {
        Some((&flag @ (LEGACY_MORE | LEGACY_LAST), rest)) => Ok(Chunk {
            last: flag == LEGACY_LAST,
            bytes: rest.to_vec(),
            legacy: true,
        }),
        _ => {
            let (last, ByteBuf(bytes)) = codec::decode::<(bool, ByteBuf)>(value)?;
            Ok(Chunk {
                last,
                bytes,
                legacy: false,
            })
        }
    }
}

/// The write set of an entry's layout (its chunks joined).
///
/// # Errors
/// `Truncated`, `TrailingBytes`, or `Decode` for an unknown write tag.
/// Nothing is allocated beyond what the bytes themselves hold writes for.
pub(super) fn decode_entry(bytes: &[u8]) -> Result<Vec<TreeWrites<'_>>, CodecError> {
    let mut r = Reader { bytes };
    // Counts are not trusted for allocation: each write takes at least
    // five bytes, so the vectors grow only as far as the bytes go.
    let mut trees = Vec::new();
    for _ in 0..r.u32()? {
        let name = r.bytes()?;
        let mut writes = Vec::new();
        for _ in 0..r.u32()? {
            let key = r.bytes()?;
            let value = match r.take(1)?[0] {
                REMOVE => None,
                INSERT => Some(r.bytes()?),
                tag => return Err(CodecError::Decode(format!("unknown write tag {tag}"))),
            };
            writes.push((key, value));
        }
        trees.push(TreeWrites { name, writes });
    }
    if !r.bytes.is_empty() {
        return Err(CodecError::TrailingBytes {
            count: r.bytes.len(),
        });
    }
    Ok(trees)
}

/// The layout of `sets`.
fn layout(sets: &[(&Tree, BTreeMap<IVec, Option<IVec>>)]) -> Vec<u8> {
    let size: usize = sets
        .iter()
        .flat_map(|(_, w)| w.iter())
        .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, |v| v.len()))
        .sum();
    let mut out = Vec::with_capacity(4 + size + sets.len() * 32);
    put_u32(&mut out, sets.len());
    for (tree, writes) in sets {
        put_bytes(&mut out, &tree.name());
        put_u32(&mut out, writes.len());
        for (key, value) in writes {
            put_bytes(&mut out, key);
            match value {
                None => out.push(REMOVE),
                Some(v) => {
                    out.push(INSERT);
                    put_bytes(&mut out, v);
                }
            }
        }
    }
    out
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    // Counts and lengths are far below 4 GiB: a value above the codec's
    // limit never reaches a transaction.
    out.extend_from_slice(&(n as u32).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads a layout, checking every length against the bytes left.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.bytes.len() < n {
            return Err(CodecError::Truncated {
                needed: n,
                got: self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<usize, CodecError> {
        let b = self.take(4)?;
        // Widening u32 -> usize is lossless on the platforms sled supports.
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u32()?;
        self.take(n)
    }
}

/// Bytes serialized as one byte string (serde's default for a slice is a
/// sequence of numbers, one call per byte).
struct AsBytes<'a>(&'a [u8]);

impl Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// What [`AsBytes`] wrote, read back.
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// The chunks of `sets` in the format before the envelope, as an older
/// build left them.
#[cfg(test)]
pub(super) fn encode_legacy(sets: &[(&Tree, BTreeMap<IVec, Option<IVec>>)]) -> Vec<Vec<u8>> {
    let layout = layout(sets);
    let n = layout.len().div_ceil(CHUNK_BYTES);
    layout
        .chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(i, part)| {
            let flag = if i + 1 == n { LEGACY_LAST } else { LEGACY_MORE };
            [&[flag][..], part].concat()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::Fuzz;

    fn db() -> sled::Db {
        sled::Config::new().temporary(true).open().unwrap()
    }

    /// Two trees' writes: inserts (one empty value), a remove, and a value
    /// large enough to span `chunks` chunks in all.
    fn sets(db: &sled::Db, chunks: usize) -> Vec<(Tree, BTreeMap<IVec, Option<IVec>>)> {
        let big = vec![0xa5u8; (chunks - 1) * CHUNK_BYTES];
        vec![
            (
                db.open_tree("runs").unwrap(),
                BTreeMap::from([
                    (IVec::from("big"), Some(IVec::from(big))),
                    (IVec::from("empty"), Some(IVec::from(""))),
                    (IVec::from("gone"), None),
                ]),
            ),
            (
                db.open_tree("history").unwrap(),
                BTreeMap::from([(IVec::from(&[0u8, 1, 2][..]), Some(IVec::from("event")))]),
            ),
        ]
    }

    fn borrowed(
        sets: &[(Tree, BTreeMap<IVec, Option<IVec>>)],
    ) -> Vec<(&Tree, BTreeMap<IVec, Option<IVec>>)> {
        sets.iter().map(|(t, w)| (t, w.clone())).collect()
    }

    /// Decodes stored chunks as replay does: every chunk, then the joined
    /// layout.
    fn decode_all(chunks: &[Vec<u8>]) -> Result<Vec<u8>, CodecError> {
        let mut bytes = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let c = decode_chunk(c)?;
            assert_eq!(c.last, i + 1 == chunks.len());
            bytes.extend_from_slice(&c.bytes);
        }
        Ok(bytes)
    }

    fn check_decodes_to(bytes: &[u8], sets: &[(Tree, BTreeMap<IVec, Option<IVec>>)]) {
        let trees = decode_entry(bytes).unwrap();
        assert_eq!(trees.len(), sets.len());
        for (t, (tree, writes)) in trees.iter().zip(sets) {
            assert_eq!(t.name, &*tree.name());
            let expected: Vec<(&[u8], Option<&[u8]>)> =
                writes.iter().map(|(k, v)| (&k[..], v.as_deref())).collect();
            assert_eq!(t.writes, expected);
        }
    }

    #[test]
    fn an_entry_round_trips_in_one_chunk_and_in_several() {
        let db = db();
        for n in [1, 3] {
            let sets = sets(&db, n);
            let chunks = encode_entry(&borrowed(&sets));
            assert_eq!(chunks.len(), n);
            for c in &chunks {
                assert_eq!(&c[..2], &crate::codec::MAGIC, "every chunk is enveloped");
                assert!(c.len() < CHUNK_BYTES + 64, "a chunk stays near CHUNK_BYTES");
            }
            check_decodes_to(&decode_all(&chunks).unwrap(), &sets);
        }
    }

    #[test]
    fn a_chunk_before_the_envelope_is_read_as_before() {
        let db = db();
        let sets = sets(&db, 3);
        let chunks = encode_legacy(&borrowed(&sets));
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| decode_chunk(c).unwrap().legacy));
        check_decodes_to(&decode_all(&chunks).unwrap(), &sets);
    }

    #[test]
    fn every_single_bit_flip_of_a_chunk_is_detected() {
        let db = db();
        let sets = sets(&db, 1);
        let chunk = encode_entry(&borrowed(&sets)).remove(0);
        for i in 0..chunk.len() {
            for bit in 0..8 {
                let mut c = chunk.clone();
                c[i] ^= 1 << bit;
                assert!(
                    decode_chunk(&c).is_err(),
                    "flip of bit {bit} of byte {i} went undetected"
                );
            }
        }
    }

    #[test]
    fn a_huge_count_or_length_in_the_layout_is_an_error() {
        for bytes in [
            &[0xff, 0xff, 0xff, 0xff][..],
            &[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 1, 0, 0, 0, 1, b'a', 0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 7],
        ] {
            let r = decode_entry(bytes);
            assert!(
                matches!(r, Err(CodecError::Truncated { .. } | CodecError::Decode(_))),
                "{bytes:?}: {r:?}"
            );
        }
    }

    /// Small entries of both formats, stored as chunks.
    fn fuzz_corpus() -> Vec<Vec<u8>> {
        let db = db();
        let small = BTreeMap::from([
            (IVec::from("k"), None),
            (IVec::from("v"), Some(IVec::from("x"))),
        ]);
        let small = [(&db.open_tree("t").unwrap(), small)];
        let mut corpus = encode_entry(&borrowed(&sets(&db, 1)));
        corpus.extend(encode_entry(&small));
        corpus.extend(encode_legacy(&borrowed(&sets(&db, 1))));
        corpus.extend(encode_legacy(&small));
        corpus
    }

    #[test]
    fn fuzzed_chunks_give_named_errors() {
        // What a mutant chunk decodes to goes through the layout's decoder
        // too, as at open. The codec bounds its allocations by its limit.
        Fuzz::from_env("journal chunk", 40_000)
            .resealing()
            .max_allocation(crate::codec::MAX_VALUE_BYTES)
            .run(&fuzz_corpus(), |bytes| {
                let chunk = decode_chunk(bytes)?;
                decode_entry(&chunk.bytes).map(|trees| trees.len())
            });
    }

    #[test]
    fn fuzzed_layouts_give_named_errors_and_allocate_only_what_they_hold() {
        let layouts: Vec<Vec<u8>> = fuzz_corpus()
            .iter()
            .map(|c| decode_chunk(c).unwrap().bytes)
            .collect();
        // Counts of up to 2^32 trees or writes must not size a vector: the
        // vectors grow only with the writes actually read.
        Fuzz::from_env("journal layout", 40_000)
            .max_allocation(64 * 1024)
            .run(&layouts, |bytes| {
                decode_entry(bytes).map(|trees| trees.len())
            });
    }
}
