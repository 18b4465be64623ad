//! Human tasks: the index of open tasks by assignee, kept in step with the
//! commands that open, move and close them, and the one client operation
//! that decides one.
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
//! close, run closed) or a decision, each one transaction, so they never
//! disagree.

use super::commit::CommitTx;
use super::engine::TxTree;
use super::tx::{
    abort, check_payload, decode, encode, finish, get_run, push_inbox, put_run, TxResult,
};
use super::Inner;
use crate::error::StoreError;
use crate::event::{Event, Payload};
use crate::ids::{CommandSeq, RunId, Timestamp, WorkflowId};
use crate::keys;
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
pub(super) fn apply_command(
    ctx: &CommitTx<'_>,
    run: RunId,
    record: &RunRecord,
    event: &Event,
    now: Timestamp,
) -> TxResult<()> {
    let (tasks, by_run) = (ctx.human_tasks, ctx.run_human_tasks);
    match event {
        Event::HumanTaskAssigned {
            cmd,
            task,
            assignee,
            form,
            deadline,
            level,
            ..
        } => {
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
            };
            put_task(tasks, &key, &record)?;
            open.push(OpenHumanTask {
                cmd: *cmd,
                assignee: assignee.clone(),
            });
            write_open(by_run, run, &open)
        }
        Event::HumanTaskEscalated {
            cmd,
            to,
            level,
            deadline,
            ..
        } => {
            let mut open = read_open(by_run, run)?;
            let Some(entry) = open.iter_mut().find(|o| o.cmd == *cmd) else {
                return Ok(());
            };
            let old_key = index_key(&entry.assignee, run, *cmd).map_err(abort)?;
            let new_key = index_key(to, run, *cmd).map_err(abort)?;
            let Some(bytes) = tasks.remove(&old_key[..])? else {
                return Err(abort(super::tx::missing("human task", Some(run))));
            };
            let mut task: HumanTaskRecord =
                decode(&bytes, "human task", Some(run)).map_err(abort)?;
            task.assignee = to.clone();
            task.level = *level;
            task.deadline = *deadline;
            task.assigned_at = now;
            put_task(tasks, &new_key, &task)?;
            entry.assignee = to.clone();
            write_open(by_run, run, &open)
        }
        Event::HumanTaskClosed { cmd, .. } => remove_open(ctx, run, Some(*cmd)),
        _ => Ok(()),
    }
}

/// Drops every open task of a closing run.
pub(super) fn close_all(ctx: &CommitTx<'_>, run: RunId) -> TxResult<()> {
    remove_open(ctx, run, None)
}

/// Removes the open task `cmd` of `run` (every one with `None`) from both
/// trees.
fn remove_open(ctx: &CommitTx<'_>, run: RunId, cmd: Option<CommandSeq>) -> TxResult<()> {
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

/// What a decision asks of the store.
pub(super) struct Decision<'a> {
    pub(super) run: RunId,
    pub(super) cmd: CommandSeq,
    pub(super) decision: Payload,
    pub(super) decided_by: &'a str,
    pub(super) comment: Option<&'a str>,
    pub(super) now: Timestamp,
}

impl Inner {
    pub(super) fn decide_human_task(&self, d: Decision<'_>) -> Result<(), StoreError> {
        let limit = self.config.max_payload_bytes;
        check_payload(d.decision.len(), limit)?;
        check_payload(d.decided_by.len() + d.comment.map_or(0, str::len), limit)?;
        let (run, cmd) = (d.run, d.cmd);
        let event = Event::HumanTaskDecided {
            cmd,
            decision: d.decision,
            decided_by: d.decided_by.to_owned(),
            comment: d.comment.map(str::to_owned),
            decided_at: d.now,
        };
        let t = &self.trees;
        let decided = finish(t.engine.transaction(
            [
                &t.runs,
                &t.inbox,
                &t.ready,
                &t.human_tasks,
                &t.run_human_tasks,
            ],
            |[runs, inbox, ready, tasks, by_run]| {
                let not_open = || abort(StoreError::HumanTaskNotFound { run, cmd });
                let Some(mut record) = get_run(runs, run)?.filter(|r| r.status.is_open()) else {
                    return Err(not_open());
                };
                let mut open = read_open(by_run, run)?;
                let Some(i) = open.iter().position(|o| o.cmd == cmd) else {
                    return Err(not_open());
                };
                let entry = open.remove(i);
                if let Some(key) = keys::human_task_key(entry.assignee.as_bytes(), run, cmd) {
                    tasks.delete(key)?;
                }
                write_open(by_run, run, &open)?;
                push_inbox(inbox, run, &mut record, &event)?;
                put_run(runs, ready, run, &record)
            },
        ));
        match decided {
            Ok(()) => {
                self.ready_queue.push(run);
                Ok(())
            }
            Err(StoreError::HumanTaskNotFound { .. }) => match self.why_not_open(run, cmd)? {
                Some(why) => Err(StoreError::HumanTaskClosed { run, cmd, why }),
                None => Err(StoreError::HumanTaskNotFound { run, cmd }),
            },
            Err(e) => Err(e),
        }
    }

    /// Why task `cmd` of `run` is not open, if it was ever assigned.
    fn why_not_open(&self, run: RunId, cmd: CommandSeq) -> Result<Option<String>, StoreError> {
        let Some(record) = self.run_record(run)? else {
            return Ok(None);
        };
        let history = self.read_history(run)?;
        let mut assigned = false;
        for event in &history {
            match event {
                Event::HumanTaskAssigned { cmd: c, .. } if *c == cmd => assigned = true,
                Event::HumanTaskDecided {
                    cmd: c, decided_by, ..
                } if *c == cmd => return Ok(Some(format!("decided by {decided_by}"))),
                Event::HumanTaskClosed { cmd: c, reason } if *c == cmd => {
                    return Ok(Some(format!("closed: {reason}")))
                }
                _ => {}
            }
        }
        if !assigned {
            return Ok(None);
        }
        // A decision the workflow has not applied yet waits in the inbox.
        for item in self.trees.inbox.scan_prefix(keys::run_key(run)).values() {
            let bytes = item?;
            if let Ok(Event::HumanTaskDecided {
                cmd: c, decided_by, ..
            }) = decode::<Event>(&bytes, "inbox", Some(run))
            {
                if c == cmd {
                    return Ok(Some(format!(
                        "decided by {decided_by} (the workflow has yet to apply it)"
                    )));
                }
            }
        }
        Ok(Some(format!("its run is {}", record.status.as_str())))
    }

    pub(super) fn list_human_tasks(
        &self,
        assignee: &str,
    ) -> Result<Vec<HumanTaskRecord>, StoreError> {
        let Some(prefix) = keys::assignee_prefix(assignee.as_bytes()) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self.trees.human_tasks.scan_prefix(prefix) {
            let (key, bytes) = item?;
            let run = keys::parse_human_task_key(&key).ok().map(|(_, run, _)| run);
            match decode(&bytes, "human task", run) {
                Ok(task) => out.push(task),
                // One damaged record must not hide a person's other tasks.
                Err(e) => tracing::warn!(error = %e, "skipping an undecodable human task"),
            }
        }
        Ok(out)
    }

    pub(super) fn human_tasks_of_run(
        &self,
        run: RunId,
    ) -> Result<Vec<HumanTaskRecord>, StoreError> {
        let _whole = self.trees.engine.consistent();
        let open: Vec<OpenHumanTask> = match self.trees.run_human_tasks.get(keys::run_key(run))? {
            None => return Ok(Vec::new()),
            Some(bytes) => decode(&bytes, "run human tasks", Some(run))?,
        };
        let mut out = Vec::new();
        for o in open {
            let Some(key) = keys::human_task_key(o.assignee.as_bytes(), run, o.cmd) else {
                continue;
            };
            if let Some(bytes) = self.trees.human_tasks.get(key)? {
                out.push(decode(&bytes, "human task", Some(run))?);
            }
        }
        Ok(out)
    }
}
