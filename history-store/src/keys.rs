//! Fixed-width big-endian keys, so that sled's byte order is time order and
//! event order. No variable-length value ever leads a key that is range
//! scanned.

use crate::ids::{CommandSeq, RunId, Timestamp};

/// Key of a run record (`runs`, `ready`): the run number.
pub fn run_key(run: RunId) -> [u8; 8] {
    run.0.to_be_bytes()
}

/// Key of a history event or inbox item: run ++ sequence.
pub fn run_seq_key(run: RunId, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&run.0.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Key of an activity task: run ++ cmd.
pub fn task_key(run: RunId, cmd: CommandSeq) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&run.0.to_be_bytes());
    k[8..].copy_from_slice(&cmd.0.to_be_bytes());
    k
}

/// Key of an update request (`updates`): run ++ the caller's update id.
/// Never range scanned by id, so the variable-length tail is safe.
pub fn update_key(run: RunId, update_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + update_id.len());
    k.extend_from_slice(&run.0.to_be_bytes());
    k.extend_from_slice(update_id.as_bytes());
    k
}

/// Key of a time index entry (`timers`, `activity_ready`,
/// `activity_deadlines`): time ++ run ++ cmd.
pub fn time_key(at: Timestamp, run: RunId, cmd: CommandSeq) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..8].copy_from_slice(&at.0.to_be_bytes());
    k[8..16].copy_from_slice(&run.0.to_be_bytes());
    k[16..].copy_from_slice(&cmd.0.to_be_bytes());
    k
}

/// Key that sorts after every time key at or before `at`: the exclusive
/// upper bound of a "due by `at`" scan.
pub fn time_upper_bound(at: Timestamp) -> [u8; 8] {
    at.0.saturating_add(1).to_be_bytes()
}

/// Longest assignee a human task may have: its length leads the
/// `human_tasks` key as a u16.
pub const MAX_ASSIGNEE_BYTES: usize = u16::MAX as usize;

/// Prefix of every `human_tasks` key of `assignee`: its length (u16 BE),
/// then its bytes, so one assignee's tasks never interleave with another's
/// whose name it prefixes. `None` past [`MAX_ASSIGNEE_BYTES`].
pub fn assignee_prefix(assignee: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(assignee.len()).ok()?;
    let mut k = Vec::with_capacity(2 + assignee.len() + 12);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(assignee);
    Some(k)
}

/// Key of an open human task (`human_tasks`): assignee prefix ++ run ++
/// cmd. `None` past [`MAX_ASSIGNEE_BYTES`].
pub fn human_task_key(assignee: &[u8], run: RunId, cmd: CommandSeq) -> Option<Vec<u8>> {
    let mut k = assignee_prefix(assignee)?;
    k.extend_from_slice(&task_key(run, cmd));
    Some(k)
}

/// Parses a `human_task_key` into assignee bytes, run and cmd.
pub fn parse_human_task_key(key: &[u8]) -> Result<(&[u8], RunId, CommandSeq), BadKey> {
    let bad = |expected| BadKey {
        expected,
        found: key.len(),
    };
    let len_bytes: [u8; 2] = key
        .get(..2)
        .and_then(|b| b.try_into().ok())
        .ok_or(bad(14))?;
    let len = usize::from(u16::from_be_bytes(len_bytes));
    if key.len() != 2 + len + 12 {
        return Err(bad(2 + len + 12));
    }
    let (run, cmd) = parse_task_key(&key[2 + len..])?;
    Ok((&key[2..2 + len], run, cmd))
}

/// A key that has the wrong length for its tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadKey {
    /// Expected length.
    pub expected: usize,
    /// Length found.
    pub found: usize,
}

fn fixed<const N: usize>(key: &[u8]) -> Result<[u8; N], BadKey> {
    key.try_into().map_err(|_| BadKey {
        expected: N,
        found: key.len(),
    })
}

fn u64_at(k: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&k[at..at + 8]);
    u64::from_be_bytes(b)
}

fn u32_at(k: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&k[at..at + 4]);
    u32::from_be_bytes(b)
}

/// Parses a `run_key`.
pub fn parse_run_key(key: &[u8]) -> Result<RunId, BadKey> {
    let k = fixed::<8>(key)?;
    Ok(RunId(u64::from_be_bytes(k)))
}

/// Parses a `run_seq_key`.
pub fn parse_run_seq_key(key: &[u8]) -> Result<(RunId, u64), BadKey> {
    let k = fixed::<16>(key)?;
    Ok((RunId(u64_at(&k, 0)), u64_at(&k, 8)))
}

/// Parses a `task_key`.
pub fn parse_task_key(key: &[u8]) -> Result<(RunId, CommandSeq), BadKey> {
    let k = fixed::<12>(key)?;
    Ok((RunId(u64_at(&k, 0)), CommandSeq(u32_at(&k, 8))))
}

/// Parses a `time_key`.
pub fn parse_time_key(key: &[u8]) -> Result<(Timestamp, RunId, CommandSeq), BadKey> {
    let k = fixed::<20>(key)?;
    Ok((
        Timestamp(u64_at(&k, 0)),
        RunId(u64_at(&k, 8)),
        CommandSeq(u32_at(&k, 16)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_time_then_run() {
        let a = time_key(Timestamp(5), RunId(9), CommandSeq(1));
        let b = time_key(Timestamp(6), RunId(1), CommandSeq(1));
        assert!(a < b, "time leads the key");
        assert_eq!(
            parse_time_key(&a).unwrap(),
            (Timestamp(5), RunId(9), CommandSeq(1))
        );
        assert!(a.as_slice() < time_upper_bound(Timestamp(5)).as_slice());
        assert!(b.as_slice() >= time_upper_bound(Timestamp(5)).as_slice());
        assert_eq!(
            parse_run_seq_key(&run_seq_key(RunId(3), 300)).unwrap(),
            (RunId(3), 300)
        );
        assert_eq!(
            parse_task_key(&task_key(RunId(3), CommandSeq(7))).unwrap(),
            (RunId(3), CommandSeq(7))
        );
        assert_eq!(
            parse_run_key(&run_key(RunId(u64::MAX))).unwrap(),
            RunId(u64::MAX)
        );
        assert_eq!(
            parse_run_key(&[1, 2, 3]),
            Err(BadKey {
                expected: 8,
                found: 3
            })
        );
    }

    #[test]
    fn human_task_keys_group_by_assignee() {
        let a = human_task_key(b"ann", RunId(9), CommandSeq(2)).unwrap();
        let b = human_task_key(b"anna", RunId(1), CommandSeq(1)).unwrap();
        let pa = assignee_prefix(b"ann").unwrap();
        assert!(a.starts_with(&pa));
        assert!(
            !b.starts_with(&pa),
            "a longer name is not under a prefix of it"
        );
        assert_eq!(
            parse_human_task_key(&a).unwrap(),
            (&b"ann"[..], RunId(9), CommandSeq(2))
        );
        assert!(parse_human_task_key(&a[..a.len() - 1]).is_err());
        assert!(parse_human_task_key(&[0]).is_err());
        assert!(assignee_prefix(&vec![b'x'; MAX_ASSIGNEE_BYTES + 1]).is_none());
    }

    #[test]
    fn run_seq_keys_sort_numerically() {
        assert!(run_seq_key(RunId(1), 255) < run_seq_key(RunId(1), 256));
        assert!(run_seq_key(RunId(1), u64::MAX) < run_seq_key(RunId(2), 0));
    }
}
