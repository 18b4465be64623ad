//! Purging closed runs: a run whose retention has passed leaves the store
//! completely, in one transaction with the other runs of its batch.
//!
//! # What may go
//!
//! A run may be purged when it is closed, its retention (by its workflow
//! type, see [`RetentionPolicy`]) has passed since it closed, and its
//! parent, if it has one, is not open. A closed child of an open parent
//! is kept until the parent closes: the parent may still ask for it
//! (describe it, read its history while deciding what to do next), and
//! an operator looking at the open parent must find all of it. Open runs
//! are never touched.
//!
//! # What goes with it
//!
//! Its record (and `ready` mirror), its history, the inbox items it never
//! handled, its update requests, its open human tasks in both indexes,
//! whatever activity task or timer a damaged close left behind, and its
//! workflow id's entry in `workflow_ids` when that entry names this run.
//! A later run of the same id keeps its entry; after the latest run of an
//! id is purged, the id counts as never used (a start with
//! `UseExisting` starts a new run). Run numbers are never reused: the
//! counter in `meta` is untouched, so a later run of the id gets a number
//! of its own and the idempotency keys of purged runs never come round.
//!
//! # Why the keys come from outside
//!
//! A transaction cannot range-scan, so the shell lists each candidate's
//! keys under its run prefix (history, inbox, updates, activity tasks)
//! before the transaction. That list is complete: a closed run's tables
//! never grow (a signal, update or result for it is refused, its timers
//! and tasks went when it closed). The transaction checks each run again
//! and skips one that is gone (purged by a concurrent purge) or no longer
//! eligible; deleting a key already absent writes nothing.

use super::activities::delete_task;
use super::human_tasks::OpenHumanTask;
use super::tables::{decode, decode_u64, get_run, Tx, TxResult};
use crate::ids::{CommandSeq, RunId, Timestamp};
use crate::keys;
use crate::store::api::RunSummary;
use crate::store::engine::Bytes;
use crate::store::records::RunRecord;
use crate::store::retention::RetentionPolicy;

/// A run the shell found eligible, with the keys it holds under its run
/// prefix.
pub(in crate::store) struct PurgeItem {
    pub(in crate::store) run: RunId,
    pub(in crate::store) history: Vec<Bytes>,
    pub(in crate::store) inbox: Vec<Bytes>,
    pub(in crate::store) updates: Vec<Bytes>,
    pub(in crate::store) activity_tasks: Vec<Bytes>,
}

/// Whether `record`, on its own, may be purged at `now`: closed, and its
/// type's retention passed since it closed. (The parent is checked apart:
/// see [`purge_runs`].)
pub(in crate::store) fn expired(
    record: &RunRecord,
    policy: &RetentionPolicy,
    now: Timestamp,
) -> bool {
    if record.status.is_open() {
        return false;
    }
    let (Some(closed_at), Some(keep)) =
        (record.closed_at, policy.retention_of(&record.workflow_type))
    else {
        return false;
    };
    closed_at.saturating_add(keep) <= now
}

/// Deletes each item's run if it is still there and may still be purged
/// (closed, expired, its parent not open); returns the runs deleted, in
/// the order given.
pub(in crate::store) fn purge_runs(
    tx: &Tx<'_>,
    items: &[PurgeItem],
    policy: &RetentionPolicy,
    now: Timestamp,
) -> TxResult<Vec<RunSummary>> {
    let mut purged = Vec::with_capacity(items.len());
    for item in items {
        let Some(record) = get_run(tx.task.runs, item.run)? else {
            continue;
        };
        if !expired(&record, policy, now) || parent_open(tx, &record)? {
            continue;
        }
        delete_run(tx, item, &record)?;
        purged.push(RunSummary {
            run: item.run,
            workflow_id: record.workflow_id,
            workflow_type: record.workflow_type,
            status: record.status,
            started_at: record.started_at,
            closed_at: record.closed_at,
        });
    }
    Ok(purged)
}

/// Whether `record`'s parent is an open run (a purged or closed parent
/// holds nothing back).
pub(in crate::store) fn parent_open(tx: &Tx<'_>, record: &RunRecord) -> TxResult<bool> {
    let Some(parent) = &record.parent else {
        return Ok(false);
    };
    Ok(get_run(tx.task.runs, parent.run)?.is_some_and(|p| p.status.is_open()))
}

fn delete_run(tx: &Tx<'_>, item: &PurgeItem, record: &RunRecord) -> TxResult<()> {
    let run = item.run;
    for key in &item.history {
        tx.history.delete(key)?;
    }
    for key in &item.inbox {
        tx.task.inbox.delete(key)?;
    }
    for key in &item.updates {
        tx.updates.delete(key)?;
    }
    for key in &item.activity_tasks {
        // Through the task's own removal, so its index entry goes too.
        if let Ok((_, cmd)) = keys::parse_task_key(key) {
            delete_task(&tx.task, run, cmd)?;
        } else {
            tx.task.tasks.delete(key)?;
        }
    }
    for cmd in &record.pending_activities {
        delete_task(&tx.task, run, *cmd)?;
    }
    for timer in &record.pending_timers {
        tx.timers
            .delete(&keys::time_key(timer.fire_at, run, timer.cmd)[..])?;
    }
    delete_human_tasks(tx, run)?;
    let key = keys::run_key(run);
    tx.task.runs.delete(&key[..])?;
    tx.task.ready.delete(&key[..])?;
    let id = record.workflow_id.as_str().as_bytes();
    // A damaged entry is left as found (stored data is never deleted
    // behind an operator's back), and does not hold the batch up.
    if let Some(latest) = tx.ids.get(id)? {
        if decode_u64(&latest, "workflow id", None).is_ok_and(|latest| latest == run.0) {
            tx.ids.delete(id)?;
        }
    }
    Ok(())
}

/// Removes what is left of the run's human tasks from both indexes (a
/// closed run has none open, unless its close met damage). An undecodable
/// list goes with its run; the assignee entries it named cannot be found
/// and stay, as a damaged index entry stays elsewhere.
fn delete_human_tasks(tx: &Tx<'_>, run: RunId) -> TxResult<()> {
    let Some(bytes) = tx.run_human_tasks.remove(keys::run_key(run))? else {
        return Ok(());
    };
    let Ok(open) = decode::<Vec<OpenHumanTask>>(&bytes, "run human tasks", Some(run)) else {
        return Ok(());
    };
    for task in open {
        let cmd: CommandSeq = task.cmd;
        if let Some(key) = keys::human_task_key(task.assignee.as_bytes(), run, cmd) {
            tx.human_tasks.delete(key)?;
        }
    }
    Ok(())
}
