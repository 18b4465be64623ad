//! `refrain describe`: the latest run of a workflow and what it waits on.

use super::format::{attempts_of, bytes, failure_text, human, role_tag, short, utc};
use super::local::{human_task, payload_json};
use super::remote::print_json;
use super::{latest, CliError, Out};
use crate::replayer::indent;
use refrain_history::{ActivityState, HistoryStore, RunId, RunRecord, Timestamp, WorkflowId};
use refrain_server::remote::{Description, WaitingOn};
use serde_json::{json, Map, Value};

pub(super) async fn describe(
    store: &dyn HistoryStore,
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

/// The API's description of a run, from the store (`describe --json`).
async fn description(
    store: &dyn HistoryStore,
    run: RunId,
    record: &RunRecord,
    now: Timestamp,
) -> Result<Description, CliError> {
    let mut waiting_on = Vec::new();
    let mut pending_activities = Vec::new();
    for &cmd in &record.pending_activities {
        let Some(task) = store.activity_task(run, cmd).await? else {
            continue;
        };
        let next_try = match task.state {
            ActivityState::Scheduled { visible_at } if visible_at > now => Some(utc(visible_at)),
            _ => None,
        };
        let text = match &next_try {
            Some(at) => format!(
                "activity {}, attempt {}, next try at {at}",
                task.activity_type, task.attempt
            ),
            None => format!("activity {}, attempt {}", task.activity_type, task.attempt),
        };
        let fields = json!({
            "cmd": cmd.0, "activity_type": task.activity_type, "attempt": task.attempt,
            "next_try_at": next_try,
            "last_failure": task.last_failure.as_ref().map(failure_text),
        });
        waiting_on.push(waiting("activity", text, &fields));
        pending_activities.push(fields);
    }
    let mut pending_timers = Vec::new();
    for t in &record.pending_timers {
        let fields = json!({ "cmd": t.cmd.0, "fire_at": utc(t.fire_at) });
        waiting_on.push(waiting(
            "timer",
            format!("timer fires at {}", utc(t.fire_at)),
            &fields,
        ));
        pending_timers.push(fields);
    }
    let human_tasks: Vec<_> = store
        .human_tasks_of_run(run)
        .await?
        .iter()
        .map(|t| human_task(t, now))
        .collect();
    for t in &human_tasks {
        let text = format!("human task {} assigned to {}", t.task, t.assignee);
        waiting_on.push(waiting("human_task", text, &json!({ "task": t.id })));
    }
    if let Some(f) = &record.last_task_failure {
        let first = f.lines().next().unwrap_or_default();
        waiting_on.push(waiting(
            "task_failure",
            format!("activation failing: {first}"),
            &json!({}),
        ));
    }
    let run_of = |r: Option<RunId>| r.map(|r| json!(r.0));
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
            Some(Err(f)) => Some(json!({ "message": failure_text(f) })),
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
        continued_from: run_of(record.continued_from),
        continued_to: run_of(record.continued_to),
    })
}

fn waiting(kind: &str, text: String, fields: &Value) -> WaitingOn {
    WaitingOn {
        kind: kind.to_owned(),
        text,
        fields: fields.as_object().cloned().unwrap_or_else(Map::new),
    }
}
