//! The schedule service's operations: each runs its transaction
//! (`transitions::schedules`) and wakes whoever waits, and the public API
//! over them.

use super::{
    corrupt_key, invalid, Parsed, ScheduleFires, ScheduleRecord, ScheduleSpec, ScheduleTrees,
    TriggerOutcome, SCHEDULES,
};
use crate::error::StoreError;
use crate::ids::{RunId, Timestamp};
use crate::keys;
use crate::store::transitions::schedules::{self, number_key, parse_due_key, FireTx, Step};
use crate::store::tx::{check_payload, decode, decode_u64, finish, missing};
use crate::store::{Inner, Store};
use std::collections::BTreeSet;
use tokio::sync::Notify;

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
        finish(self.trees.engine.transaction(
            [&self.trees.meta, &s.ids, &s.schedules, &s.due, &s.buffered],
            |[meta, ids, schedules, due, buffered]| {
                schedules::create((meta, ids, schedules, due, buffered), &record)
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
                schedules::set_paused((ids, schedules, due, buffered), id, paused)
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
                schedules::delete((ids, schedules, due, buffered), id)
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
                        run_ids: &*t.run_ids,
                    };
                    schedules::step(&tx, number, &trigger, now)
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

    pub(super) fn trigger_schedule(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<TriggerOutcome, StoreError> {
        let s = self.schedule_trees();
        let t = &self.trees;
        let (outcome, started) = finish(t.engine.transaction(
            [
                &t.meta,
                &t.workflow_ids,
                &t.runs,
                &t.history,
                &t.ready,
                &s.ids,
                &s.schedules,
                &s.due,
                &s.buffered,
            ],
            |[meta, workflow_ids, runs, history, ready, ids, schedules, due, buffered]| {
                let number = schedules::number_of(ids, id)?;
                let tx = FireTx {
                    meta,
                    workflow_ids,
                    runs,
                    history,
                    ready,
                    schedules,
                    due,
                    buffered,
                    run_ids: &*t.run_ids,
                };
                schedules::trigger(&tx, number, id, now)
            },
        ))?;
        if let (TriggerOutcome::Started(run), true) = (&outcome, started) {
            self.ready_queue.push(run.run);
        }
        // A buffered fire gives the service a run to wait on.
        s.notify.notify_one();
        Ok(outcome)
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

/// Schedules. Kept with the schedule code rather than in the store's
/// `mod.rs` beside the rest of the API so that it reads in one place.
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

    /// Fires schedule `id` now, at `now`, whatever its next fire time and
    /// paused or not: the fire acts as one of the schedule's own would
    /// under its overlap policy. With `AllowAll`, or when the previous
    /// run is closed, it starts a run named `{id}@{now}`; otherwise
    /// `Skip` drops it (counted in `skipped`) and `BufferOne` remembers it
    /// (if nothing is remembered yet; else drops it) to start when the
    /// previous run closes, which a paused schedule waits to be resumed
    /// for. The schedule's `next_fire` is unchanged. The outcome says
    /// which happened.
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `ScheduleNotFound`, `Corrupt`, `Storage`; nothing is written on
    /// error.
    pub fn trigger_schedule(&self, id: &str, now: Timestamp) -> Result<TriggerOutcome, StoreError> {
        self.inner.trigger_schedule(id, now)
    }

    /// Notified when a schedule is created, paused, resumed or deleted, so
    /// the service recomputes when it must wake.
    pub fn schedule_notify(&self) -> &Notify {
        &self.inner.schedules.notify
    }
}
