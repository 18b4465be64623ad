//! The verbs that act on workflows rather than read them (`start`,
//! `tasks`, `decide`, `schedules`) on a store (`--db`), and the API's JSON
//! shapes of what the store answers, for `--json`: a script reads the same
//! JSON whether it ran against a store or a server.
//!
//! The shapes are those of the server's `api/json.rs`, rebuilt here from
//! the same records (that module is the server's own); a change there
//! should be mirrored here, and `tests/server/cli.rs` compares the two.
//!
//! `query` and `update` are answered by the workflow's running instance,
//! which only a running application has: on a store they say so.

use super::args::{ConflictArg, ScheduleAction};
use super::commands::write_table;
use super::format::utc;
use super::remote::{print_json, schedule_text, schedules_text, tasks_text};
use super::{acknowledge, on_runtime, CliError, Out};
use refrain_history::{CommandSeq, StartRequest};
use refrain_history::{
    Failure, HistoryStore, HumanTaskRecord, Payload, RunId, ScheduleRecord, Store, Timestamp,
    TriggerOutcome, WorkflowId,
};
use refrain_server::remote::{
    Claimed, Decided, HumanTask, RunSummary, Schedule, Started, Triggered,
};
use serde_json::{json, Value};

/// `start` on a store: the store records the start; the application's
/// workers run the workflow when it next runs.
pub(super) fn start(
    store: &Store,
    workflow_type: String,
    id: String,
    input: Value,
    on_conflict: ConflictArg,
    as_json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let req = StartRequest {
        workflow_id: WorkflowId::new(id.clone()),
        workflow_type,
        input: Payload::from_bytes(input.to_string().into_bytes()),
        on_conflict: on_conflict.into(),
        seed: seed(),
        now: Timestamp::now(),
    };
    let outcome =
        on_runtime(store.start(req))?.map_err(|e| CliError::Failed(format!("not started: {e}")))?;
    acknowledge(store, "start")?;
    let s = Started {
        workflow_id: id,
        run: outcome.run.0,
        started: outcome.started,
    };
    if as_json {
        print_json(out, &s)
    } else {
        writeln!(out, "{}", started_text(&s))?;
        Ok(())
    }
}

/// A seed for a run's random generator: any value does, as long as runs
/// do not share it (the same as a client's start draws).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Timestamp::now().0);
    h.finish()
}

pub(super) fn started_text(s: &Started) -> String {
    if s.started {
        format!("started {} (run {})", s.workflow_id, s.run)
    } else {
        format!(
            "{} already has run {}: nothing started (--on-conflict)",
            s.workflow_id, s.run
        )
    }
}

/// `RUN/CMD`, as `tasks` prints a task.
pub(super) fn parse_task_id(s: &str) -> Result<(u64, u64), CliError> {
    let bad = || {
        CliError::Failed(format!(
            "{s:?} is not a task: give RUN/CMD as `tasks` prints it"
        ))
    };
    let (run, cmd) = s.split_once('/').ok_or_else(bad)?;
    let run = run.strip_prefix("run-").unwrap_or(run);
    Ok((
        run.parse().map_err(|_| bad())?,
        cmd.parse().map_err(|_| bad())?,
    ))
}

pub(super) fn tasks(
    store: &Store,
    assignee: Option<String>,
    as_json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let assignee = assignee.ok_or_else(|| {
        CliError::Unusable(
            "on a store, say whose tasks: --assignee NAME (a server knows who you are)".into(),
        )
    })?;
    let now = Timestamp::now();
    let tasks: Vec<HumanTask> = store
        .list_human_tasks(&assignee)?
        .iter()
        .map(|t| human_task(t, now))
        .collect();
    if as_json {
        print_json(out, &json!({ "tasks": tasks }))
    } else {
        tasks_text(&tasks, out)
    }
}

pub(super) struct Decision {
    pub(super) task: String,
    pub(super) value: Value,
    pub(super) comment: Option<String>,
    pub(super) decided_by: Option<String>,
}

/// `decide` on a store records the name given with `--as`: nobody checks
/// it (whoever can open the store can write anything to it).
pub(super) fn decide(
    store: &Store,
    d: Decision,
    as_json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let decided_by = d.decided_by.ok_or_else(|| {
        CliError::Unusable(
            "on a store, say who decides: --as NAME (recorded in the history as the decider)"
                .into(),
        )
    })?;
    let (run, cmd) = parse_task_id(&d.task)?;
    let cmd = u32::try_from(cmd).map_err(|_| CliError::Failed(format!("no task {}", d.task)))?;
    // Its name, as the API answers it: read while the task is open.
    let name = store
        .human_tasks_of_run(RunId(run))?
        .into_iter()
        .find(|t| t.cmd == CommandSeq(cmd))
        .map(|t| t.task);
    store
        .decide_human_task(
            RunId(run),
            CommandSeq(cmd),
            Payload::from_bytes(d.value.to_string().into_bytes()),
            &decided_by,
            d.comment.as_deref(),
            Timestamp::now(),
        )
        .map_err(|e| CliError::Failed(format!("not decided: {e}")))?;
    acknowledge(store, "decision")?;
    let record = store.run_record(RunId(run))?;
    let answer = Decided {
        workflow_id: record
            .map(|r| r.workflow_id.to_string())
            .unwrap_or_default(),
        run,
        task: Value::String(name.unwrap_or_else(|| d.task.clone())),
        decided_by,
    };
    if as_json {
        print_json(out, &answer)
    } else {
        writeln!(
            out,
            "task {} of {} (run {run}) decided by {}",
            d.task, answer.workflow_id, answer.decided_by
        )?;
        Ok(())
    }
}

/// `claim` on a store records the name given with `--as` as the claimer
/// of a task assigned to a group (nobody checks membership: whoever can
/// open the store can write anything to it).
pub(super) fn claim(
    store: &Store,
    task: &str,
    claimed_by: Option<String>,
    as_json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let claimed_by = claimed_by.ok_or_else(|| {
        CliError::Unusable(
            "on a store, say who claims: --as NAME (recorded in the history as the claimer)".into(),
        )
    })?;
    let (run, cmd) = parse_task_id(task)?;
    let no_task = || CliError::Failed(format!("no open task {task}"));
    let cmd = u32::try_from(cmd).map_err(|_| no_task())?;
    let t = store
        .human_tasks_of_run(RunId(run))?
        .into_iter()
        .find(|t| t.cmd == CommandSeq(cmd))
        .ok_or_else(no_task)?;
    if let Some(group) = &t.claimed_from {
        return Err(CliError::Failed(format!(
            "not claimed: {} claimed it from {group} already",
            t.assignee
        )));
    }
    store
        .claim_human_task(
            RunId(run),
            CommandSeq(cmd),
            &t.assignee,
            &claimed_by,
            Timestamp::now(),
        )
        .map_err(|e| CliError::Failed(format!("not claimed: {e}")))?;
    acknowledge(store, "claim")?;
    let answer = Claimed {
        workflow_id: t.workflow_id.to_string(),
        run,
        task: t.task,
        claimed_from: t.assignee,
        claimed_by,
    };
    if as_json {
        print_json(out, &answer)
    } else {
        writeln!(out, "{}", super::remote::claimed_text(task, &answer))?;
        Ok(())
    }
}

pub(super) fn schedules(
    store: &Store,
    action: Option<ScheduleAction>,
    as_json: bool,
    out: Out<'_>,
) -> Result<(), CliError> {
    let failed = |e: refrain_history::StoreError| CliError::Failed(e.to_string());
    let one = match action.unwrap_or(ScheduleAction::List) {
        ScheduleAction::List => {
            let list: Vec<Schedule> = store
                .list_schedules()
                .map_err(failed)?
                .iter()
                .map(schedule)
                .collect();
            return if as_json {
                print_json(out, &json!({ "schedules": list }))
            } else {
                schedules_text(&list, out)
            };
        }
        ScheduleAction::Describe { id } => store.describe_schedule(&id),
        ScheduleAction::Pause { id } => store.pause_schedule(&id),
        ScheduleAction::Resume { id } => store.resume_schedule(&id),
        ScheduleAction::Trigger { id } => {
            let outcome = on_runtime(HistoryStore::trigger_schedule(store, &id, Timestamp::now()))?
                .map_err(|e| CliError::Failed(e.to_string()))?;
            acknowledge(store, "schedule trigger")?;
            let (name, fire_time, run) = match outcome {
                TriggerOutcome::Started(run) => ("started", run.fire_time, run),
                TriggerOutcome::Buffered { fire_time, open } => ("buffered", fire_time, open),
                TriggerOutcome::Skipped { fire_time, open } => ("skipped", fire_time, open),
            };
            let t = Triggered {
                schedule: id,
                outcome: name.to_owned(),
                fire_time: Some(utc(fire_time)),
                workflow_id: run.workflow_id.to_string(),
                run: run.run.0,
            };
            return if as_json {
                print_json(out, &t)
            } else {
                writeln!(out, "{}", super::remote::triggered_text(&t))?;
                Ok(())
            };
        }
    }
    .map_err(failed)?;
    acknowledge(store, "schedule change")?;
    let one = schedule(&one);
    if as_json {
        print_json(out, &one)
    } else {
        schedule_text(&one, out)
    }
}

// ----- the API's shapes of the store's records -----

// Built by the server's own functions, so that `--json` on a store and
// through a server cannot drift apart.

pub(super) fn run_summary(r: &refrain_history::RunSummary) -> RunSummary {
    serde_json::from_value(refrain_server::json::run_summary(r))
        .expect("the API's run shape is the client's")
}

/// A payload as the API shows it: its JSON, or its bytes in base64.
pub(super) fn payload_json(p: &Payload) -> Value {
    refrain_server::json::payload(p)
}

pub(super) fn human_task(t: &HumanTaskRecord, now: Timestamp) -> HumanTask {
    let task = refrain::HumanTask::from(t.clone());
    serde_json::from_value(refrain_server::json::human_task(
        &task,
        now.to_system_time(),
    ))
    .expect("the API's task shape is the client's")
}

/// A recorded failure: `{"kind","message","non_retryable","cause","details"}`.
pub(super) fn failure_json(f: &Failure) -> Value {
    refrain_server::json::failure(f)
}

fn schedule(s: &ScheduleRecord) -> Schedule {
    serde_json::from_value(refrain_server::json::schedule(s))
        .expect("the API's schedule shape is the client's")
}

/// The table of `list`, on a store or through a server.
pub(super) fn runs_table(
    runs: &[RunSummary],
    more: Option<&str>,
    out: Out<'_>,
) -> Result<(), CliError> {
    let mut rows = vec![[
        "ID".to_owned(),
        "RUN".to_owned(),
        "TYPE".to_owned(),
        "STATUS".to_owned(),
        "STARTED (UTC)".to_owned(),
        "CLOSED (UTC)".to_owned(),
    ]];
    for r in runs {
        rows.push([
            r.workflow_id.clone(),
            r.run.to_string(),
            r.workflow_type.clone(),
            r.status.clone(),
            r.started_at.clone(),
            r.closed_at.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    write_table(out, &rows)?;
    if runs.is_empty() {
        writeln!(out, "(no runs match)")?;
    }
    if let Some(cursor) = more {
        writeln!(out, "(more: --after {cursor})")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_parse_as_tasks_prints_them() {
        assert_eq!(parse_task_id("12/5").ok(), Some((12, 5)));
        assert_eq!(parse_task_id("run-12/5").ok(), Some((12, 5)));
        assert!(parse_task_id("12").is_err());
        assert!(parse_task_id("a/b").is_err());
    }
}
