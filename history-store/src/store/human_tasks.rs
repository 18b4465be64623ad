//! Human tasks, the shell: deciding one (and saying why a task cannot be
//! decided), and reading the index of open tasks by assignee. The index is
//! kept in step with the commands that open, move and close tasks in
//! `transitions::human_tasks`.
//!
//! The two trees and why there are two: see `transitions::human_tasks`.

use super::transitions::human_tasks::{claim, decide};
pub use super::transitions::human_tasks::{HumanTaskRecord, OpenHumanTask};
use super::tx::{check_payload, decode, finish};
use super::{Inner, Store};
use crate::error::StoreError;
use crate::event::{Event, Payload};
use crate::history_store::HumanTaskDecision;
use crate::ids::{CommandSeq, RunId, Timestamp};
use crate::keys;

/// What a decision asks of the store.
pub(super) struct Decision<'a> {
    pub(super) run: RunId,
    pub(super) cmd: CommandSeq,
    pub(super) decision: Payload,
    pub(super) decided_by: &'a str,
    pub(super) comment: Option<&'a str>,
    pub(super) expected_assignee: Option<&'a str>,
    pub(super) now: Timestamp,
}

impl Store {
    /// Claims task `cmd` of `run`, now assigned to group `group`, for its
    /// member `claimed_by`: the task moves to `claimed_by`'s list and
    /// `HumanTaskClaimed` enters the run's inbox. Whether `claimed_by` is
    /// a member of `group` is the caller's to check.
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// `HumanTaskNotFound` / `HumanTaskClosed` as for a decision, and
    /// `HumanTaskReassigned` (naming who has it) if the task is no longer
    /// `group`'s: claimed by someone or escalated. Nothing is written on
    /// error.
    pub fn claim_human_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
        group: &str,
        claimed_by: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner
            .claim_human_task(run, cmd, group, claimed_by, now)
    }

    /// [`Store::decide_human_task`] with the whole of a
    /// [`HumanTaskDecision`]: when it names the assignee it is made as, the
    /// decision lands only if the task is still that assignee's, compared
    /// in the transaction that records it (so an escalation cannot fall
    /// between the caller's check and the write).
    ///
    /// Not durable until [`Store::durable`] returns.
    ///
    /// # Errors
    /// Those of [`Store::decide_human_task`], and `HumanTaskReassigned`
    /// if the task is someone else's now. Nothing is written on error.
    pub fn decide_human_task_as_assignee(
        &self,
        d: &HumanTaskDecision,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.decide_human_task(Decision {
            run: d.run,
            cmd: d.cmd,
            decision: d.decision.clone(),
            decided_by: &d.decided_by,
            comment: d.comment.as_deref(),
            expected_assignee: d.expected_assignee.as_deref(),
            now,
        })
    }
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
                decide(
                    (runs, inbox, ready, tasks, by_run),
                    run,
                    cmd,
                    d.expected_assignee,
                    &event,
                )
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

    /// Claims task `cmd` of `run`, assigned to `group`, for `claimed_by`
    /// (see `transitions::human_tasks` on how a claim meets escalation).
    pub(super) fn claim_human_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
        group: &str,
        claimed_by: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        check_payload(
            group.len() + claimed_by.len(),
            self.config.max_payload_bytes,
        )?;
        if claimed_by.is_empty() {
            return Err(StoreError::InvalidCommit {
                run,
                reason: format!("a claim of human task {cmd} names no claimer"),
            });
        }
        let event = Event::HumanTaskClaimed {
            cmd,
            from: group.to_owned(),
            claimed_by: claimed_by.to_owned(),
            claimed_at: now,
        };
        let t = &self.trees;
        let claimed = finish(t.engine.transaction(
            [
                &t.runs,
                &t.inbox,
                &t.ready,
                &t.human_tasks,
                &t.run_human_tasks,
            ],
            |[runs, inbox, ready, tasks, by_run]| {
                claim((runs, inbox, ready, tasks, by_run), run, group, &event)
            },
        ));
        match claimed {
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
