//! Every verb through a running server (`--server URL`): the same output
//! as on a store, read from the HTTP API instead (`--json`: the API's
//! answers as they came).
//!
//! The access token comes from `REFRAIN_TOKEN`, never from a flag: a flag
//! would show in shell history and in `ps`. The server records the
//! token's identity as the actor of what it changes (signal sender,
//! cancellation requester, decider), so `--sender`, `--by` and `--as` do
//! not exist here.
//!
//! Exit codes: an error the API answered for a request it understood
//! (unknown id, closed run, refused update) is a failed command (1); no
//! server at the URL, a token missing, unknown (401) or not allowed
//! (403), and the store unavailable (503 `unavailable`) mean the command
//! could not run (2): the same command with the right token or a healthy
//! server would have.

use super::args::{Command, ScheduleAction};
use super::commands::write_table;
use super::timeline::{status_of, timeline, Header};
use super::{CliError, Out};
use refrain::history_file::FileFormat;
use refrain_history::{RunId, RunStatus, Timestamp, WorkflowId};
use refrain_server::remote::{
    Claimed, Description, HumanTask, ListQuery, RemoteClient, RemoteError, RunSummary, Schedule,
    StartBody, Triggered,
};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// Runs `command` through the server at `url` with `token`.
pub(super) async fn execute(
    url: &str,
    token: Option<&str>,
    json: bool,
    command: Command,
    out: Out<'_>,
) -> Result<u8, CliError> {
    let token = match token {
        Some(t) if !t.trim().is_empty() => t.trim(),
        _ => {
            return Err(CliError::Unusable(
                "no access token: set REFRAIN_TOKEN to a token of an identity in the server's \
                 identities file (`refrain token` makes one)"
                    .into(),
            ))
        }
    };
    let named = match &command {
        Command::Signal {
            sender: Some(_), ..
        } => Some("--sender"),
        Command::Cancel {
            requested_by: Some(_),
            ..
        }
        | Command::Terminate {
            terminated_by: Some(_),
            ..
        } => Some("--by"),
        Command::Decide {
            decided_by: Some(_),
            ..
        }
        | Command::Claim {
            claimed_by: Some(_),
            ..
        } => Some("--as"),
        _ => None,
    };
    if let Some(flag) = named {
        return Err(CliError::Unusable(format!(
            "{flag} is for a store (--db): through a server, the server records the identity \
             of the access token"
        )));
    }
    let api = RemoteClient::new(url, token).map_err(unusable)?;
    let ctx = Remote { api, json };
    ctx.run(command, out).await
}

struct Remote {
    api: RemoteClient,
    json: bool,
}

impl Remote {
    async fn run(&self, command: Command, out: Out<'_>) -> Result<u8, CliError> {
        let api = &self.api;
        match command {
            Command::List {
                status,
                workflow_type,
                limit,
                after,
                id_prefix,
                newest_first,
            } => {
                let query = ListQuery {
                    status: status.map(|s| RunStatus::from(s).as_str().to_owned()),
                    workflow_type,
                    id_prefix,
                    limit: limit.map(|n| u32::try_from(n.min(1000)).unwrap_or(1000)),
                    cursor: after,
                    order: newest_first.then(|| "newest".to_owned()),
                    ..ListQuery::default()
                };
                self.list(query, limit.is_some(), out).await?;
            }
            Command::Describe { id } => {
                let d = api.describe(&id).await.map_err(failed)?;
                if self.json {
                    print_json(out, &d)?;
                } else {
                    describe_text(&d, out)?;
                }
            }
            Command::History { id, run } => {
                let export = api.history(&id, run.map(|r| r.0)).await.map_err(failed)?;
                if self.json {
                    writeln!(out, "{}", export.to_json())?;
                    return Ok(0);
                }
                // The export has no run record: the close time of a
                // terminated run (which no activation recorded) comes from
                // describe, when it is the latest run.
                let latest = api.describe(&id).await.map_err(failed)?;
                let started_at = match export.events.first() {
                    Some(refrain_history::Event::WorkflowStarted { start_time, .. }) => *start_time,
                    _ => parse_time(&latest.started_at).unwrap_or(Timestamp(0)),
                };
                let closed_at = if latest.run == export.run.0 {
                    latest.closed_at.as_deref().and_then(parse_time)
                } else {
                    None
                };
                let header = Header {
                    id: &export.workflow_id,
                    run: export.run,
                    workflow_type: &export.workflow_type,
                    status: status_of(&export.events),
                    started_at,
                    closed_at,
                };
                timeline(&header, &export.events, out)?;
                if latest.run == export.run.0 && latest.closed_at.is_none() {
                    writeln!(out)?;
                    writeln!(out, "now: the run is open")?;
                    for w in &latest.waiting_on {
                        writeln!(out, "  {}", w.text)?;
                    }
                }
            }
            Command::Export { id, out: file, run } => {
                let export = api.history(&id, run.map(|r| r.0)).await.map_err(failed)?;
                export
                    .write_file(&file)
                    .map_err(|e| CliError::Failed(format!("cannot write the export: {e}")))?;
                self.exported(
                    &export.workflow_id,
                    export.run,
                    export.events.len(),
                    &file,
                    out,
                )?;
            }
            Command::Verify => {
                return Err(CliError::Unusable(
                    "verify reads the store's files: run it with --db DIR on the machine of the \
                     store, while the application is stopped"
                        .into(),
                ))
            }
            Command::Shadow { .. } => {
                return Err(CliError::Unusable(
                    "shadow runs workflow code on a store's open runs and reads no server: run it \
                     with --db DIR (a copy of the store is read), or export the open runs and \
                     give --exports DIR"
                        .into(),
                ))
            }
            Command::Replay { .. } => {
                return Err(CliError::Unusable(
                    "replay runs workflow code on history files and reads no server: export the \
                     histories first (`refrain --server URL export ID --out FILE.json`), then \
                     `refrain replay FILE.json` without --server"
                        .into(),
                ))
            }
            Command::Signal {
                id, name, value, ..
            } => {
                let value = parse_json(&value, "the signal value")?;
                let sent = api.signal(&id, &name, value).await.map_err(failed)?;
                self.done(out, &sent, || {
                    format!("signal {name} sent to {id} (run {})", sent.run)
                })?;
            }
            Command::Cancel { id, reason, .. } => {
                let run = api.cancel(&id, &reason).await.map_err(failed)?;
                self.done(out, &run, || {
                    format!("cancellation of {id} (run {}) requested: {reason}", run.run)
                })?;
            }
            Command::Terminate { id, reason, .. } => {
                let run = api.terminate(&id, &reason).await.map_err(failed)?;
                self.done(out, &run, || {
                    format!("{id} (run {}) terminated: {reason}", run.run)
                })?;
            }
            Command::Start {
                workflow_type,
                id,
                value,
                on_conflict,
            } => {
                let input = parse_json(&value, "the input")?;
                let body = StartBody {
                    workflow_type,
                    workflow_id: id,
                    input,
                    on_conflict: on_conflict.into(),
                };
                let s = api.start(&body).await.map_err(failed)?;
                self.done(out, &s, || super::local::started_text(&s))?;
            }
            Command::Query { id, name, value } => {
                let input = value
                    .map(|j| parse_json(&j, "the query input"))
                    .transpose()?;
                let answer = api.query(&id, &name, input).await.map_err(failed)?;
                self.done(out, &answer, || answer.result.to_string())?;
            }
            Command::Update {
                id,
                name,
                value,
                update_id,
            } => {
                let input = parse_json(&value, "the update input")?;
                let answer = api
                    .update(&id, &name, input, update_id.as_deref())
                    .await
                    .map_err(failed)?;
                self.done(out, &answer, || answer.result.to_string())?;
            }
            Command::Tasks { assignee } => {
                let list = api.tasks(assignee.as_deref()).await.map_err(failed)?;
                if self.json {
                    print_json(out, &list)?;
                } else {
                    tasks_text(&list.tasks, out)?;
                }
            }
            Command::Decide {
                task,
                value,
                comment,
                ..
            } => {
                let (run, cmd) = super::local::parse_task_id(&task)?;
                let decision = parse_json(&value, "the decision")?;
                let d = api
                    .decide(run, cmd, decision, comment.as_deref())
                    .await
                    .map_err(failed)?;
                self.done(out, &d, || {
                    format!(
                        "task {task} of {} (run {}) decided by {}",
                        d.workflow_id, d.run, d.decided_by
                    )
                })?;
            }
            Command::Claim { task, .. } => {
                let (run, cmd) = super::local::parse_task_id(&task)?;
                let c = self.api.claim(run, cmd).await.map_err(failed)?;
                self.done(out, &c, || claimed_text(&task, &c))?;
            }
            Command::Schedules { action } => self.schedules(action, out).await?,
            Command::Purge {
                older_than,
                workflow_type,
                export,
                dry_run,
            } => {
                let args = super::purge::PurgeArgs {
                    older_than,
                    workflow_type,
                    export,
                    dry_run,
                };
                super::purge::remote(api, args, self.json, out).await?;
            }
            Command::Serve { .. } | Command::Token => {
                return Err(CliError::Unusable(
                    "serve and token do not take --server".into(),
                ))
            }
        }
        Ok(0)
    }

    async fn list(
        &self,
        mut query: ListQuery,
        one_page: bool,
        out: Out<'_>,
    ) -> Result<(), CliError> {
        if !one_page {
            query.limit = Some(1000);
        }
        let mut runs = Vec::new();
        let more = loop {
            let page = self.api.list(&query).await.map_err(failed)?;
            runs.extend(page.runs);
            match page.next_cursor {
                Some(cursor) if !one_page => query.cursor = Some(cursor),
                next => break next,
            }
        };
        if self.json {
            #[derive(Serialize)]
            struct Page<'a> {
                runs: &'a [RunSummary],
                next_cursor: Option<String>,
            }
            return print_json(
                out,
                &Page {
                    runs: &runs,
                    next_cursor: more,
                },
            );
        }
        super::local::runs_table(&runs, more.as_deref(), out)
    }

    async fn schedules(
        &self,
        action: Option<ScheduleAction>,
        out: Out<'_>,
    ) -> Result<(), CliError> {
        let api = &self.api;
        let one = match action.unwrap_or(ScheduleAction::List) {
            ScheduleAction::List => {
                let list = api.schedules().await.map_err(failed)?;
                if self.json {
                    return print_json(out, &list);
                }
                return schedules_text(&list.schedules, out);
            }
            ScheduleAction::Describe { id } => api.schedule(&id).await,
            ScheduleAction::Pause { id } => api.pause_schedule(&id).await,
            ScheduleAction::Resume { id } => api.resume_schedule(&id).await,
            ScheduleAction::Trigger { id } => {
                let t = api.trigger_schedule(&id).await.map_err(failed)?;
                return self.done(out, &t, || triggered_text(&t));
            }
        }
        .map_err(failed)?;
        if self.json {
            return print_json(out, &one);
        }
        schedule_text(&one, out)
    }

    /// Prints the answer as JSON, or the line `text` makes.
    fn done<T: Serialize>(
        &self,
        out: Out<'_>,
        answer: &T,
        text: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        if self.json {
            print_json(out, answer)
        } else {
            writeln!(out, "{}", text())?;
            Ok(())
        }
    }

    fn exported(
        &self,
        id: &WorkflowId,
        run: RunId,
        events: usize,
        file: &Path,
        out: Out<'_>,
    ) -> Result<(), CliError> {
        let form = match FileFormat::for_path(file) {
            FileFormat::Json => "JSON",
            FileFormat::Binary => "binary",
        };
        if self.json {
            let v = serde_json::json!({
                "workflow_id": id.as_str(), "run": run.0, "events": events,
                "file": file.display().to_string(), "format": form,
            });
            return print_json(out, &v);
        }
        writeln!(
            out,
            "exported {events} events of {id} run {} to {} ({form})",
            run.0,
            file.display()
        )?;
        Ok(())
    }
}

/// What a schedule's trigger did, in words.
pub(super) fn triggered_text(t: &Triggered) -> String {
    match t.outcome.as_str() {
        "started" | "" => format!(
            "schedule {} fired: started {} (run {})",
            t.schedule, t.workflow_id, t.run
        ),
        outcome => format!(
            "schedule {} fired: {outcome} (overlap policy), {} (run {}) is open",
            t.schedule, t.workflow_id, t.run
        ),
    }
}

pub(super) fn print_json<T: Serialize + ?Sized>(out: Out<'_>, value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Failed(format!("cannot write JSON: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// A JSON argument, checked before anything is sent.
pub(super) fn parse_json(text: &str, what: &str) -> Result<Value, CliError> {
    serde_json::from_str(text).map_err(|e| CliError::Failed(format!("{what} is not JSON: {e}")))
}

/// An RFC 3339 time of the API.
fn parse_time(s: &str) -> Option<Timestamp> {
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    u64::try_from(ms).ok().map(Timestamp)
}

fn unusable(e: RemoteError) -> CliError {
    CliError::Unusable(e.to_string())
}

/// Maps an error of the API to the command's exit code (see the module
/// documentation).
pub(super) fn failed(e: RemoteError) -> CliError {
    match &e {
        RemoteError::Api { status: 401, .. } => CliError::Unusable(format!(
            "the server does not know this access token (REFRAIN_TOKEN): {e}"
        )),
        RemoteError::Api { status: 403, .. } => {
            CliError::Unusable(format!("not allowed for this token's identity: {e}"))
        }
        RemoteError::Api { code, .. } if code == "unavailable" => CliError::Unusable(e.to_string()),
        RemoteError::Api { .. } => CliError::Failed(e.to_string()),
        _ => unusable(e),
    }
}

// ----- text output -----

fn describe_text(d: &Description, out: Out<'_>) -> Result<(), CliError> {
    writeln!(out, "workflow  {}", d.workflow_id)?;
    writeln!(out, "run       {}", d.run)?;
    writeln!(out, "type      {}", d.workflow_type)?;
    writeln!(out, "status    {}", d.status)?;
    writeln!(out, "started   {}", d.started_at)?;
    writeln!(out, "closed    {}", d.closed_at.as_deref().unwrap_or("-"))?;
    writeln!(out, "history   {} events", d.history_events)?;
    for (label, v) in [
        ("continues run", &d.continued_from),
        ("continued as run", &d.continued_to),
        ("parent   ", &d.parent),
    ] {
        if let Some(v) = v {
            writeln!(out, "{label} {}", compact(v))?;
        }
    }
    if let Some(r) = &d.result {
        writeln!(out, "result    {}", compact(r))?;
    }
    if let Some(f) = &d.failure {
        writeln!(out, "failure   {}", compact(f))?;
    }
    writeln!(out)?;
    if d.waiting_on.is_empty() {
        writeln!(out, "waiting on: nothing")?;
    } else {
        writeln!(out, "waiting on:")?;
        for w in &d.waiting_on {
            writeln!(out, "  {}", w.text)?;
        }
    }
    if !d.human_tasks.is_empty() {
        writeln!(out, "human tasks:")?;
        tasks_text(&d.human_tasks, out)?;
    }
    match &d.last_task_failure {
        None | Some(Value::Null) => writeln!(out, "last activation failure: none")?,
        Some(f) => {
            writeln!(
                out,
                "last activation failure (the task is retried until fixed code is deployed):"
            )?;
            let text = f.as_str().map_or_else(|| compact(f), str::to_owned);
            writeln!(out, "{}", crate::replayer::indent(&text))?;
        }
    }
    Ok(())
}

/// A JSON value on one line, shortened (a string without its quotes).
fn compact(v: &Value) -> String {
    const MAX: usize = 160;
    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// The line that says a claim was recorded.
pub(super) fn claimed_text(task: &str, c: &Claimed) -> String {
    format!(
        "task {task} of {} (run {}) claimed from {} by {}",
        c.workflow_id, c.run, c.claimed_from, c.claimed_by
    )
}

pub(super) fn tasks_text(tasks: &[HumanTask], out: Out<'_>) -> Result<(), CliError> {
    let mut rows = vec![[
        "TASK".to_owned(),
        "WORKFLOW".to_owned(),
        "NAME".to_owned(),
        "ASSIGNEE".to_owned(),
        "LEVEL".to_owned(),
        "DEADLINE (UTC)".to_owned(),
        "ESCALATES TO".to_owned(),
    ]];
    for t in tasks {
        let deadline = match (&t.deadline, t.overdue) {
            (Some(d), true) => format!("{d} (overdue)"),
            (Some(d), false) => d.clone(),
            (None, _) => "-".to_owned(),
        };
        let assignee = match &t.claimed_from {
            Some(group) => format!("{} (claimed from {group})", t.assignee),
            None => t.assignee.clone(),
        };
        rows.push([
            t.id.clone(),
            t.workflow_id.clone(),
            t.task.clone(),
            assignee,
            t.level.to_string(),
            deadline,
            t.escalates_to.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    write_table(out, &rows)?;
    if tasks.is_empty() {
        writeln!(out, "(no open tasks)")?;
    }
    Ok(())
}

fn field(s: &Schedule, name: &str) -> String {
    match s.0.get(name) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(v) => compact(v),
    }
}

pub(super) fn schedules_text(list: &[Schedule], out: Out<'_>) -> Result<(), CliError> {
    let mut rows = vec![[
        "ID".to_owned(),
        "TYPE".to_owned(),
        "PAUSED".to_owned(),
        "NEXT FIRE (UTC)".to_owned(),
        "RUNS".to_owned(),
    ]];
    for s in list {
        rows.push([
            s.id().unwrap_or("?").to_owned(),
            field(s, "workflow_type"),
            s.paused().map_or_else(|| "-".to_owned(), |p| p.to_string()),
            field(s, "next_fire"),
            field(s, "runs_started"),
        ]);
    }
    write_table(out, &rows)?;
    if list.is_empty() {
        writeln!(out, "(no schedules)")?;
    }
    Ok(())
}

pub(super) fn schedule_text(s: &Schedule, out: Out<'_>) -> Result<(), CliError> {
    let width = s.0.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in &s.0 {
        let v = if v.is_null() {
            "-".to_owned()
        } else {
            compact(v)
        };
        writeln!(out, "{k:<width$}  {v}")?;
    }
    Ok(())
}
