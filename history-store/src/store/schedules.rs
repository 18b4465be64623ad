//! Schedules: durable cron-style triggers that start workflow runs.
//!
//! A schedule is a [`ScheduleSpec`] (what to start, when, and what to do
//! when the previous run is still open) plus the bookkeeping of a
//! [`ScheduleRecord`]. Three trees hold them:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `schedules` | schedule number (u64 BE) | [`ScheduleRecord`] |
//! | `schedule_ids` | schedule id bytes | schedule number (u64 BE) |
//! | `schedule_due` | next fire (u64 BE) ++ number | empty: unpaused schedules with a next fire |
//! | `schedule_buffered` | number | empty: schedules holding a buffered fire |
//!
//! Numbers come from the `meta` counter `next_schedule` and are never
//! reused, so a number always names one spec: the trigger parsed outside a
//! transaction stays valid inside it. The variable-length id only ever
//! maps to the number; every scan is over fixed-width keys.
//!
//! Each fire is one transaction that re-reads the record, records the fire
//! and starts the run (through the same code as `start_workflow`). The
//! run's workflow id is `{schedule id}@{fire time, RFC 3339 UTC}`; a fire
//! whose id already exists starts nothing, so a fire is never doubled even
//! if the index and the record ever disagreed.
//!
//! Time never comes from the wall clock here: every operation takes `now`,
//! so the service's clock can be replaced in tests, and catching up after
//! downtime is the same code path as firing on time (a fire handled late).

use super::engine::{Engine, Table, TxTree};
use super::runs::{start_in_tx, RunNumber};
use super::tx::{
    abort, check_payload, decode, decode_u64, encode, finish, missing, RunIds, TxResult,
};
use super::{Inner, Store};
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::event::{Event, Payload};
use crate::ids::{RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::store::api::{IdConflictPolicy, StartOutcome};
use crate::store::records::RunRecord;
use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::Notify;

/// `meta` key of the next schedule number.
const META_NEXT_SCHEDULE: &str = "next_schedule";
/// Quarantine name for schedules whose record or trigger cannot be used.
const SCHEDULES: &str = "schedules";
/// Shortest effective catch-up window. The service always wakes a little
/// after a fire time; a smaller window would count on-time fires as
/// missed.
pub const MIN_CATCHUP_WINDOW: Duration = Duration::from_secs(1);
/// Most fire times walked one by one for a cron trigger in one catch-up
/// (per-second patterns over a long outage would otherwise hold a
/// transaction for minutes). Past it the rest of the gap is jumped over
/// and the counters become lower bounds.
const MAX_CRON_WALK: u64 = 100_000;

// ----- the public vocabulary -----

/// When a schedule fires. Times are UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// At every multiple of the interval since the Unix epoch (so
    /// `Every(1 h)` fires on the hour and `Every(1 day)` at 00:00 UTC).
    /// At least one millisecond.
    Every(Duration),
    /// A cron expression: five fields (`min hour dom month dow`), or six
    /// with seconds first, plus an optional year; `L`, `W`, `#` and
    /// `@daily`-style nicknames as in Vixie cron (parsed by `croner`).
    Cron(String),
}

/// What a fire does while the schedule's previous run is still open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OverlapPolicy {
    /// Drop the fire (counted in `skipped`).
    #[default]
    Skip,
    /// Remember one fire and start it as soon as the previous run closes;
    /// further fires while one is remembered are dropped.
    BufferOne,
    /// Start a run for every fire, however many are open.
    AllowAll,
}

/// What a schedule starts, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// Caller-chosen name, unique among schedules. Runs are named
    /// `{id}@{fire time}`.
    pub id: String,
    /// Registered workflow type of the runs.
    pub workflow_type: String,
    /// Encoded input of every run.
    pub input: Payload,
    /// When it fires.
    pub trigger: Trigger,
    /// What a fire does while the previous run is open.
    pub overlap: OverlapPolicy,
    /// How late a fire may be handled and still act (after downtime, a
    /// pause, or a slow wake-up). Older fires are skipped and counted in
    /// `missed`. Values below [`MIN_CATCHUP_WINDOW`] act as that.
    pub catchup_window: Duration,
}

impl ScheduleSpec {
    /// A spec with overlap [`OverlapPolicy::Skip`] and a one-day catch-up
    /// window: a nightly job missed during an outage still runs (once)
    /// when the process returns.
    pub fn new(
        id: impl Into<String>,
        workflow_type: impl Into<String>,
        input: Payload,
        trigger: Trigger,
    ) -> Self {
        ScheduleSpec {
            id: id.into(),
            workflow_type: workflow_type.into(),
            input,
            trigger,
            overlap: OverlapPolicy::Skip,
            catchup_window: Duration::from_secs(24 * 3600),
        }
    }

    /// With overlap policy `overlap`.
    #[must_use]
    pub fn overlap(mut self, overlap: OverlapPolicy) -> Self {
        self.overlap = overlap;
        self
    }

    /// With catch-up window `window`.
    #[must_use]
    pub fn catchup_window(mut self, window: Duration) -> Self {
        self.catchup_window = window;
        self
    }
}

/// A run a schedule started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledRun {
    /// The fire time it stands for.
    pub fire_time: Timestamp,
    /// Its workflow id, `{schedule id}@{fire time}`.
    pub workflow_id: WorkflowId,
    /// Its first run (the workflow may continue as new).
    pub run: RunId,
}

/// The store's record of a schedule (tree `schedules`), which is also what
/// `describe_schedule` and `list_schedules` return. Persisted through the
/// codec: fields and variants are append-only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// The spec it was created with (never changed).
    pub spec: ScheduleSpec,
    /// When it was created.
    pub created_at: Timestamp,
    /// Paused schedules take no action, buffered fires included.
    pub paused: bool,
    /// The earliest fire time not yet handled; `None` once a cron pattern
    /// has no future match. In the past while paused or after downtime:
    /// the next wake-up catches up from there.
    pub next_fire: Option<Timestamp>,
    /// The latest fire time acted on (started, buffered or skipped).
    pub last_fire: Option<Timestamp>,
    /// The latest run started; the overlap policy looks at its workflow.
    pub last_run: Option<ScheduledRun>,
    /// A fire waiting for the previous run to close (`BufferOne`).
    pub buffered_fire: Option<Timestamp>,
    /// Runs started.
    pub runs_started: u64,
    /// Fires dropped by the overlap policy, or folded into a later fire
    /// when several were handled at once under `Skip`/`BufferOne`.
    pub skipped: u64,
    /// Fires older than the catch-up window when handled; never acted on.
    pub missed: u64,
}

/// What one [`Store::fire_due_schedules`] pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScheduleFires {
    /// Runs started, with the id of the schedule that started each.
    pub started: Vec<(String, ScheduledRun)>,
    /// Fires buffered behind an open run.
    pub buffered: u64,
    /// Fires skipped by the overlap policy (or folded into a later one).
    pub skipped: u64,
    /// Fires older than their catch-up window.
    pub missed: u64,
}

impl ScheduleFires {
    /// Whether the pass changed anything.
    pub fn is_empty(&self) -> bool {
        self.started.is_empty() && self.buffered == 0 && self.skipped == 0 && self.missed == 0
    }
}

// ----- triggers -----

/// A trigger ready to compute fire times.
enum Parsed {
    Every(u64),
    Cron(Box<croner::Cron>),
}

impl Parsed {
    fn new(spec: &ScheduleSpec) -> Result<Parsed, StoreError> {
        match &spec.trigger {
            Trigger::Every(d) => {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                if ms == 0 {
                    return Err(invalid(spec, "the interval must be at least 1 ms"));
                }
                Ok(Parsed::Every(ms))
            }
            Trigger::Cron(expr) => croner::Cron::from_str(expr)
                .map(|c| Parsed::Cron(Box::new(c)))
                .map_err(|e| StoreError::BadCronExpression {
                    expression: expr.clone(),
                    reason: e.to_string(),
                }),
        }
    }

    /// The first fire time strictly after `t`.
    fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Parsed::Every(ms) => (t.0 / ms).checked_add(1)?.checked_mul(*ms).map(Timestamp),
            Parsed::Cron(cron) => {
                // Cron matches whole seconds: the first match after the
                // second `t` falls in is the first one after `t`.
                let secs = i64::try_from(t.0 / 1000).ok()?;
                let from = chrono::DateTime::from_timestamp(secs, 0)?;
                let next = cron.find_next_occurrence(&from, false).ok()?;
                u64::try_from(next.timestamp_millis()).ok().map(Timestamp)
            }
        }
    }

    /// The fire times in `[from, until)`: how many, and the first at or
    /// after `until` (`from` is a fire time).
    fn skip_until(&self, from: Timestamp, until: Timestamp) -> (u64, Option<Timestamp>) {
        if from >= until {
            return (0, Some(from));
        }
        match self {
            Parsed::Every(ms) => {
                let n = (until.0 - from.0).div_ceil(*ms);
                let first = n
                    .checked_mul(*ms)
                    .and_then(|d| from.0.checked_add(d))
                    .map(Timestamp);
                (n, first)
            }
            Parsed::Cron(_) => {
                let mut n = 0;
                let mut t = from;
                while t < until {
                    n += 1;
                    if n >= MAX_CRON_WALK {
                        return (n, self.next_after(Timestamp(until.0 - 1)));
                    }
                    match self.next_after(t) {
                        Some(next) => t = next,
                        None => return (n, None),
                    }
                }
                (n, Some(t))
            }
        }
    }

    /// The fire times in `[from, now]` (`from` is a fire time, at or
    /// before `now`): how many, and the latest.
    fn latest_by(&self, from: Timestamp, now: Timestamp) -> (u64, Timestamp) {
        let (n, _) = self.skip_until(from, Timestamp(now.0.saturating_add(1)));
        let latest = match self {
            Parsed::Every(ms) => Timestamp(from.0 + (n - 1) * ms),
            Parsed::Cron(_) => {
                let mut t = from;
                // Bounded by the same walk limit as `skip_until`; past
                // it, the last match at or before `now` is found directly.
                for _ in 1..n.min(MAX_CRON_WALK) {
                    match self.next_after(t) {
                        Some(next) if next <= now => t = next,
                        _ => break,
                    }
                }
                if n >= MAX_CRON_WALK {
                    t = self.previous_at_or_before(now).unwrap_or(t);
                }
                t
            }
        };
        (n, latest)
    }

    fn previous_at_or_before(&self, now: Timestamp) -> Option<Timestamp> {
        let Parsed::Cron(cron) = self else {
            return None;
        };
        let secs = i64::try_from(now.0 / 1000).ok()?;
        let from = chrono::DateTime::from_timestamp(secs, 0)?;
        let prev = cron.find_previous_occurrence(&from, true).ok()?;
        u64::try_from(prev.timestamp_millis()).ok().map(Timestamp)
    }
}

/// `t` in RFC 3339, UTC, with milliseconds only when there are any
/// (`2025-01-31T02:00:00Z`, `2025-01-31T02:00:00.250Z`).
pub fn fire_time_rfc3339(t: Timestamp) -> String {
    let dt = i64::try_from(t.0)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis);
    match dt {
        Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        // Past the year 262 143: not reachable from a real clock.
        None => format!("{}ms", t.0),
    }
}

/// The workflow id of the run a schedule starts for `fire_time`.
pub fn scheduled_workflow_id(schedule_id: &str, fire_time: Timestamp) -> WorkflowId {
    WorkflowId(format!("{schedule_id}@{}", fire_time_rfc3339(fire_time)))
}

fn invalid(spec: &ScheduleSpec, reason: &str) -> StoreError {
    StoreError::InvalidSchedule {
        id: spec.id.clone(),
        reason: reason.to_owned(),
    }
}

/// A seed for the run of a fire: a function of the schedule and the fire
/// time (splitmix64), so it is the same if the transaction is re-run.
fn fire_seed(number: u64, fire_time: Timestamp) -> u64 {
    let mut z = number
        .rotate_left(32)
        .wrapping_add(fire_time.0)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn effective_window(spec: &ScheduleSpec) -> Duration {
    spec.catchup_window.max(MIN_CATCHUP_WINDOW)
}

// ----- keys -----

fn number_key(number: u64) -> [u8; 8] {
    number.to_be_bytes()
}

fn due_key(at: Timestamp, number: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&at.0.to_be_bytes());
    k[8..].copy_from_slice(&number.to_be_bytes());
    k
}

fn parse_due_key(key: &[u8]) -> Option<(Timestamp, u64)> {
    let k: [u8; 16] = key.try_into().ok()?;
    let (at, number) = k.split_at(8);
    Some((
        Timestamp(u64::from_be_bytes(at.try_into().ok()?)),
        u64::from_be_bytes(number.try_into().ok()?),
    ))
}

fn corrupt_key(what: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        what,
        run: None,
        source: CodecError::Decode(format!("{} byte key", key.len())),
    }
}

// ----- the trees, in memory and in transactions -----

/// The schedule trees and the service's wake-up. Kept apart from the run
/// trees: nothing but this module reads them.
pub(super) struct ScheduleTrees {
    schedules: Table,
    ids: Table,
    due: Table,
    buffered: Table,
    notify: Notify,
}

impl ScheduleTrees {
    /// The trees by name, for tests that compare whole stores.
    #[cfg(test)]
    pub(super) fn tables(&self) -> [(&'static str, &Table); 4] {
        [
            ("schedules", &self.schedules),
            ("schedule_ids", &self.ids),
            ("schedule_due", &self.due),
            ("schedule_buffered", &self.buffered),
        ]
    }

    pub(super) fn open(engine: &Engine) -> Result<ScheduleTrees, StoreError> {
        Ok(ScheduleTrees {
            schedules: engine.open_table("schedules")?,
            ids: engine.open_table("schedule_ids")?,
            due: engine.open_table("schedule_due")?,
            buffered: engine.open_table("schedule_buffered")?,
            notify: Notify::new(),
        })
    }
}

fn get_record(schedules: &TxTree<'_>, number: u64) -> TxResult<Option<ScheduleRecord>> {
    match schedules.get(number_key(number))? {
        None => Ok(None),
        Some(bytes) => decode(&bytes, "schedule", None).map(Some).map_err(abort),
    }
}

/// Writes `record` and keeps the two indexes equal to what it says: a due
/// entry iff unpaused with a next fire, a buffered entry iff it holds one.
/// `old` is the record as read (to drop its due entry).
fn put_record(
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

fn number_of(ids: &TxTree<'_>, id: &str) -> TxResult<u64> {
    match ids.get(id.as_bytes())? {
        None => Err(abort(StoreError::ScheduleNotFound { id: id.to_owned() })),
        Some(bytes) => decode_u64(&bytes, "schedule id", None).map_err(abort),
    }
}

/// The trees one fire writes.
struct FireTx<'a> {
    meta: &'a TxTree<'a>,
    workflow_ids: &'a TxTree<'a>,
    runs: &'a TxTree<'a>,
    history: &'a TxTree<'a>,
    ready: &'a TxTree<'a>,
    schedules: &'a TxTree<'a>,
    due: &'a TxTree<'a>,
    buffered: &'a TxTree<'a>,
    run_ids: &'a RunIds,
}

/// What one fire transaction did.
#[derive(Default)]
struct Step {
    started: Option<ScheduledRun>,
    buffered: u64,
    skipped: u64,
    missed: u64,
}

impl Step {
    fn add_to(self, id: &str, fires: &mut ScheduleFires) {
        if let Some(run) = self.started {
            fires.started.push((id.to_owned(), run));
        }
        fires.buffered += self.buffered;
        fires.skipped += self.skipped;
        fires.missed += self.missed;
    }
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
fn step(tx: &FireTx<'_>, number: u64, trigger: &Parsed, now: Timestamp) -> TxResult<Option<Step>> {
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
        Some(t) => {
            let (folded, fire_time) = match record.spec.overlap {
                OverlapPolicy::AllowAll => (1, t),
                OverlapPolicy::Skip | OverlapPolicy::BufferOne => trigger.latest_by(t, now),
            };
            // Fires handled together count once; the rest were folded in.
            record.skipped += folded - 1;
            out.skipped += folded - 1;
            let open =
                record.spec.overlap != OverlapPolicy::AllowAll && previous_open(tx, &record)?;
            if !open {
                let (run, started) = start_fire(tx, number, &record, fire_time, now)?;
                if started {
                    record.runs_started += 1;
                    out.started = Some(run.clone());
                }
                record.last_run = Some(run);
            } else if record.spec.overlap == OverlapPolicy::BufferOne
                && record.buffered_fire.is_none()
            {
                record.buffered_fire = Some(fire_time);
                out.buffered = 1;
            } else {
                record.skipped += 1;
                out.skipped += 1;
            }
            record.last_fire = Some(fire_time);
            record.next_fire = trigger.next_after(fire_time);
        }
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

// ----- operations -----

impl Inner {
    fn schedule_trees(&self) -> &ScheduleTrees {
        &self.schedules
    }

    pub(super) fn create_schedule(
        &self,
        spec: ScheduleSpec,
        now: Timestamp,
    ) -> Result<ScheduleRecord, StoreError> {
        if spec.id.is_empty() {
            return Err(invalid(&spec, "the id is empty"));
        }
        if spec.workflow_type.is_empty() {
            return Err(invalid(&spec, "the workflow type is empty"));
        }
        let limit = self.config.max_payload_bytes;
        check_payload(spec.input.len(), limit)?;
        check_payload(spec.id.len() + spec.workflow_type.len(), limit)?;
        let trigger = Parsed::new(&spec)?;
        let Some(next_fire) = trigger.next_after(now) else {
            return Err(invalid(&spec, "the trigger never fires after now"));
        };
        let record = ScheduleRecord {
            spec,
            created_at: now,
            paused: false,
            next_fire: Some(next_fire),
            last_fire: None,
            last_run: None,
            buffered_fire: None,
            runs_started: 0,
            skipped: 0,
            missed: 0,
        };
        let s = self.schedule_trees();
        let id = record.spec.id.as_bytes();
        finish(self.trees.engine.transaction(
            [&self.trees.meta, &s.ids, &s.schedules, &s.due, &s.buffered],
            |[meta, ids, schedules, due, buffered]| {
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
                put_record(schedules, due, buffered, number, None, &record)
            },
        ))?;
        s.notify.notify_one();
        Ok(record)
    }

    /// Sets `paused` on the schedule `id`; returns the record written.
    pub(super) fn set_schedule_paused(
        &self,
        id: &str,
        paused: bool,
    ) -> Result<ScheduleRecord, StoreError> {
        let s = self.schedule_trees();
        let record = finish(self.trees.engine.transaction(
            [&s.ids, &s.schedules, &s.due, &s.buffered],
            |[ids, schedules, due, buffered]| {
                let number = number_of(ids, id)?;
                let Some(old) = get_record(schedules, number)? else {
                    return Err(abort(missing("schedule", None)));
                };
                let mut record = old.clone();
                record.paused = paused;
                put_record(schedules, due, buffered, number, Some(&old), &record)?;
                Ok(record)
            },
        ))?;
        // A resumed schedule may be due at once (catching up).
        s.notify.notify_one();
        Ok(record)
    }

    pub(super) fn delete_schedule(&self, id: &str) -> Result<(), StoreError> {
        let s = self.schedule_trees();
        finish(self.trees.engine.transaction(
            [&s.ids, &s.schedules, &s.due, &s.buffered],
            |[ids, schedules, due, buffered]| {
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
            },
        ))?;
        s.notify.notify_one();
        Ok(())
    }

    pub(super) fn describe_schedule(&self, id: &str) -> Result<ScheduleRecord, StoreError> {
        let s = self.schedule_trees();
        let Some(number) = s.ids.get(id.as_bytes())? else {
            return Err(StoreError::ScheduleNotFound { id: id.to_owned() });
        };
        let number = decode_u64(&number, "schedule id", None)?;
        match s.schedules.get(number_key(number))? {
            None => Err(missing("schedule", None)),
            Some(bytes) => decode(&bytes, "schedule", None),
        }
    }

    pub(super) fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.schedule_trees().schedules.iter() {
            let (_, bytes) = item?;
            out.push(decode(&bytes, "schedule", None)?);
        }
        Ok(out)
    }

    pub(super) fn next_schedule_due(&self) -> Result<Option<Timestamp>, StoreError> {
        for key in self.schedule_trees().due.iter().keys() {
            let key = key?;
            match parse_due_key(&key) {
                Some((at, number)) if !self.quarantine.contains(SCHEDULES, &number_key(number)) => {
                    return Ok(Some(at))
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Numbers of the schedules with something to do at `now`: due ones
    /// and ones holding a buffered fire, minus quarantined ones.
    fn schedules_to_visit(&self, now: Timestamp) -> Result<BTreeSet<u64>, StoreError> {
        let s = self.schedule_trees();
        let mut numbers = BTreeSet::new();
        for key in s.due.range(..keys::time_upper_bound(now)).keys() {
            let key = key?;
            match parse_due_key(&key) {
                Some((_, number)) => {
                    numbers.insert(number);
                }
                None => tracing::warn!(
                    error = %corrupt_key("schedule due key", &key),
                    "skipping a malformed schedule index key"
                ),
            }
        }
        for key in s.buffered.iter().keys() {
            let key = key?;
            match <[u8; 8]>::try_from(&key[..]) {
                Ok(number) => {
                    numbers.insert(u64::from_be_bytes(number));
                }
                Err(_) => tracing::warn!(
                    error = %corrupt_key("schedule buffered key", &key),
                    "skipping a malformed schedule index key"
                ),
            }
        }
        numbers.retain(|n| !self.quarantine.contains(SCHEDULES, &number_key(*n)));
        Ok(numbers)
    }

    pub(super) fn fire_due_schedules(&self, now: Timestamp) -> Result<ScheduleFires, StoreError> {
        let mut fires = ScheduleFires::default();
        for number in self.schedules_to_visit(now)? {
            match self.advance_schedule(number, now, &mut fires) {
                Ok(()) => {}
                Err(e @ (StoreError::Corrupt { .. } | StoreError::BadCronExpression { .. })) => {
                    tracing::warn!(error = %e, schedule = number, "skipping a schedule that cannot be fired");
                    self.quarantine.add(SCHEDULES, &number_key(number));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(fires)
    }

    /// Steps one schedule until nothing is left to do at `now`; each step
    /// commits on its own, so an `AllowAll` catch-up of many fires is many
    /// small transactions.
    fn advance_schedule(
        &self,
        number: u64,
        now: Timestamp,
        fires: &mut ScheduleFires,
    ) -> Result<(), StoreError> {
        let s = self.schedule_trees();
        let Some(bytes) = s.schedules.get(number_key(number))? else {
            return Ok(());
        };
        let record: ScheduleRecord = decode(&bytes, "schedule", None)?;
        // The spec of a number never changes, so it is parsed once here.
        let trigger = Parsed::new(&record.spec)?;
        let t = &self.trees;
        loop {
            let done = finish(t.engine.transaction(
                [
                    &t.meta,
                    &t.workflow_ids,
                    &t.runs,
                    &t.history,
                    &t.ready,
                    &s.schedules,
                    &s.due,
                    &s.buffered,
                ],
                |[meta, workflow_ids, runs, history, ready, schedules, due, buffered]| {
                    let tx = FireTx {
                        meta,
                        workflow_ids,
                        runs,
                        history,
                        ready,
                        schedules,
                        due,
                        buffered,
                        run_ids: &t.run_ids,
                    };
                    step(&tx, number, &trigger, now)
                },
            ))?;
            let Some(step) = done else {
                return Ok(());
            };
            if let Some(run) = &step.started {
                self.ready_queue.push(run.run);
            }
            step.add_to(&record.spec.id, fires);
        }
    }

    /// Runs whose closing lets a buffered fire start.
    pub(super) fn schedule_blockers(&self) -> Result<Vec<RunId>, StoreError> {
        let s = self.schedule_trees();
        let mut runs = Vec::new();
        for key in s.buffered.iter().keys() {
            let key = key?;
            if self.quarantine.contains(SCHEDULES, &key) {
                continue;
            }
            let Some(bytes) = s.schedules.get(&key)? else {
                continue;
            };
            let record: ScheduleRecord = decode(&bytes, "schedule", None)?;
            if record.paused {
                continue;
            }
            if let Some(last) = &record.last_run {
                if let Some((run, _)) = self.latest_run(&last.workflow_id)? {
                    runs.push(run);
                }
            }
        }
        Ok(runs)
    }
}

// ----- the public API -----

/// Schedules. Kept here rather than in `mod.rs` beside the rest of the
/// API so that the schedule code reads in one place.
impl Store {
    /// Creates a schedule from `spec`. Its first fire is the first fire
    /// time strictly after `now`.
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `ScheduleExists`, `BadCronExpression`, `InvalidSchedule` (empty id
    /// or type, a zero interval, a pattern that never fires),
    /// `PayloadTooLarge`; nothing is written on error.
    pub fn create_schedule(
        &self,
        spec: ScheduleSpec,
        now: Timestamp,
    ) -> Result<ScheduleRecord, StoreError> {
        self.inner.create_schedule(spec, now)
    }

    /// Pauses the schedule `id`: it takes no action (no fire, no buffered
    /// start) until resumed. Pausing a paused schedule changes nothing.
    ///
    /// # Errors
    /// `ScheduleNotFound`.
    pub fn pause_schedule(&self, id: &str) -> Result<ScheduleRecord, StoreError> {
        self.inner.set_schedule_paused(id, true)
    }

    /// Resumes the schedule `id`. Fires that came while it was paused are
    /// handled like fires missed while the process was down: those within
    /// the catch-up window of the next [`Store::fire_due_schedules`] act
    /// per the overlap policy, older ones are counted in `missed`.
    ///
    /// # Errors
    /// `ScheduleNotFound`.
    pub fn resume_schedule(&self, id: &str) -> Result<ScheduleRecord, StoreError> {
        self.inner.set_schedule_paused(id, false)
    }

    /// Deletes the schedule `id` (a buffered fire with it). Runs it
    /// started are not touched. The id can then be used again.
    ///
    /// # Errors
    /// `ScheduleNotFound`.
    pub fn delete_schedule(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_schedule(id)
    }

    /// The record of schedule `id`: spec, next and last fire, last run,
    /// counters.
    ///
    /// # Errors
    /// `ScheduleNotFound`, `Corrupt`.
    pub fn describe_schedule(&self, id: &str) -> Result<ScheduleRecord, StoreError> {
        self.inner.describe_schedule(id)
    }

    /// Every schedule, in creation order.
    ///
    /// # Errors
    /// `Corrupt`, `Storage`.
    pub fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.inner.list_schedules()
    }

    /// The earliest next fire among unpaused schedules (possibly in the
    /// past), so the schedule service can sleep until then.
    ///
    /// # Errors
    /// `Storage`.
    pub fn next_schedule_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_schedule_due()
    }

    /// Handles everything schedules have to do at `now`, each fire in one
    /// transaction:
    ///
    /// - a buffered fire whose previous run has closed starts;
    /// - due fires older than the schedule's catch-up window are skipped
    ///   and counted in `missed`;
    /// - the remaining due fires act per the overlap policy: with
    ///   `AllowAll` each starts a run; with `Skip` and `BufferOne` they
    ///   fold into the latest (the others count as `skipped`), which
    ///   starts a run if the previous one is closed, and otherwise is
    ///   dropped (`Skip`) or buffered (`BufferOne`, when nothing is
    ///   buffered yet).
    ///
    /// A run is named `{schedule id}@{fire time}` (RFC 3339, UTC) and
    /// starts at `now` with the schedule's input. Paused schedules are
    /// left alone. A schedule whose record cannot be decoded is logged
    /// and skipped until the store is reopened.
    ///
    /// Not durable until [`Store::durable`] returns (a crash before that
    /// loses the fire and the run together, and the next pass fires
    /// again).
    ///
    /// # Errors
    /// `Storage`.
    pub fn fire_due_schedules(&self, now: Timestamp) -> Result<ScheduleFires, StoreError> {
        self.inner.fire_due_schedules(now)
    }

    /// The runs that buffered fires wait on: when one closes, the next
    /// [`Store::fire_due_schedules`] starts the buffered fire. The
    /// schedule service waits on these with [`Store::wait_closed`].
    ///
    /// # Errors
    /// `Corrupt`, `Storage`.
    pub fn schedule_blockers(&self) -> Result<Vec<RunId>, StoreError> {
        self.inner.schedule_blockers()
    }

    /// Notified when a schedule is created, paused, resumed or deleted, so
    /// the service recomputes when it must wake.
    pub fn schedule_notify(&self) -> &Notify {
        &self.inner.schedules.notify
    }
}
