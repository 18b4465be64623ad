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

mod service;

use super::engine::{Engine, Table};
use crate::codec::CodecError;
use crate::error::StoreError;
use crate::event::Payload;
use crate::ids::{RunId, Timestamp, WorkflowId};
use serde::{Deserialize, Serialize};

use std::str::FromStr;
use std::time::Duration;
use tokio::sync::Notify;
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

/// What firing a schedule by hand did ([`Store::trigger_schedule`]). The
/// fire's time is the time of the trigger; it acts as a fire of the
/// schedule's own would under its overlap policy.
///
/// [`Store::trigger_schedule`]: crate::store::Store::trigger_schedule
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// The fire's run. A trigger in the same millisecond as another fire
    /// of the schedule has that fire's workflow id; its run stands for
    /// both and is not started twice.
    Started(ScheduledRun),
    /// The policy is [`OverlapPolicy::BufferOne`] and the previous run is
    /// open: the fire is remembered and starts when that run closes (and
    /// the schedule is not paused).
    Buffered {
        /// The fire's time.
        fire_time: Timestamp,
        /// The open run it waits for.
        open: ScheduledRun,
    },
    /// The policy dropped the fire (counted in `skipped`): the previous
    /// run is open and the policy is [`OverlapPolicy::Skip`], or
    /// [`OverlapPolicy::BufferOne`] with a fire already remembered.
    Skipped {
        /// The fire's time.
        fire_time: Timestamp,
        /// The open run that stopped it.
        open: ScheduledRun,
    },
}

/// What one [`Store::fire_due_schedules`] pass did.
///
/// [`Store::fire_due_schedules`]: crate::store::Store::fire_due_schedules
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
pub(in crate::store) enum Parsed {
    Every(u64),
    Cron(Box<croner::Cron>),
}

impl Parsed {
    pub(in crate::store) fn new(spec: &ScheduleSpec) -> Result<Parsed, StoreError> {
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
    pub(in crate::store) fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
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
    pub(in crate::store) fn skip_until(
        &self,
        from: Timestamp,
        until: Timestamp,
    ) -> (u64, Option<Timestamp>) {
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
    pub(in crate::store) fn latest_by(&self, from: Timestamp, now: Timestamp) -> (u64, Timestamp) {
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
pub(in crate::store) fn fire_seed(number: u64, fire_time: Timestamp) -> u64 {
    let mut z = number
        .rotate_left(32)
        .wrapping_add(fire_time.0)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(in crate::store) fn effective_window(spec: &ScheduleSpec) -> Duration {
    spec.catchup_window.max(MIN_CATCHUP_WINDOW)
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
    #[cfg(any(test, feature = "test-support"))]
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
