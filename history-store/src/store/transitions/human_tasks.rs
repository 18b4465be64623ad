//! Human tasks: the index of open tasks by assignee, kept in step with the
//! commands that open, move and close them, and the two client operations
//! on one: deciding it, and claiming a group's task for one member.
//!
//! Two trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `human_tasks` | assignee length (u16 BE) ++ assignee ++ run ++ cmd | [`HumanTaskRecord`] |
//! | `run_human_tasks` | run | list of [`OpenHumanTask`] (cmd, assignee) |
//!
//! The per-run list exists because a closing run must drop its open tasks
//! inside the transaction that closes it, and a transaction reads by key
//! (it cannot scan): one `get` of the run's list names every key to
//! delete. Both trees change only inside a commit (assign, escalate,
//! close, run closed), a decision or a claim, each one transaction, so
//! they never disagree.
//!
//! # Claiming and escalation
//!
//! A task assigned to a group is in every member's inbox; a claim moves it
//! to one member (the index key changes from the group to the member, and
//! `claimed_from` names the group) and puts `HumanTaskClaimed` in the
//! run's inbox, so the history says who claimed it and when. From then on
//! the task is the claimer's, as if the workflow had assigned it to them:
//!
//! - a decision made as the group (`expected_assignee` = the group, as a
//!   member checked it before the claim) is refused with
//!   `HumanTaskReassigned`, exactly like a decision that lost a race with
//!   an escalation;
//! - an escalation moves the task from whoever holds it now, the claimer
//!   included (this index, not the event's `from`, says where it is), and
//!   clears the claim; the workflow, having seen `HumanTaskClaimed`,
//!   records the claimer as `from`;
//! - the deadline does not change: claiming is taking the work, not
//!   getting more time for it.
//!
//! Who may claim (a member of the group) is the caller's check, as who
//! may decide is; the store checks that the task is still the group's in
//! the transaction that moves it, so of two members claiming at once one
//! wins and the other is told who has it.

use super::tables::{abort, decode, encode, get_run, missing, push_inbox, put_run, Tx, TxResult};
use crate::error::StoreError;
use crate::event::{EscalationStep, Event, Payload};
use crate::ids::{CommandSeq, RunId, Timestamp, WorkflowId};
use crate::keys;
use crate::store::engine::TxTree;
use crate::store::records::RunRecord;
use serde::{Deserialize, Serialize};

/// An open human task as the store indexes it (tree `human_tasks`, under
/// its current assignee). What a task list shows a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HumanTaskRecord {
    /// The workflow that asks.
    pub workflow_id: WorkflowId,
    /// Its run.
    pub run: RunId,
    /// The `HumanTaskAssigned` command: the task's identity in the run.
    pub cmd: CommandSeq,
    /// What is asked.
    pub task: String,
    /// Who has it now.
    pub assignee: String,
    /// What the person needs to decide, if anything.
    pub form: Option<Payload>,
    /// When the current assignee's time runs out, if it does.
    pub deadline: Option<Timestamp>,
    /// When the current assignee got it (assignment or escalation).
    pub assigned_at: Timestamp,
    /// Escalation level: 0 for the first assignee.
    pub level: u32,
    /// The task's whole escalation chain as assigned
    /// (`HumanTaskAssigned::escalations`): the next assignee is
    /// `escalations[level]`, if there is one. Empty for tasks indexed
    /// before schema version 2.
    #[serde(deserialize_with = "crate::codec::since_v2")]
    pub escalations: Vec<EscalationStep>,
    /// The group the current assignee claimed the task from
    /// (`HumanTaskClaimed`), until it escalates.
    #[serde(deserialize_with = "crate::codec::since_v2")]
    pub claimed_from: Option<String>,
}

impl HumanTaskRecord {
    /// Who gets the task when the current assignee's deadline passes, if
    /// anyone does.
    pub fn escalates_to(&self) -> Option<&EscalationStep> {
        usize::try_from(self.level)
            .ok()
            .and_then(|l| self.escalations.get(l))
    }
}

/// One open human task of a run (tree `run_human_tasks`, a list per run):
/// enough to find its `human_tasks` key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenHumanTask {
    /// The task's command.
    pub cmd: CommandSeq,
    /// Its current assignee.
    pub assignee: String,
}

fn invalid(run: RunId, reason: String) -> StoreError {
    StoreError::InvalidCommit { run, reason }
}

/// The `human_tasks` key of a task, refusing assignees too long for it.
fn index_key(assignee: &str, run: RunId, cmd: CommandSeq) -> Result<Vec<u8>, StoreError> {
    keys::human_task_key(assignee.as_bytes(), run, cmd).ok_or_else(|| {
        invalid(
            run,
            format!(
                "assignee of human task {cmd} is {} bytes long (at most {})",
                assignee.len(),
                keys::MAX_ASSIGNEE_BYTES
            ),
        )
    })
}

/// The open tasks of `run`.
fn read_open(by_run: &TxTree<'_>, run: RunId) -> TxResult<Vec<OpenHumanTask>> {
    match by_run.get(keys::run_key(run))? {
        None => Ok(Vec::new()),
        Some(bytes) => decode(&bytes, "run human tasks", Some(run)).map_err(abort),
    }
}

fn write_open(by_run: &TxTree<'_>, run: RunId, open: &[OpenHumanTask]) -> TxResult<()> {
    if open.is_empty() {
        by_run.delete(&keys::run_key(run)[..])?;
    } else {
        let bytes = encode(&open, "run human tasks", Some(run)).map_err(abort)?;
        by_run.insert(&keys::run_key(run)[..], bytes)?;
    }
    Ok(())
}

fn put_task(tasks: &TxTree<'_>, key: &[u8], task: &HumanTaskRecord) -> TxResult<()> {
    let bytes = encode(task, "human task", Some(task.run)).map_err(abort)?;
    tasks.insert(key, bytes)?;
    Ok(())
}

/// Applies a human-task command of a commit: `HumanTaskAssigned` indexes
/// the task under its assignee, `HumanTaskEscalated` moves it to the new
/// one, `HumanTaskClosed` drops it. Escalating or closing a task that is
/// no longer open (a decision reached the store first) changes nothing.
pub(in crate::store) fn apply_command(
    ctx: &Tx<'_>,
    run: RunId,
    record: &RunRecord,
    event: &Event,
    now: Timestamp,
) -> TxResult<()> {
    match event {
        Event::HumanTaskAssigned { .. } => assign(ctx, run, record, event, now),
        Event::HumanTaskEscalated {
            cmd,
            to,
            level,
            deadline,
            ..
        } => {
            let (tasks, by_run) = (ctx.human_tasks, ctx.run_human_tasks);
            let mut open = read_open(by_run, run)?;
            let Some(entry) = open.iter_mut().find(|o| o.cmd == *cmd) else {
                return Ok(());
            };
            let old_key = index_key(&entry.assignee, run, *cmd).map_err(abort)?;
            let new_key = index_key(to, run, *cmd).map_err(abort)?;
            let Some(bytes) = tasks.remove(&old_key[..])? else {
                return Err(abort(missing("human task", Some(run))));
            };
            let mut task: HumanTaskRecord =
                decode(&bytes, "human task", Some(run)).map_err(abort)?;
            task.assignee = to.clone();
            task.level = *level;
            task.deadline = *deadline;
            task.assigned_at = now;
            task.claimed_from = None;
            put_task(tasks, &new_key, &task)?;
            entry.assignee = to.clone();
            write_open(by_run, run, &open)
        }
        Event::HumanTaskClosed { cmd, .. } => remove_open(ctx, run, Some(*cmd)),
        _ => Ok(()),
    }
}

/// `HumanTaskAssigned`: indexes the task under its first assignee.
fn assign(
    ctx: &Tx<'_>,
    run: RunId,
    record: &RunRecord,
    event: &Event,
    now: Timestamp,
) -> TxResult<()> {
    let Event::HumanTaskAssigned {
        cmd,
        task,
        assignee,
        form,
        deadline,
        level,
        escalations,
        ..
    } = event
    else {
        return Ok(());
    };
    let (tasks, by_run) = (ctx.human_tasks, ctx.run_human_tasks);
    if assignee.is_empty() {
        return Err(abort(invalid(
            run,
            format!("human task {cmd} ({task}) has no assignee"),
        )));
    }
    let key = index_key(assignee, run, *cmd).map_err(abort)?;
    let mut open = read_open(by_run, run)?;
    if open.iter().any(|o| o.cmd == *cmd) {
        return Err(abort(invalid(
            run,
            format!("human task {cmd} is already assigned"),
        )));
    }
    let record = HumanTaskRecord {
        workflow_id: record.workflow_id.clone(),
        run,
        cmd: *cmd,
        task: task.clone(),
        assignee: assignee.clone(),
        form: form.clone(),
        deadline: *deadline,
        assigned_at: now,
        level: *level,
        escalations: escalations.clone(),
        claimed_from: None,
    };
    put_task(tasks, &key, &record)?;
    open.push(OpenHumanTask {
        cmd: *cmd,
        assignee: assignee.clone(),
    });
    write_open(by_run, run, &open)
}

/// Drops every open task of a closing run.
pub(in crate::store) fn close_all(ctx: &Tx<'_>, run: RunId) -> TxResult<()> {
    remove_open(ctx, run, None)
}

/// Removes the open task `cmd` of `run` (every one with `None`) from both
/// trees.
fn remove_open(ctx: &Tx<'_>, run: RunId, cmd: Option<CommandSeq>) -> TxResult<()> {
    let open = read_open(ctx.run_human_tasks, run)?;
    if open.is_empty() {
        return Ok(());
    }
    let (gone, kept): (Vec<_>, Vec<_>) = open
        .into_iter()
        .partition(|o| cmd.is_none_or(|c| c == o.cmd));
    for o in &gone {
        if let Some(key) = keys::human_task_key(o.assignee.as_bytes(), run, o.cmd) {
            ctx.human_tasks.delete(key)?;
        }
    }
    write_open(ctx.run_human_tasks, run, &kept)
}

/// Moves task `cmd` of `run` from group `group` to the member `claimed`
/// (a `HumanTaskClaimed`) names, and puts `claimed` in the run's inbox.
/// A task that is not open is refused with `HumanTaskNotFound`, one that
/// is no longer `group`'s (claimed by someone, or escalated) with
/// `HumanTaskReassigned` naming who has it; nothing is written on error.
pub(in crate::store) fn claim(
    (runs, inbox, ready, tasks, by_run): (
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
    ),
    run: RunId,
    group: &str,
    claimed: &Event,
) -> TxResult<()> {
    let Event::HumanTaskClaimed {
        cmd, claimed_by, ..
    } = claimed
    else {
        return Err(abort(invalid(
            run,
            "a claim must be HumanTaskClaimed".into(),
        )));
    };
    let cmd = *cmd;
    let not_open = || abort(StoreError::HumanTaskNotFound { run, cmd });
    let Some(mut record) = get_run(runs, run)?.filter(|r| r.status.is_open()) else {
        return Err(not_open());
    };
    let mut open = read_open(by_run, run)?;
    let Some(entry) = open.iter_mut().find(|o| o.cmd == cmd) else {
        return Err(not_open());
    };
    if entry.assignee != group {
        return Err(abort(StoreError::HumanTaskReassigned {
            run,
            cmd,
            expected: group.to_owned(),
            assignee: entry.assignee.clone(),
        }));
    }
    let old_key = index_key(group, run, cmd).map_err(abort)?;
    let new_key = index_key(claimed_by, run, cmd).map_err(abort)?;
    let Some(bytes) = tasks.remove(&old_key[..])? else {
        return Err(abort(missing("human task", Some(run))));
    };
    let mut task: HumanTaskRecord = decode(&bytes, "human task", Some(run)).map_err(abort)?;
    task.assignee.clone_from(claimed_by);
    task.claimed_from = Some(group.to_owned());
    put_task(tasks, &new_key, &task)?;
    entry.assignee.clone_from(claimed_by);
    write_open(by_run, run, &open)?;
    push_inbox(inbox, run, &mut record, claimed)?;
    put_run(runs, ready, run, &record)
}

/// Delivers a person's decision on task `cmd` of `run`: the task leaves
/// both trees and `decision` (a `HumanTaskDecided`) enters the run's
/// inbox. A task that is not open (decided already, closed, or its run
/// closed) is refused with `HumanTaskNotFound` and nothing is written; the
/// shell then works out why. With `expected_assignee`, a task that is
/// someone else's now (it escalated after the decider's right was checked)
/// is refused with `HumanTaskReassigned`, nothing written: the check and
/// the write are this one transaction, so no escalation falls between.
pub(in crate::store) fn decide(
    (runs, inbox, ready, tasks, by_run): (
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
        &TxTree<'_>,
    ),
    run: RunId,
    cmd: CommandSeq,
    expected_assignee: Option<&str>,
    decision: &Event,
) -> TxResult<()> {
    let not_open = || abort(StoreError::HumanTaskNotFound { run, cmd });
    let Some(mut record) = get_run(runs, run)?.filter(|r| r.status.is_open()) else {
        return Err(not_open());
    };
    let mut open = read_open(by_run, run)?;
    let Some(i) = open.iter().position(|o| o.cmd == cmd) else {
        return Err(not_open());
    };
    if let Some(expected) = expected_assignee.filter(|e| *e != open[i].assignee) {
        return Err(abort(StoreError::HumanTaskReassigned {
            run,
            cmd,
            expected: expected.to_owned(),
            assignee: open[i].assignee.clone(),
        }));
    }
    let entry = open.remove(i);
    if let Some(key) = keys::human_task_key(entry.assignee.as_bytes(), run, cmd) {
        tasks.delete(key)?;
    }
    write_open(by_run, run, &open)?;
    push_inbox(inbox, run, &mut record, decision)?;
    put_run(runs, ready, run, &record)
}
