//! Schedules: the transactions over their tables (creating, pausing and
//! deleting one; one step of a due schedule: a fire recorded and its run
//! started through the same code as a client's start; a fire made by
//! hand). What a schedule
//! is, and the fire times its trigger computes, are `store::schedules`;
//! the table layout is described there.
//!
//! Each step re-reads the record, so a fire is acted on once however the
//! service's passes race; a fire whose workflow id already exists starts
//! nothing.

use super::start::{start_in_tx, RunNumber};
use super::tables::{abort, decode, decode_u64, encode, missing, RunNumbers, TxResult};
use crate::error::StoreError;
use crate::event::Event;
use crate::ids::{RunId, Timestamp};
use crate::keys;
use crate::store::api::{IdConflictPolicy, StartOutcome};
use crate::store::engine::TxTree;
use crate::store::records::RunRecord;
use crate::store::schedules::{
    effective_window, fire_seed, scheduled_workflow_id, OverlapPolicy, Parsed, ScheduleRecord,
    ScheduledRun, TriggerOutcome,
};

/// `meta` key of the next schedule number.
const META_NEXT_SCHEDULE: &str = "next_schedule";

// ----- keys -----

pub(in crate::store) fn number_key(number: u64) -> [u8; 8] {
    number.to_be_bytes()
}

pub(in crate::store) fn due_key(at: Timestamp, number: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&at.0.to_be_bytes());
    k[8..].copy_from_slice(&number.to_be_bytes());
    k
}

pub(in crate::store) fn parse_due_key(key: &[u8]) -> Option<(Timestamp, u64)> {
    let k: [u8; 16] = key.try_into().ok()?;
    let (at, number) = k.split_at(8);
    Some((
        Timestamp(u64::from_be_bytes(at.try_into().ok()?)),
        u64::from_be_bytes(number.try_into().ok()?),
    ))
}

pub(in crate::store) fn get_record(
    schedules: &TxTree<'_>,
    number: u64,
) -> TxResult<Option<ScheduleRecord>> {
    match schedules.get(number_key(number))? {
        None => Ok(None),
        Some(bytes) => decode(&bytes, "schedule", None).map(Some).map_err(abort),
    }
}

/// Writes `record` and keeps the two indexes equal to what it says: a due
/// entry iff unpaused with a next fire, a buffered entry iff it holds one.
/// `old` is the record as read (to drop its due entry).
pub(in crate::store) fn put_record(
    schedules: &TxTree<'_>,
    due: &TxTree<'_>,
    buffered: &TxTree<'_>,
    number: u64,
    old: Option<&ScheduleRecord>,
    record: &ScheduleRecord,
) -> TxResult<()> {
    if let Some(at) = old.and_then(|o| o.next_fire) {
        due.delete(&due_key(at, number)[..])?;
    }
    if let (false, Some(at)) = (record.paused, record.next_fire) {
        due.insert(&due_key(at, number)[..], &[][..])?;
    }
    if record.buffered_fire.is_some() {
        buffered.insert(&number_key(number)[..], &[][..])?;
    } else {
        buffered.delete(&number_key(number)[..])?;
    }
    let bytes = encode(record, "schedule", None).map_err(abort)?;
    schedules.insert(&number_key(number)[..], bytes)?;
    Ok(())
}

pub(in crate::store) fn number_of(ids: &TxTree<'_>, id: &str) -> TxResult<u64> {
    match ids.get(id.as_bytes())? {
        None => Err(abort(StoreError::ScheduleNotFound { id: id.to_owned() })),
        Some(bytes) => decode_u64(&bytes, "schedule id", None).map_err(abort),
    }
}

/// The tables one fire writes.
pub(in crate::store) struct FireTx<'a> {
    pub(in crate::store) meta: &'a TxTree<'a>,
    pub(in crate::store) workflow_ids: &'a TxTree<'a>,
    pub(in crate::store) runs: &'a TxTree<'a>,
    pub(in crate::store) history: &'a TxTree<'a>,
    pub(in crate::store) ready: &'a TxTree<'a>,
    pub(in crate::store) schedules: &'a TxTree<'a>,
    pub(in crate::store) due: &'a TxTree<'a>,
    pub(in crate::store) buffered: &'a TxTree<'a>,
    pub(in crate::store) run_ids: &'a dyn RunNumbers,
}

/// What one fire transaction did.
#[derive(Default)]
pub(in crate::store) struct Step {
    pub(in crate::store) started: Option<ScheduledRun>,
    pub(in crate::store) buffered: u64,
    pub(in crate::store) skipped: u64,
    pub(in crate::store) missed: u64,
}

/// Whether the workflow of the schedule's latest run is still open
/// (following continue-as-new: the id's latest run is the one that
/// counts).
fn previous_open(tx: &FireTx<'_>, record: &ScheduleRecord) -> TxResult<bool> {
    let Some(last) = &record.last_run else {
        return Ok(false);
    };
    let Some(latest) = tx.workflow_ids.get(last.workflow_id.as_str().as_bytes())? else {
        return Ok(false);
    };
    let run = RunId(decode_u64(&latest, "workflow id", None).map_err(abort)?);
    match tx.runs.get(keys::run_key(run))? {
        None => Err(abort(missing("run", Some(run)))),
        Some(bytes) => {
            let r: RunRecord = decode(&bytes, "run", Some(run)).map_err(abort)?;
            Ok(r.status.is_open())
        }
    }
}

/// Starts the run of `fire_time`, unless its workflow id already exists
/// (then that run stands for the fire: a fire is never doubled).
fn start_fire(
    tx: &FireTx<'_>,
    number: u64,
    record: &ScheduleRecord,
    fire_time: Timestamp,
    now: Timestamp,
) -> TxResult<(ScheduledRun, bool)> {
    let spec = &record.spec;
    let workflow_id = scheduled_workflow_id(&spec.id, fire_time);
    if let Some(existing) = tx.workflow_ids.get(workflow_id.as_str().as_bytes())? {
        let run = RunId(decode_u64(&existing, "workflow id", None).map_err(abort)?);
        let fired = ScheduledRun {
            fire_time,
            workflow_id,
            run,
        };
        return Ok((fired, false));
    }
    let started = Event::WorkflowStarted {
        workflow_type: spec.workflow_type.clone(),
        workflow_id: workflow_id.clone(),
        input: spec.input.clone(),
        seed: fire_seed(number, fire_time),
        start_time: now,
        continued_from: None,
        parent: None,
    };
    let event = encode(&started, "history", None).map_err(abort)?;
    let run_record = RunRecord::started(
        workflow_id.clone(),
        spec.workflow_type.clone(),
        now,
        event.len() as u64,
        None,
        None,
    );
    let StartOutcome { run, started } = start_in_tx(
        (tx.meta, tx.workflow_ids, tx.runs, tx.history, tx.ready),
        RunNumber::Draw(tx.run_ids),
        &workflow_id,
        IdConflictPolicy::Reject,
        &event,
        &run_record,
    )?;
    let fired = ScheduledRun {
        fire_time,
        workflow_id,
        run,
    };
    Ok((fired, started))
}

/// One step of a schedule at `now`, in one transaction: start a buffered
/// fire whose blocker closed, or handle the due fires (skip the ones older
/// than the window, then act on one fire, or on all due fires folded into
/// the latest under `Skip`/`BufferOne`). `None` when nothing is left to
/// do at `now`.
pub(in crate::store) fn step(
    tx: &FireTx<'_>,
    number: u64,
    trigger: &Parsed,
    now: Timestamp,
) -> TxResult<Option<Step>> {
    let Some(old) = get_record(tx.schedules, number)? else {
        return Ok(None);
    };
    if old.paused {
        return Ok(None);
    }
    let mut record = old.clone();
    let mut out = Step::default();

    if let Some(fire_time) = record.buffered_fire {
        if !previous_open(tx, &record)? {
            let (run, started) = start_fire(tx, number, &record, fire_time, now)?;
            record.buffered_fire = None;
            if started {
                record.runs_started += 1;
                out.started = Some(run.clone());
            }
            record.last_run = Some(run);
            put_record(
                tx.schedules,
                tx.due,
                tx.buffered,
                number,
                Some(&old),
                &record,
            )?;
            return Ok(Some(out));
        }
    }

    let Some(next) = record.next_fire.filter(|&t| t <= now) else {
        return Ok(None);
    };
    let cutoff = Timestamp(now.0.saturating_sub(
        u64::try_from(effective_window(&record.spec).as_millis()).unwrap_or(u64::MAX),
    ));
    let (missed, first) = trigger.skip_until(next, cutoff);
    record.missed += missed;
    out.missed = missed;
    match first.filter(|&t| t <= now) {
        None => record.next_fire = first,
        Some(t) => act_on_fire(tx, number, trigger, &mut record, t, now, &mut out)?,
    }
    put_record(
        tx.schedules,
        tx.due,
        tx.buffered,
        number,
        Some(&old),
        &record,
    )?;
    Ok(Some(out))
}

/// Acts on the due fire `t` (and, under `Skip`/`BufferOne`, every later
/// fire due by `now`, folded into the latest): starts its run, buffers it
/// or skips it as the overlap policy says, and moves `next_fire` past it.
fn act_on_fire(
    tx: &FireTx<'_>,
    number: u64,
    trigger: &Parsed,
    record: &mut ScheduleRecord,
    t: Timestamp,
    now: Timestamp,
    out: &mut Step,
) -> TxResult<()> {
    let (folded, fire_time) = match record.spec.overlap {
        OverlapPolicy::AllowAll => (1, t),
        OverlapPolicy::Skip | OverlapPolicy::BufferOne => trigger.latest_by(t, now),
    };
    // Fires handled together count once; the rest were folded in.
    record.skipped += folded - 1;
    out.skipped += folded - 1;
    let open = record.spec.overlap != OverlapPolicy::AllowAll && previous_open(tx, record)?;
    if !open {
        let (run, started) = start_fire(tx, number, record, fire_time, now)?;
        if started {
            record.runs_started += 1;
            out.started = Some(run.clone());
        }
        record.last_run = Some(run);
    } else if record.spec.overlap == OverlapPolicy::BufferOne && record.buffered_fire.is_none() {
        record.buffered_fire = Some(fire_time);
        out.buffered = 1;
    } else {
        record.skipped += 1;
        out.skipped += 1;
    }
    record.last_fire = Some(fire_time);
    record.next_fire = trigger.next_after(fire_time);
    Ok(())
}

/// A fire of schedule `number` at `now`, made by hand: whatever its next
/// fire time, and paused or not. It acts as a due fire would under the
/// overlap policy (start, buffer behind the open previous run, or skip),
/// and leaves `next_fire` alone: the schedule's own fires go on as
/// before. Also says whether a run was started (to queue it).
pub(in crate::store) fn trigger(
    tx: &FireTx<'_>,
    number: u64,
    id: &str,
    now: Timestamp,
) -> TxResult<(TriggerOutcome, bool)> {
    let Some(old) = get_record(tx.schedules, number)? else {
        return Err(abort(StoreError::ScheduleNotFound { id: id.to_owned() }));
    };
    let mut record = old.clone();
    let open = match record.spec.overlap {
        OverlapPolicy::AllowAll => None,
        OverlapPolicy::Skip | OverlapPolicy::BufferOne => {
            if previous_open(tx, &record)? {
                record.last_run.clone()
            } else {
                None
            }
        }
    };
    let (outcome, started) = match open {
        None => {
            let (run, started) = start_fire(tx, number, &record, now, now)?;
            if started {
                record.runs_started += 1;
            }
            record.last_run = Some(run.clone());
            (TriggerOutcome::Started(run), started)
        }
        Some(open)
            if record.spec.overlap == OverlapPolicy::BufferOne
                && record.buffered_fire.is_none() =>
        {
            record.buffered_fire = Some(now);
            let fire_time = now;
            (TriggerOutcome::Buffered { fire_time, open }, false)
        }
        Some(open) => {
            record.skipped += 1;
            let fire_time = now;
            (TriggerOutcome::Skipped { fire_time, open }, false)
        }
    };
    record.last_fire = Some(record.last_fire.map_or(now, |t| t.max(now)));
    put_record(
        tx.schedules,
        tx.due,
        tx.buffered,
        number,
        Some(&old),
        &record,
    )?;
    Ok((outcome, started))
}

/// Creates schedule `record` under a new number, refusing an id that is
/// taken (`ScheduleExists`).
pub(in crate::store) fn create(
    (meta, ids, schedules, due, buffered): (
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
    ),
    record: &ScheduleRecord,
) -> TxResult<()> {
    let id = record.spec.id.as_bytes();
    if ids.get(id)?.is_some() {
        return Err(abort(StoreError::ScheduleExists {
            id: record.spec.id.clone(),
        }));
    }
    let number = match meta.get(META_NEXT_SCHEDULE)? {
        None => 1,
        Some(bytes) => decode_u64(&bytes, "meta", None).map_err(abort)?,
    };
    meta.insert(META_NEXT_SCHEDULE, &(number + 1).to_be_bytes()[..])?;
    ids.insert(id, &number_key(number)[..])?;
    put_record(schedules, due, buffered, number, None, record)
}

/// Sets `paused` on schedule `id`; returns the record written.
pub(in crate::store) fn set_paused(
    (ids, schedules, due, buffered): (&TxTree<'_>, &TxTree<'_>, &TxTree<'_>, &TxTree<'_>),
    id: &str,
    paused: bool,
) -> TxResult<ScheduleRecord> {
    let number = number_of(ids, id)?;
    let Some(old) = get_record(schedules, number)? else {
        return Err(abort(missing("schedule", None)));
    };
    let mut record = old.clone();
    record.paused = paused;
    put_record(schedules, due, buffered, number, Some(&old), &record)?;
    Ok(record)
}

/// Deletes schedule `id` and its index entries.
pub(in crate::store) fn delete(
    (ids, schedules, due, buffered): (&TxTree<'_>, &TxTree<'_>, &TxTree<'_>, &TxTree<'_>),
    id: &str,
) -> TxResult<()> {
    let number = number_of(ids, id)?;
    if let Some(old) = get_record(schedules, number)? {
        if let Some(at) = old.next_fire {
            due.delete(&due_key(at, number)[..])?;
        }
    }
    buffered.delete(&number_key(number)[..])?;
    schedules.delete(&number_key(number)[..])?;
    ids.delete(id.as_bytes())?;
    Ok(())
}
