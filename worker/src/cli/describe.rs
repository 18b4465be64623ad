//! `refrain describe`: the latest run of a workflow and what it waits on.

use super::format::{attempts_of, bytes, failure_text, human, role_tag, short, utc};
use super::local::{failure_json, human_task, payload_json};
use super::remote::print_json;
use super::{latest, CliError, Out};
use crate::replayer::indent;
use refrain_history::{
    ActivityState, HistoryStore, RunId, RunRecord, Store, Timestamp, WorkflowId,
};
use refrain_server::remote::Description;
use serde_json::json;

pub(super) async fn describe(
    store: &Store,
    id: &WorkflowId,
    as_json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let (run, record) = latest(store, id).await?;
    let now = Timestamp::now();
    if as_json {
        let d = description(store, run, &record, now).await?;
        return print_json(out, &d);
    }
    // The seam's reads, as any client of the store would make them (the
    // store's own blocking methods of the same names are not for here).
    let store: &dyn HistoryStore = store;
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

/// The API's description of a run, from the store (`describe --json`):
/// the shapes of `GET /api/v1/workflows/{id}`, from the same client calls.
async fn description(
    store: &Store,
    run: RunId,
    record: &RunRecord,
    now: Timestamp,
) -> Result<Description, CliError> {
    let client = refrain::Client::new(store.clone());
    let d = client
        .describe(record.workflow_id.clone())
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let pending_activities = d
        .pending_activities
        .iter()
        .map(refrain_server::json::pending_activity)
        .collect();
    let pending_timers = d
        .pending_timers
        .iter()
        .map(refrain_server::json::pending_timer)
        .collect();
    let tasks = HistoryStore::human_tasks_of_run(store, run).await?;
    let waiting_on = refrain::waiting::waits(&d, &tasks)
        .iter()
        .map(|w| {
            serde_json::from_value(refrain_server::json::waiting(run.0, w))
                .expect("the API's waiting shape is the client's")
        })
        .collect();
    let human_tasks: Vec<_> = tasks.iter().map(|t| human_task(t, now)).collect();
    Ok(Description {
        workflow_id: record.workflow_id.to_string(),
        run: run.0,
        workflow_type: record.workflow_type.clone(),
        status: record.status.as_str().to_owned(),
        started_at: utc(record.started_at),
        closed_at: record.closed_at.map(utc),
        result: match &record.outcome {
            Some(Ok(p)) => Some(payload_json(p)),
            _ => None,
        },
        failure: match &record.outcome {
            Some(Err(f)) => Some(failure_json(f)),
            _ => None,
        },
        history_events: record.last_seq.0,
        waiting_on,
        pending_activities,
        pending_timers,
        human_tasks,
        last_task_failure: record.last_task_failure.as_ref().map(|f| json!(f)),
        parent: record.parent.as_ref().map(
            |p| json!({ "workflow_id": p.workflow_id.to_string(), "run": p.run.0, "cmd": p.cmd.0 }),
        ),
        continued_from: record.continued_from.map(|r| json!(r.0)),
        continued_to: record.continued_to.map(|r| json!(r.0)),
    })
}
