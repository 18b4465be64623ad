//! What the model test compares between the engines, and the invariants it
//! checks on each: the answers to operations without their lease tokens,
//! and every table of a store as lines of text, with lease tokens (which
//! differ between engines) replaced by their order of first appearance, so
//! that one token named in two places stays one name.

use crate::error::StoreError;
use crate::event::Event;
use crate::ids::{LeaseToken, RunId};
use crate::keys;
use crate::store::api::Activation;
use crate::store::engine::Table;
use crate::store::records::ActivityTask;
use crate::store::records::{ActivityState, ActivityTaskRecord, RunRecord};
use crate::store::transitions::activities::{deadline_owner, deadline_token};
use crate::store::tx::{decode, decode_u64};
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;

/// Lease tokens renamed `#0`, `#1`, ... in order of first appearance.
#[derive(Default)]
pub(super) struct Tokens(HashMap<u64, usize>);

impl Tokens {
    pub(super) fn name(&mut self, token: LeaseToken) -> String {
        let next = self.0.len();
        format!("#{}", self.0.entry(token.0).or_insert(next))
    }
}

/// An answer as compared between engines.
pub(super) fn answer<T: Debug>(r: &Result<T, StoreError>) -> String {
    format!("{r:?}")
}

/// An activation without its token.
pub(super) fn task_answer(r: &Result<Option<Activation>, StoreError>) -> String {
    match r {
        Ok(Some(t)) => {
            let mut record = t.record.clone();
            let epoch = record.lease.take().map(|l| l.epoch);
            format!(
                "Ok(task {:?} epoch {epoch:?} upto {} inbox {:?} {record:?})",
                t.run, t.inbox_upto, t.inbox
            )
        }
        Ok(None) => "Ok(None)".into(),
        Err(e) => format!("Err({e:?})"),
    }
}

/// Claimed activity tasks without their tokens and flush tickets.
pub(super) fn claims_answer(r: &Result<Vec<ActivityTask>, StoreError>) -> String {
    match r {
        Ok(tasks) => tasks
            .iter()
            .map(|t| {
                format!(
                    "{:?} {:?} {} {} attempt {} deadline {:?} hb {:?} {:?}",
                    t.run,
                    t.cmd,
                    t.workflow_id,
                    t.activity_type,
                    t.attempt,
                    t.deadline,
                    t.heartbeat_timeout,
                    t.heartbeat_details
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("Err({e:?})"),
    }
}

fn entries(table: &Table) -> Vec<(Vec<u8>, Vec<u8>)> {
    table
        .iter()
        .map(|r| {
            let (k, v) = r.expect("memory and a fresh sled store do not fail");
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Every table of `store`, one line per entry, tokens canonical. The
/// `journal` (empty between transactions) and sled's `flush_mark` are not
/// part of a store's state.
pub(super) fn snapshot(store: &Store) -> Vec<String> {
    let t = &store.inner.trees;
    let mut tokens = Tokens::default();
    let mut lines = Vec::new();
    for (k, v) in entries(&t.meta) {
        if k != b"flush_mark" {
            let n = decode_u64(&v, "meta", None).expect("meta counter");
            lines.push(format!("meta {} = {n}", String::from_utf8_lossy(&k)));
        }
    }
    for (k, v) in entries(&t.runs) {
        let run = keys::parse_run_key(&k).expect("run key");
        let mut record: RunRecord = decode(&v, "run", Some(run)).expect("run record");
        let lease = record.lease.take().map(|l| (tokens.name(l.token), l.epoch));
        lines.push(format!("runs {run:?} lease {lease:?} {record:?}"));
    }
    for (k, v) in entries(&t.activity_tasks) {
        let (run, cmd) = keys::parse_task_key(&k).expect("task key");
        let mut task: ActivityTaskRecord = decode(&v, "activity task", Some(run)).expect("task");
        let token = match &mut task.state {
            ActivityState::Running { token, .. } => {
                let name = tokens.name(*token);
                *token = LeaseToken(0);
                Some(name)
            }
            ActivityState::Scheduled { .. } => None,
        };
        lines.push(format!(
            "activity_tasks {run:?} {cmd:?} token {token:?} {task:?}"
        ));
    }
    for (k, v) in entries(&t.activity_deadlines) {
        let key = keys::parse_time_key(&k).expect("deadline key");
        let token = deadline_token(&v, key.1).expect("deadline token");
        lines.push(format!(
            "activity_deadlines {key:?} = {} owner {:?}",
            tokens.name(token),
            deadline_owner(&v)
        ));
    }
    for (name, table) in [("history", &t.history), ("inbox", &t.inbox)] {
        for (k, v) in entries(table) {
            let (run, seq) = keys::parse_run_seq_key(&k).expect("run seq key");
            let event: Event = decode(&v, name, Some(run)).expect("event");
            lines.push(format!("{name} {run:?} {seq} {event:?}"));
        }
    }
    let raw = [
        ("workflow_ids", &t.workflow_ids),
        ("ready", &t.ready),
        ("activity_ready", &t.activity_ready),
        ("timers", &t.timers),
        ("human_tasks", &t.human_tasks),
        ("run_human_tasks", &t.run_human_tasks),
        ("updates", &t.updates),
    ];
    let schedules = store.inner.schedules.tables();
    for (name, table) in raw.into_iter().chain(schedules) {
        for (k, v) in entries(table) {
            lines.push(format!("{name} {k:?} = {v:?}"));
        }
    }
    lines
}

/// Checks what must hold between the tables of `store` after every
/// operation; returns the first violation.
pub(super) fn invariants(store: &Store) -> Result<(), String> {
    let t = &store.inner.trees;
    let mut records = BTreeMap::new();
    for (k, v) in entries(&t.runs) {
        let run = keys::parse_run_key(&k).map_err(|e| format!("{e:?}"))?;
        let record: RunRecord = decode(&v, "run", Some(run)).map_err(|e| e.to_string())?;
        records.insert(run, record);
    }
    let mut history: BTreeMap<RunId, Vec<u64>> = BTreeMap::new();
    for (k, _) in entries(&t.history) {
        let (run, seq) = keys::parse_run_seq_key(&k).map_err(|e| format!("{e:?}"))?;
        history.entry(run).or_default().push(seq);
    }
    let mut inboxes: BTreeMap<RunId, Vec<u64>> = BTreeMap::new();
    for (k, _) in entries(&t.inbox) {
        let (run, n) = keys::parse_run_seq_key(&k).map_err(|e| format!("{e:?}"))?;
        inboxes.entry(run).or_default().push(n);
    }
    for (run, record) in &records {
        let seqs = history.remove(run).unwrap_or_default();
        if seqs != (1..=record.last_seq.0).collect::<Vec<_>>() {
            return Err(format!(
                "{run:?}: history seqs {seqs:?}, last_seq {}",
                record.last_seq
            ));
        }
        let inbox = inboxes.remove(run).unwrap_or_default();
        let expected: Vec<u64> = (record.inbox_head..record.inbox_tail).collect();
        if record.status.is_open() && inbox != expected {
            return Err(format!("{run:?}: inbox {inbox:?}, head..tail {expected:?}"));
        }
        if record.status.is_open() {
            for timer in &record.pending_timers {
                let key = keys::time_key(timer.fire_at, *run, timer.cmd);
                if t.timers.get(key).expect("read").is_none() {
                    return Err(format!("{run:?}: pending {timer:?} has no timers entry"));
                }
            }
        }
    }
    if let Some((run, _)) = history.into_iter().next() {
        return Err(format!("history of {run:?}, which has no record"));
    }
    let ready: BTreeSet<RunId> = entries(&t.ready)
        .iter()
        .map(|(k, _)| keys::parse_run_key(k).expect("ready key"))
        .collect();
    let should: BTreeSet<RunId> = records
        .iter()
        .filter(|(_, r)| r.is_ready())
        .map(|(run, _)| *run)
        .collect();
    if ready != should {
        return Err(format!("ready table {ready:?}, ready records {should:?}"));
    }
    for (k, v) in entries(&t.activity_tasks) {
        let (run, cmd) = keys::parse_task_key(&k).map_err(|e| format!("{e:?}"))?;
        let task: ActivityTaskRecord =
            decode(&v, "activity task", Some(run)).map_err(|e| e.to_string())?;
        match records.get(&run) {
            Some(r) if r.status.is_open() => {}
            other => {
                return Err(format!(
                    "task {run:?} {cmd:?} of a run that is not open: {:?}",
                    other.map(|r| r.status)
                ))
            }
        }
        match task.state {
            ActivityState::Scheduled { visible_at } => {
                let key = keys::time_key(visible_at, run, cmd);
                if t.activity_ready.get(key).expect("read").is_none() {
                    return Err(format!(
                        "scheduled task {run:?} {cmd:?} not in activity_ready"
                    ));
                }
            }
            ActivityState::Running {
                token, deadline, ..
            } => {
                let key = keys::time_key(deadline, run, cmd);
                let indexed = t.activity_deadlines.get(key).expect("read");
                let indexed = indexed.map(|v| deadline_token(&v, run).expect("token").0);
                if indexed != Some(token.0) {
                    return Err(format!(
                        "running task {run:?} {cmd:?} (token {token:?}, deadline {deadline:?}) \
                         indexed with {indexed:?}"
                    ));
                }
            }
        }
    }
    for (k, v) in entries(&t.workflow_ids) {
        let run = RunId(decode_u64(&v, "workflow id", None).map_err(|e| e.to_string())?);
        match records.get(&run) {
            Some(r) if r.workflow_id.as_str().as_bytes() == &k[..] => {}
            _ => {
                return Err(format!(
                    "workflow id {k:?} maps to {run:?}, not a run of it"
                ))
            }
        }
    }
    Ok(())
}
