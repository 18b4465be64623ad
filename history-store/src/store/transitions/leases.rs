//! Activation leases: a lease on a run with work, taken with the inbox items
//! it is to handle, and given back without a commit; and the owners that
//! hold them.
//!
//! # Owners
//!
//! Every open store is an *owner*, named by the store epoch it took at
//! open (a counter in `meta`, bumped in a transaction, so two stores
//! opening at once over a shared storage never get the same one). A lease
//! on a run names its owner and a fencing token ([`RunLease`]); an
//! activity attempt's `activity_deadlines` entry names them too
//! (`activities::deadline_value`).
//!
//! How a lease of *another* owner counts depends on the storage:
//!
//! - **Alone** (sled: a file lock admits one process; an unshared
//!   [`MemoryStorage`](crate::MemoryStorage)): the storage guarantees that
//!   every other owner is gone, so their leases are void at once. A store
//!   reopened after a crash takes every run over immediately and fails
//!   every attempt still marked running (`store::recovery`), as it always
//!   has, and nothing is written per owner: the single-process path costs
//!   what it did.
//! - **Shared** (several stores over one storage, as several processes
//!   over one database): another owner may be alive and busy, merely slow,
//!   or dead, and no store can tell which. So each owner keeps a record in
//!   `meta` (`owner/` ++ id, value: the time its leases expire) which it
//!   renews every third of [`StoreConfig::lease_duration`], and another
//!   owner's lease stands until that time passes ([`owner_alive`]). Only
//!   then may the run be claimed again, and only then are the owner's
//!   running attempts failed (`store::owners`). A reopened process is a
//!   new owner and waits for its predecessor's leases like everyone else:
//!   it cannot prove that the predecessor is gone rather than paused.
//!
//! Why one renewal per owner rather than an expiry in every lease: the
//! hot path (claim, commit) then writes nothing it did not write before,
//! and one write per store every few seconds keeps all of its leases,
//! however long its activations and attempts run. The price: a store that
//! is alive keeps a run it has stopped working on (a hung activation)
//! until it drops the lease itself, as a single process always did; the
//! worker's watchdog is what ends such an activation.
//!
//! Expiry needs no agreement on time beyond clocks that roughly agree: a
//! lease is taken over only after its owner failed to renew for a whole
//! lease duration, and what makes a takeover safe is the token, not the
//! clock. A commit or release presents its token and is refused
//! (`LeaseLost`) once the run's lease is another owner's, and an attempt's
//! result is refused (`StaleActivity`) once its token was replaced. An
//! owner that was paused past its expiry and comes back can therefore do
//! no harm: whatever it still holds untouched it may finish, and whatever
//! was taken from it is fenced off.
//!
//! [`StoreConfig::lease_duration`]: crate::StoreConfig::lease_duration

use super::tables::{abort, decode, decode_u64, get_run, missing, put_run, TxResult};
use crate::error::StoreError;
use crate::ids::{LeaseToken, RunId, Timestamp};
use crate::keys;
use crate::store::api::Activation;
use crate::store::engine::TxTree;
use crate::store::records::{RunLease, RunRecord};

/// The store a transition acts for: its owner id and whether other owners
/// may be alive beside it (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::store) struct Owner {
    /// The store epoch it took at open.
    pub(in crate::store) id: u64,
    /// Whether it shares its storage with other live stores.
    pub(in crate::store) shared: bool,
}

/// `meta` key prefix of owner records (followed by the id, u64 BE).
pub(in crate::store) const OWNER_PREFIX: &[u8] = b"owner/";

/// `meta` key of the store epoch, bumped by every open.
pub(in crate::store) const META_EPOCH: &str = "epoch";

/// The `meta` key of owner `id`'s record.
pub(in crate::store) fn owner_key(id: u64) -> Vec<u8> {
    let mut key = OWNER_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The owner id in an owner record's key, if it is one.
pub(in crate::store) fn parse_owner_key(key: &[u8]) -> Option<u64> {
    let id = key.strip_prefix(OWNER_PREFIX)?;
    Some(u64::from_be_bytes(id.try_into().ok()?))
}

/// Whether owner `id` still holds its leases at `now`: its record exists
/// and has not expired. An owner without a record (gone, and reaped by
/// another) holds nothing.
pub(in crate::store) fn owner_alive(meta: &TxTree<'_>, id: u64, now: Timestamp) -> TxResult<bool> {
    match meta.get(owner_key(id))? {
        None => Ok(false),
        Some(bytes) => Ok(decode_u64(&bytes, "owner record", None).map_err(abort)? > now.0),
    }
}

/// Makes a new owner: bumps the epoch and, when `until` is given (a
/// shared storage), records the owner as alive until then, in the same
/// transaction.
pub(in crate::store) fn register_owner(
    meta: &TxTree<'_>,
    until: Option<Timestamp>,
) -> TxResult<u64> {
    let old = match meta.get(META_EPOCH)? {
        None => 0,
        Some(bytes) => decode_u64(&bytes, "meta", None).map_err(abort)?,
    };
    let id = old.wrapping_add(1);
    meta.insert(META_EPOCH, &id.to_be_bytes()[..])?;
    if let Some(until) = until {
        meta.insert(owner_key(id), &until.0.to_be_bytes()[..])?;
    }
    Ok(id)
}

/// Renews owner `id`'s leases until `until`. Returns whether they were
/// still held: `false` means another store found them expired (and may
/// have taken runs and failed attempts over), so the caller should say so.
pub(in crate::store) fn renew_owner(
    meta: &TxTree<'_>,
    id: u64,
    now: Timestamp,
    until: Timestamp,
) -> TxResult<bool> {
    let held = owner_alive(meta, id, now)?;
    meta.insert(owner_key(id), &until.0.to_be_bytes()[..])?;
    Ok(held)
}

/// Removes the record of owner `id` if it expired at `now` (its leases
/// are then free for anyone: no record, no lease). Returns whether it did.
pub(in crate::store) fn reap_owner(meta: &TxTree<'_>, id: u64, now: Timestamp) -> TxResult<bool> {
    if meta.get(owner_key(id))?.is_none() || owner_alive(meta, id, now)? {
        return Ok(false);
    }
    meta.delete(owner_key(id))?;
    Ok(true)
}

/// Whether an activation presenting `token` for `owner` may commit or
/// release. Alone, a leased task needs its own lease and an unleased one
/// ([`LeaseToken::UNLEASED`]) needs the run not to be leased; other
/// owners' leases are void (they are gone).
///
/// Shared, fencing is between owners: a leased task is refused while
/// another owner holds the run (it was taken over), and admitted while
/// the lease is this owner's or nobody's. Within one owner its tasks are
/// told apart as they always were, by `expected_last_seq` (the caller runs
/// one task per run at a time, and a stale one meets a moved history),
/// so a store may re-lease a run it holds (`ClaimBy::retake_own`) without
/// stranding the task that holds the older token. A run nobody holds has
/// either not moved since the task began (its commit is as good as any)
/// or moved (refused as a conflict). An unleased task still needs the run
/// not to be leased at all.
pub(in crate::store) fn admits(record: &RunRecord, token: LeaseToken, owner: Owner) -> bool {
    if !owner.shared {
        return record.admits_task(token, owner.id);
    }
    match record.lease {
        None => true,
        Some(_) if token == LeaseToken::UNLEASED => false,
        Some(l) => l.epoch == owner.id,
    }
}

/// Who claims a run's activation, and on what terms.
#[derive(Clone, Copy, Debug)]
pub(in crate::store) struct ClaimBy {
    /// The new lease's token.
    pub(in crate::store) token: LeaseToken,
    pub(in crate::store) owner: Owner,
    /// The clock other owners' leases are judged by.
    pub(in crate::store) now: Timestamp,
    /// Only a run with work (`RunRecord::is_ready`); otherwise any open
    /// run (the caller brings inbound events of its own).
    pub(in crate::store) only_if_ready: bool,
    /// Whether a run this same owner holds may be leased again: for a
    /// caller that runs one task per run at a time (the worker's
    /// dispatcher), a lease of its own is either its running task's
    /// (which still commits: see [`admits`]) or one it no longer uses (say,
    /// one left by a commit refused for a timed-out attempt), which must
    /// not strand the run while this store lives.
    pub(in crate::store) retake_own: bool,
}

/// Whether `claim` may lease `record`'s run now.
fn claimable(meta: &TxTree<'_>, record: &RunRecord, claim: ClaimBy) -> TxResult<bool> {
    let has_work = if claim.only_if_ready {
        record.is_ready()
    } else {
        record.status.is_open()
    };
    if !has_work {
        return Ok(false);
    }
    match record.lease {
        None => Ok(true),
        Some(l) if l.epoch == claim.owner.id => Ok(claim.retake_own),
        Some(_) if !claim.owner.shared => Ok(true),
        Some(l) => Ok(!owner_alive(meta, l.epoch, claim.now)?),
    }
}

/// Leases `run` as `claim` says if it has work and no live lease stands
/// in the way (see [`claimable`]), reading its inbox in the same
/// transaction: the task then matches the record exactly, and a corrupt
/// item aborts the claim instead of leaving a lease nobody holds a token
/// for.
pub(in crate::store) fn claim(
    (runs, inbox, ready, meta): (&TxTree<'_>, &TxTree<'_>, &TxTree<'_>, &TxTree<'_>),
    run: RunId,
    claim: ClaimBy,
) -> TxResult<Option<Activation>> {
    let Some(mut record) = get_run(runs, run)? else {
        return Ok(None);
    };
    if !claimable(meta, &record, claim)? {
        return Ok(None);
    }
    let mut items = Vec::new();
    for n in record.inbox_head..record.inbox_tail {
        let Some(bytes) = inbox.get(keys::run_seq_key(run, n))? else {
            return Err(abort(missing("inbox", Some(run))));
        };
        items.push(decode(&bytes, "inbox", Some(run)).map_err(abort)?);
    }
    record.lease = Some(RunLease {
        token: claim.token,
        epoch: claim.owner.id,
    });
    put_run(runs, ready, run, &record)?;
    Ok(Some(Activation {
        run,
        token: claim.token,
        inbox_upto: record.inbox_tail,
        record,
        inbox: items,
    }))
}

/// Gives back the task `token` holds on `run`, recording why it ended
/// without a commit (`failure`), so the run can be claimed again.
pub(in crate::store) fn release(
    (runs, ready): (&TxTree<'_>, &TxTree<'_>),
    run: RunId,
    token: LeaseToken,
    owner: Owner,
    failure: &Option<String>,
) -> TxResult<()> {
    let Some(mut record) = get_run(runs, run)? else {
        return Err(abort(StoreError::RunNotFound { run }));
    };
    if !admits(&record, token, owner) {
        return Err(abort(StoreError::LeaseLost { run }));
    }
    record.lease = None;
    record.last_task_failure = failure.clone();
    put_run(runs, ready, run, &record)
}
