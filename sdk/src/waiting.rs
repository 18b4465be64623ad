//! Where a run waits, in words: what an operator asks first ("invoice
//! #123 is waiting on legal review"). [`Client::waiting_on`] reads it from
//! the store's record of the latest run, its pending activities, timers,
//! children and open human tasks, so it costs a few reads and no replay.
//!
//! Waiting for a signal is not a command, so the history does not say it;
//! each activation's commit records instead the names of the signals the
//! workflow's pending `ctx.wait_signal::<S>()` futures wait for
//! (`RunRecord::awaited_signals`; why a record field and not an event is
//! written at `ActivationCommit::awaited_signals`), and such a run reads
//! "signal stock-resolved". What the store does not record is not
//! guessed: a run that waits on an update, or on a condition a signal
//! handler sets, reads as [`Waiting::Signal`] with no names.

use crate::client::{Client, ClientError, WorkflowDescription};
use crate::display::utc;
use refrain_history::{CommandSeq, HumanTaskRecord, RunId, RunRecord, Timestamp, WorkflowId};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// One thing a run waits on.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Waiting {
    /// Events the workflow has not seen yet (a result, a signal, a fired
    /// timer, or the start itself): a worker runs its next activation.
    Activation {
        /// How many events wait.
        events: u64,
        /// Whether it is the run's first activation.
        first: bool,
    },
    /// The workflow's code failed on its last activation and is retried
    /// until code that passes is deployed.
    TaskFailure {
        /// The failure's report (first line).
        message: String,
    },
    /// An activity: running, or waiting for a worker or its next retry.
    Activity {
        /// Its command.
        cmd: CommandSeq,
        /// Its type.
        activity_type: String,
        /// The current (or next) attempt.
        attempt: u32,
        /// At most this many attempts; `None` without a limit.
        max_attempts: Option<u32>,
        /// When the running attempt times out, if one runs.
        running_until: Option<Timestamp>,
        /// When the next attempt may start, if none runs.
        next_attempt_at: Option<Timestamp>,
        /// The last attempt's failure (kind and message).
        last_failure: Option<String>,
    },
    /// A durable timer.
    Timer {
        /// Its command.
        cmd: CommandSeq,
        /// When it fires.
        fire_at: Timestamp,
    },
    /// A human task.
    HumanTask {
        /// Its command (with the run, the task's reference).
        cmd: CommandSeq,
        /// What is asked.
        task: String,
        /// Who has it.
        assignee: String,
        /// When the assignee's time runs out (an escalation, a fallback or
        /// a failure follows, as the workflow said).
        deadline: Option<Timestamp>,
        /// 0 for the first assignee, +1 per escalation.
        level: u32,
        /// Who gets it when `deadline` passes, if anyone does.
        escalates_to: Option<String>,
    },
    /// A child workflow.
    Child {
        /// The parent's command that started it.
        cmd: CommandSeq,
        /// The child's workflow id.
        workflow_id: WorkflowId,
    },
    /// Signals the workflow waits for, by name (`ctx.wait_signal`), as of
    /// its last activation; with no names, nothing pending that the store
    /// records: the workflow waits for a signal or an update (or a
    /// condition one of them sets).
    Signal {
        /// The signal names, sorted; empty when not known.
        names: Vec<String>,
    },
}

impl Waiting {
    /// A short stable name of the kind: `activation`, `task_failure`,
    /// `activity`, `timer`, `human_task`, `child`, `signal`.
    pub fn kind(&self) -> &'static str {
        match self {
            Waiting::Activation { .. } => "activation",
            Waiting::TaskFailure { .. } => "task_failure",
            Waiting::Activity { .. } => "activity",
            Waiting::Timer { .. } => "timer",
            Waiting::HumanTask { .. } => "human_task",
            Waiting::Child { .. } => "child",
            Waiting::Signal { .. } => "signal",
        }
    }
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Waiting::Activation { first: true, .. } => {
                f.write_str("its first activation, by a worker")
            }
            Waiting::Activation { events, .. } => {
                write!(f, "a worker to apply {events} new event(s)")
            }
            Waiting::TaskFailure { message } => write!(
                f,
                "a code fix: its last activation failed ({message}) and is retried"
            ),
            Waiting::Activity {
                activity_type,
                attempt,
                max_attempts,
                running_until,
                next_attempt_at,
                last_failure,
                ..
            } => {
                write!(f, "activity {activity_type}, attempt {attempt}")?;
                if let Some(max) = max_attempts {
                    write!(f, " of {max}")?;
                }
                match (running_until, next_attempt_at) {
                    (Some(until), _) => write!(f, ", running (times out at {})", utc(*until))?,
                    (None, Some(at)) if *attempt > 1 => write!(f, ", next try at {}", utc(*at))?,
                    _ => f.write_str(", waiting for a worker")?,
                }
                if let Some(failure) = last_failure {
                    write!(f, "; last failure: {failure}")?;
                }
                Ok(())
            }
            Waiting::Timer { fire_at, .. } => write!(f, "timer until {}", utc(*fire_at)),
            Waiting::HumanTask {
                task,
                assignee,
                deadline,
                level,
                escalates_to,
                ..
            } => {
                write!(f, "human task {task} assigned to {assignee}")?;
                if *level > 0 {
                    write!(f, " (escalated {level}×)")?;
                }
                if let Some(d) = deadline {
                    write!(f, ", due {}", utc(*d))?;
                }
                if let Some(next) = escalates_to {
                    write!(f, ", escalates to {next}")?;
                }
                Ok(())
            }
            Waiting::Child { workflow_id, .. } => write!(f, "child workflow {workflow_id}"),
            Waiting::Signal { names } if names.is_empty() => f.write_str("a signal or an update"),
            Waiting::Signal { names } => write!(f, "signal {}", names.join(" or ")),
        }
    }
}

impl Client {
    /// The latest run of `id` and what it waits on (see [`waits`]): the
    /// run's description and its open human tasks, read once.
    ///
    /// # Errors
    /// `NotFound`, or a storage error.
    pub async fn waiting_on(
        &self,
        id: impl Into<WorkflowId>,
    ) -> Result<(RunId, RunRecord, Vec<Waiting>), ClientError> {
        let d = self.describe(id).await?;
        let tasks = if d.record.status.is_open() {
            self.history_store().human_tasks_of_run(d.run).await?
        } else {
            Vec::new()
        };
        let waiting = waits(&d, &tasks);
        Ok((d.run, d.record, waiting))
    }
}

/// What the run `d` describes waits on, given its open human `tasks`, in
/// the order an operator reads it (the worker first, then human tasks,
/// activities, children, timers). Empty for a closed run. A human task's
/// deadline timer is folded into the task.
pub fn waits(d: &WorkflowDescription, tasks: &[HumanTaskRecord]) -> Vec<Waiting> {
    let record = &d.record;
    if !record.status.is_open() {
        return Vec::new();
    }
    let mut waiting = Vec::new();
    let inbox = record.inbox_tail.saturating_sub(record.inbox_head);
    if record.needs_first_activation || inbox > 0 {
        waiting.push(Waiting::Activation {
            events: inbox,
            first: record.needs_first_activation,
        });
    }
    if let Some(report) = &record.last_task_failure {
        let message = report.lines().next().unwrap_or_default().to_owned();
        waiting.push(Waiting::TaskFailure { message });
    }
    for t in tasks {
        waiting.push(Waiting::HumanTask {
            cmd: t.cmd,
            task: t.task.clone(),
            assignee: t.assignee.clone(),
            deadline: t.deadline,
            level: t.level,
            escalates_to: crate::human_task::next_assignee(t),
        });
    }
    for a in &d.pending_activities {
        waiting.push(Waiting::Activity {
            cmd: a.cmd,
            activity_type: a.activity_type.clone(),
            attempt: a.attempt,
            max_attempts: a.max_attempts,
            running_until: a.attempt_deadline.map(timestamp),
            next_attempt_at: a.next_attempt_at.map(timestamp),
            last_failure: a
                .last_failure
                .as_ref()
                .map(|f| format!("{}: {}", f.kind, f.message)),
        });
    }
    for child in &record.pending_children {
        waiting.push(Waiting::Child {
            cmd: child.cmd,
            workflow_id: child.workflow_id.clone(),
        });
    }
    for timer in &d.pending_timers {
        let a_deadline = tasks.iter().any(|t| t.deadline == Some(timer.fire_at));
        if !a_deadline {
            waiting.push(Waiting::Timer {
                cmd: timer.cmd,
                fire_at: timer.fire_at,
            });
        }
    }
    if !record.awaited_signals.is_empty() || waiting.is_empty() {
        waiting.push(Waiting::Signal {
            names: record.awaited_signals.clone(),
        });
    }
    waiting
}

/// A description's time back as the store's.
fn timestamp(t: SystemTime) -> Timestamp {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_as_an_operator_says_them() {
        let activity = Waiting::Activity {
            cmd: CommandSeq(4),
            activity_type: "charge-card".into(),
            attempt: 3,
            max_attempts: Some(5),
            running_until: None,
            next_attempt_at: Some(Timestamp(1_714_564_800_004)),
            last_failure: Some("card-declined: insufficient funds".into()),
        };
        assert_eq!(
            activity.to_string(),
            "activity charge-card, attempt 3 of 5, next try at 2024-05-01T12:00:00.004Z; \
             last failure: card-declined: insufficient funds"
        );
        let task = Waiting::HumanTask {
            cmd: CommandSeq(9),
            task: "underwriting-review".into(),
            assignee: "credit-manager".into(),
            deadline: Some(Timestamp(0)),
            level: 1,
            escalates_to: None,
        };
        assert_eq!(
            task.to_string(),
            "human task underwriting-review assigned to credit-manager (escalated 1×), due 1970-01-01T00:00:00.000Z"
        );
        let first = Waiting::HumanTask {
            cmd: CommandSeq(9),
            task: "underwriting-review".into(),
            assignee: "underwriter-1".into(),
            deadline: Some(Timestamp(1_714_564_800_000)),
            level: 0,
            escalates_to: Some("credit-manager".into()),
        };
        assert_eq!(
            first.to_string(),
            "human task underwriting-review assigned to underwriter-1, due 2024-05-01T12:00:00.000Z, \
             escalates to credit-manager"
        );
        assert_eq!(
            Waiting::Timer {
                cmd: CommandSeq(2),
                fire_at: Timestamp(0)
            }
            .to_string(),
            "timer until 1970-01-01T00:00:00.000Z"
        );
        let signal = Waiting::Signal {
            names: vec!["stock-resolved".into()],
        };
        assert_eq!(signal.kind(), "signal");
        assert_eq!(signal.to_string(), "signal stock-resolved");
        assert_eq!(
            Waiting::Signal { names: Vec::new() }.to_string(),
            "a signal or an update"
        );
    }
}
