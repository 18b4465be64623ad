//! Telling that acknowledged data is missing, without trusting sled to say.
//!
//! sled checks a CRC on every log message it reads back, but a damaged data
//! file is not always refused: at open, sled recovers the log up to the
//! first message it cannot read and silently drops everything after it.
//! A truncated tail, a flipped byte or a page of garbage then opens as a
//! store from the past: closed runs back to running with half their
//! history, acknowledged signals and results gone, and the worker carrying
//! on from there (its first writes overwrite the evidence). The per-value
//! CRC of our codec cannot see a value that is simply absent. So the store
//! keeps, outside sled, a record of how far its acknowledged data reached,
//! and checks every run's history against the run's own record when it
//! reads it.
//!
//! # A flush mark in sled and a watermark outside it
//!
//! Each group flush of the flusher (`durability`) numbers itself: right
//! before it flushes sled, it inserts `meta/flush_mark = k` (u64 BE, one
//! more than the last mark, continuing across opens). Once the flush (and,
//! in `Fsync` mode, the fsync) has succeeded and its waiters have been
//! answered, it writes `k` to `refrain.watermark` in the store directory: a
//! 16-byte record (magic, mark, CRC32C) rewritten in place with one
//! `pwrite`.
//!
//! Everything flush `k` acknowledges was written before that flush began,
//! so before the mark in sled's log; sled recovers a prefix of its log, so
//! a recovered mark `k` implies every write that flush `k` acknowledged.
//! And the watermark is written only once flush `k` is durable, so it is
//! never ahead of what sled holds. At open, right after sled has opened
//! and before Refrain writes anything (journal replay, epoch bump,
//! recovery of orphaned attempts), the store compares the two: a mark
//! behind the watermark means sled lost writes that were acknowledged, and
//! the open fails with [`StoreError::Damaged`] naming the directory;
//! nothing is written. sled's own recovery may already have rewritten the
//! tail of its log, and it rewrites its snapshot file, while opening (it
//! cannot be told not to); Refrain adds nothing to that. Since the final
//! flush of a clean close is marked too, a data file that lost any part of
//! its tail is refused, even when what it lost was that last mark.
//!
//! Marking flushes rather than transactions keeps the cost off the commit
//! path and leaves the journal alone: one small insert per group flush,
//! whatever the number of transactions it covers, and one `pwrite` after
//! the waiters are answered. (A counter written by every transaction, and
//! a watermark written before answering, were tried first: each added
//! 7-10% to the latency of sequential workflows in `Flush` mode.) The
//! watermark is not fsynced, so no device round trip is added either. A
//! killed process keeps the write (it is in the page cache); a kill
//! between the answer and the write leaves the watermark one flush behind.
//! After a power loss the watermark may be older than the data. Either
//! only makes detection weaker for the last moments, never raises a false
//! alarm; in `Flush` mode (no fsync) a power loss can lose acknowledged
//! data itself, and then the alarm is right. A missing watermark (a store
//! created before it existed, or a fresh one) checks nothing. In `None`
//! mode only the flush at a clean close is marked.
//!
//! What happens to a refused store is the operator's decision: `refrain
//! verify` and `refrain export` read it without writing. To carry on with
//! the data as it is, they remove `refrain.watermark`; the next open then
//! checks nothing, and marks continue from what sled holds.
//!
//! # Per-run checks on read
//!
//! The watermark catches a store that lost its tail. Damage in the middle
//! can leave trees that disagree: a run record whose history is shorter,
//! an id that names a run that is gone. Every history append already
//! updates its run record in the same transaction, and the record counts
//! the events (`last_seq`) and their encoded bytes (`history_bytes`). So
//! reading a history checks both against what it found, and a mismatch
//! is [`StoreError::RunDamaged`] for that run, never a silently shorter
//! history. (A separate digest tree was considered; it would be written in
//! the same transactions and lost in the same ways as the record, and
//! history values are written once and carry their own CRC, so it would
//! add a write to every append and catch nothing more.)
//!
//! `refrain verify` ([`Store::open_read_only`](super::Store::open_read_only)
//! and [`Store::verify`](super::Store::verify), in `verify`) checks all of
//! this for every run without writing to the store.

use crate::error::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `meta` key of the number of the last flush begun.
pub(super) const META_FLUSH_MARK: &str = "flush_mark";

/// The watermark's file name in the store directory.
pub const WATERMARK_FILE: &str = "refrain.watermark";

const MAGIC: [u8; 4] = *b"RFWM";
const RECORD_LEN: usize = 16;

/// The flush mark as sled holds it.
pub(super) fn stored_mark(meta: &sled::Tree) -> Result<u64, StoreError> {
    match meta.get(META_FLUSH_MARK)? {
        None => Ok(0),
        Some(bytes) => super::tx::decode_u64(&bytes, "meta", None),
    }
}

/// The flusher's side in sled: marks each flush before it begins.
pub(super) struct FlushMarks {
    meta: sled::Tree,
    last: u64,
}

impl FlushMarks {
    /// Continues after the mark `meta` holds.
    pub(super) fn open(meta: sled::Tree) -> Result<FlushMarks, StoreError> {
        Ok(FlushMarks {
            last: stored_mark(&meta)?,
            meta,
        })
    }

    /// Marks the flush about to begin; returns its number.
    pub(super) fn before_flush(&mut self) -> Result<u64, StoreError> {
        let mark = self.last + 1;
        self.meta.insert(META_FLUSH_MARK, &mark.to_be_bytes()[..])?;
        self.last = mark;
        Ok(mark)
    }
}

/// The last flush mark known durable, handed from the flush to the
/// watermark write that follows it.
#[derive(Clone, Default)]
pub(super) struct DurableMark(Arc<AtomicU64>);

impl DurableMark {
    pub(super) fn set(&self, mark: u64) {
        self.0.store(mark, Ordering::Release);
    }
}

/// The watermark file, open for rewriting.
pub(super) struct Watermark {
    file: File,
    path: PathBuf,
    durable: DurableMark,
    written: u64,
}

impl Watermark {
    pub(super) fn open(dir: &Path) -> Result<Watermark, StoreError> {
        let path = dir.join(WATERMARK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Storage(sled::Error::Io(e)))?;
        Ok(Watermark {
            file,
            path,
            durable: DurableMark::default(),
            written: 0,
        })
    }

    /// Where the flusher says which mark is durable.
    pub(super) fn durable(&self) -> DurableMark {
        self.durable.clone()
    }

    /// Records the last mark known durable, if it moved. A failure is
    /// logged, not fatal: it only leaves detection weaker.
    pub(super) fn record(&mut self) {
        let mark = self.durable.0.load(Ordering::Acquire);
        if mark == self.written {
            return;
        }
        self.written = mark;
        let written = write_at_start(&mut self.file, &encode(mark));
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot update the store's watermark");
        }
    }
}

/// One `pwrite` where the platform has it.
#[cfg(unix)]
fn write_at_start(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, 0)
}

#[cfg(not(unix))]
fn write_at_start(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(0))?;
    file.write_all(bytes)
}

fn encode(seq: u64) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4..12].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&out[..12]);
    out[12..].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The watermark of the store in `dir`: `Ok(None)` if there is none,
/// `Err` with what is wrong if it cannot be read.
pub(super) fn read_watermark(dir: &Path) -> Result<Option<u64>, String> {
    let path = dir.join(WATERMARK_FILE);
    let mut bytes = Vec::with_capacity(RECORD_LEN);
    match File::open(&path) {
        Ok(f) => f
            .take(RECORD_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    // Created, then killed before the first flush wrote it.
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() != RECORD_LEN || bytes[..4] != MAGIC {
        return Err(format!("{} is not a watermark record", path.display()));
    }
    let crc = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    if crc32c::crc32c(&bytes[..12]) != crc {
        return Err(format!("{} fails its checksum", path.display()));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&bytes[4..12]);
    Ok(Some(u64::from_be_bytes(seq)))
}

/// What comparing sled's flush mark with the watermark found: `None`
/// if nothing is missing, else what is wrong.
pub(super) fn compare(dir: &Path, stored: u64) -> Option<String> {
    match read_watermark(dir) {
        Ok(None) => None,
        Ok(Some(mark)) if stored >= mark => None,
        Ok(Some(mark)) => Some(format!(
            "the data file ends at flush {stored}, but flush {mark} was durable: \
             what {} flushes acknowledged is missing",
            mark - stored
        )),
        Err(why) => Some(why),
    }
}

/// What the store in `dir` (opened by sled as `db`) lost of what its
/// flushes acknowledged, if anything: sled's flush mark against the
/// watermark. Reads only.
pub(super) fn missing_at_open(dir: &Path, db: &sled::Db) -> Result<Option<String>, StoreError> {
    let stored = stored_mark(&db.open_tree("meta")?)?;
    Ok(compare(dir, stored))
}

/// Refuses to go on with a store that lost acknowledged transactions.
/// Called after sled has opened `db` and before anything is written.
pub(super) fn check_at_open(dir: &Path, db: &sled::Db) -> Result<(), StoreError> {
    match missing_at_open(dir, db)? {
        None => Ok(()),
        Some(reason) => Err(StoreError::Damaged {
            path: dir.to_path_buf(),
            reason,
        }),
    }
}

/// Maps sled's report of unreadable data at open to [`StoreError::Damaged`].
pub(super) fn damaged_at_open(dir: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Storage(sled::Error::Corruption { .. }) => StoreError::Damaged {
            path: dir.to_path_buf(),
            reason: format!("sled cannot read its data file: {e}"),
        },
        e => e,
    }
}

/// Checks a run's history as read (`events` events, `bytes` encoded
/// bytes) against what its record says was appended.
pub(super) fn check_history(
    run: crate::ids::RunId,
    record: &super::records::RunRecord,
    events: u64,
    bytes: u64,
) -> Result<(), StoreError> {
    if events != record.last_seq.0 {
        return Err(StoreError::RunDamaged {
            run,
            reason: format!(
                "history holds {events} events, the run's record says {}",
                record.last_seq
            ),
        });
    }
    if bytes != record.history_bytes {
        return Err(StoreError::RunDamaged {
            run,
            reason: format!(
                "history holds {bytes} bytes, the run's record says {}",
                record.history_bytes
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_round_trips_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_watermark(dir.path()), Ok(None));
        let mut mark = Watermark::open(dir.path()).unwrap();
        assert_eq!(read_watermark(dir.path()), Ok(None), "empty file");
        mark.durable().set(7);
        mark.record();
        mark.durable().set(41);
        mark.record();
        assert_eq!(read_watermark(dir.path()), Ok(Some(41)));
        assert_eq!(compare(dir.path(), 41), None);
        assert_eq!(compare(dir.path(), 50), None);
        assert!(compare(dir.path(), 40).unwrap().contains("what 1 flushes"));

        let path = dir.path().join(WATERMARK_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[6] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(compare(dir.path(), 41).unwrap().contains("checksum"));
        std::fs::write(&path, &bytes[..9]).unwrap();
        assert!(compare(dir.path(), 41).unwrap().contains("not a watermark"));
    }
}
