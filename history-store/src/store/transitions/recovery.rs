//! Activity attempts orphaned by an earlier process (or, over a shared
//! storage, by a store whose leases expired): each one is failed as its
//! deadline would have failed it, with its retry claimable at once.
//! Why, and when the rule would have to change, is told where the store
//! applies it at open (`store::recovery`).

use super::activities::{deadline_owner, deadline_token, fail_attempt_at};
use super::tables::{decode, TaskTx, TxResult};
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::event::{Failure, TimeoutKind};
use crate::ids::{RunId, Timestamp};
use crate::keys;
use crate::store::api::ActivityResolution;
use crate::store::engine::Bytes;
use crate::store::records::{ActivityState, ActivityTaskRecord};

/// What became of one `activity_deadlines` entry.
pub(in crate::store) enum Orphan {
    Failed(RunId, ActivityResolution),
    /// Stale index entry, removed.
    Stale,
    /// Run by an owner that is not the one being recovered; left alone.
    Alive,
    /// Unreadable; nothing written for it.
    Corrupt(StoreError),
}

/// Which running attempts are orphans.
#[derive(Clone, Copy, Debug)]
pub(in crate::store) enum Orphans {
    /// Every one: the storage admits one store at a time, so whoever ran
    /// them is gone.
    All,
    /// Those of owner `.0` (a store over a shared storage whose leases
    /// expired; the caller checked), and those that name no owner.
    Of(u64),
}

/// Fails the attempt behind one `activity_deadlines` key, if that attempt
/// is still the one running and `which` counts it as an orphan.
pub(in crate::store) fn orphan(
    tx: &TaskTx<'_>,
    key: &Bytes,
    which: Orphans,
    now: Timestamp,
) -> TxResult<Orphan> {
    let Some(value) = tx.deadlines.get(key)? else {
        return Ok(Orphan::Stale);
    };
    if let (Orphans::Of(dead), Some(owner)) = (which, deadline_owner(&value)) {
        if owner != dead {
            return Ok(Orphan::Alive);
        }
    }
    let Ok((at, run, cmd)) = keys::parse_time_key(key) else {
        return Ok(Orphan::Corrupt(StoreError::Corrupt {
            what: "activity deadline key",
            run: None,
            source: CodecError::Decode(format!("{} byte key", key.len())),
        }));
    };
    let token = match deadline_token(&value, run) {
        Ok(token) => token,
        Err(e) => return Ok(Orphan::Corrupt(e)),
    };
    let Some(bytes) = tx.tasks.get(keys::task_key(run, cmd))? else {
        tx.deadlines.delete(key)?;
        return Ok(Orphan::Stale);
    };
    let task: ActivityTaskRecord = match decode(&bytes, "activity task", Some(run)) {
        Ok(task) => task,
        Err(e) => return Ok(Orphan::Corrupt(e)),
    };
    match task.state {
        ActivityState::Running {
            token: t, deadline, ..
        } if t == token && deadline == at => {}
        _ => {
            tx.deadlines.delete(key)?;
            return Ok(Orphan::Stale);
        }
    }
    tx.deadlines.delete(key)?;
    // Reported like the start-to-close timeout it would have become: the
    // attempt never closed. No deadline has passed yet, so schedule-to-close
    // still allows a retry if the policy does.
    let mut failure = Failure::timeout(TimeoutKind::StartToClose);
    failure.message = match which {
        Orphans::All => "activity attempt lost with its process (failed when the store reopened)",
        Orphans::Of(_) => "activity attempt lost with its store (its leases expired)",
    }
    .into();
    let attempt = task.attempt;
    let resolution = fail_attempt_at(tx, run, cmd, task, attempt, failure, now)?;
    Ok(Orphan::Failed(run, resolution))
}
