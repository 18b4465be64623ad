//! Activation leases: a lease on a run with work, taken with the inbox items
//! it is to handle, and given back without a commit.

use super::tables::{abort, decode, get_run, missing, put_run, TxResult};
use crate::error::StoreError;
use crate::ids::{LeaseToken, RunId};
use crate::keys;
use crate::store::api::Activation;
use crate::store::engine::TxTree;
use crate::store::records::RunLease;

/// Leases `run` to `token` of this `epoch` if it has work and no task of
/// this epoch holds it, reading its inbox in the same transaction: the
/// task then matches the record exactly, and a corrupt item aborts the
/// claim instead of leaving a lease nobody holds a token for.
pub(in crate::store) fn claim(
    (runs, inbox, ready): (&TxTree<'_>, &TxTree<'_>, &TxTree<'_>),
    run: RunId,
    token: LeaseToken,
    epoch: u64,
) -> TxResult<Option<Activation>> {
    let Some(mut record) = get_run(runs, run)? else {
        return Ok(None);
    };
    if !record.is_ready() || record.lease.is_some_and(|l| l.epoch == epoch) {
        return Ok(None);
    }
    let mut items = Vec::new();
    for n in record.inbox_head..record.inbox_tail {
        let Some(bytes) = inbox.get(keys::run_seq_key(run, n))? else {
            return Err(abort(missing("inbox", Some(run))));
        };
        items.push(decode(&bytes, "inbox", Some(run)).map_err(abort)?);
    }
    record.lease = Some(RunLease { token, epoch });
    put_run(runs, ready, run, &record)?;
    Ok(Some(Activation {
        run,
        token,
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
    epoch: u64,
    failure: &Option<String>,
) -> TxResult<()> {
    let Some(mut record) = get_run(runs, run)? else {
        return Err(abort(StoreError::RunNotFound { run }));
    };
    if !record.admits_task(token, epoch) {
        return Err(abort(StoreError::LeaseLost { run }));
    }
    record.lease = None;
    record.last_task_failure = failure.clone();
    put_run(runs, ready, run, &record)
}
