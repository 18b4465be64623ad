//! `refrain describe`: the latest run of a workflow and what it waits on.

use super::format::{attempts_of, bytes, failure_text, human, role_tag, short, utc};
use super::{latest, CliError, Out};
use crate::replayer::indent;
use refrain_history::{ActivityState, HistoryStore, Timestamp, WorkflowId};

pub(super) async fn describe(
    store: &dyn HistoryStore,
    id: &WorkflowId,
    out: Out<'_>,
) -> Result<(), CliError> {
    let (run, record) = latest(store, id).await?;
    let now = Timestamp::now();
    writeln!(out, "workflow  {id}")?;
    writeln!(out, "run       {}", run.0)?;
    writeln!(out, "type      {}", record.workflow_type)?;
    writeln!(out, "status    {}", record.status.as_str())?;
    writeln!(out, "started   {}", utc(record.started_at))?;
    match record.closed_at {
        Some(closed) => writeln!(
            out,
            "closed    {} (ran {})",
            utc(closed),
            human(closed.saturating_since(record.started_at))
        )?,
        None => writeln!(
            out,
            "closed    - (open for {})",
            human(now.saturating_since(record.started_at))
        )?,
    }
    writeln!(
        out,
        "history   {} events, {}",
        record.last_seq.0,
        bytes(record.history_bytes)
    )?;
    if let Some(from) = record.continued_from {
        writeln!(out, "continues run {}", from.0)?;
    }
    if let Some(to) = record.continued_to {
        writeln!(out, "continued as run {}", to.0)?;
    }
    if let Some(parent) = &record.parent {
        writeln!(
            out,
            "parent    {} run {} (cmd {})",
            parent.workflow_id, parent.run.0, parent.cmd.0
        )?;
    }
    match &record.outcome {
        Some(Ok(result)) => writeln!(out, "result    {}", short(result))?,
        Some(Err(failure)) => writeln!(out, "failure   {}", failure_text(failure))?,
        None => {}
    }
    if record.status.is_open() {
        let waiting = record.inbox_tail.saturating_sub(record.inbox_head);
        if record.needs_first_activation {
            writeln!(out, "inbox     waiting for its first activation")?;
        } else if waiting > 0 {
            writeln!(
                out,
                "inbox     {waiting} event(s) waiting for the next activation"
            )?;
        }
    }

    writeln!(out)?;
    if record.pending_activities.is_empty() {
        writeln!(out, "pending activities: none")?;
    } else {
        writeln!(
            out,
            "pending activities ({}):",
            record.pending_activities.len()
        )?;
    }
    for &cmd in &record.pending_activities {
        let Some(task) = store.activity_task(run, cmd).await? else {
            writeln!(out, "  cmd {}  (task record missing)", cmd.0)?;
            continue;
        };
        let cancel = if task.cancel_requested {
            ", cancel requested"
        } else {
            ""
        };
        let state = match task.state {
            ActivityState::Running {
                started_at,
                deadline,
                ..
            } => format!(
                "running since {} (times out {})",
                utc(started_at),
                utc(deadline)
            ),
            ActivityState::Scheduled { visible_at } if visible_at > now => format!(
                "waiting to retry at {} (in {})",
                utc(visible_at),
                human(visible_at.saturating_since(now))
            ),
            ActivityState::Scheduled { .. } => "scheduled, waiting for a worker".into(),
        };
        writeln!(
            out,
            "  cmd {}  {}{}  attempt {}{}  {state}{cancel}",
            cmd.0,
            task.activity_type,
            role_tag(&task.activity_type),
            task.attempt,
            attempts_of(&task.options),
        )?;
        writeln!(
            out,
            "         first scheduled {}, input {}",
            utc(task.first_scheduled_at),
            short(&task.input)
        )?;
        if let Some(f) = &task.last_failure {
            writeln!(
                out,
                "         last failure (attempt {}): {}",
                task.attempt.saturating_sub(1),
                failure_text(f)
            )?;
        }
    }
    if record.pending_timers.is_empty() {
        writeln!(out, "pending timers: none")?;
    } else {
        writeln!(out, "pending timers ({}):", record.pending_timers.len())?;
    }
    for t in &record.pending_timers {
        let when = if t.fire_at > now {
            format!("in {}", human(t.fire_at.saturating_since(now)))
        } else {
            format!("overdue by {}", human(now.saturating_since(t.fire_at)))
        };
        writeln!(out, "  cmd {}  fires {} ({when})", t.cmd.0, utc(t.fire_at))?;
    }
    match &record.last_task_failure {
        None => writeln!(out, "last activation failure: none")?,
        Some(f) => {
            writeln!(
                out,
                "last activation failure (the task is retried until fixed code is deployed):"
            )?;
            writeln!(out, "{}", indent(f))?;
        }
    }
    Ok(())
}
