//! `refrain history`: a run's history as a timeline, one line per event.

use super::format::{attempts_of, failure_text, human, role_tag, short, utc};
use super::{pick_run, CliError, Out};
use refrain_history::{
    ActivityOptions, CommandSeq, Event, EventSeq, Failure, FailureCause, HistoryStore,
    ParentClosePolicy, RunId, RunRecord, TimeoutKind, Timestamp, WorkflowId,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the timeline remembers about each command while it walks the
/// history.
#[derive(Default)]
struct Commands {
    activities: BTreeMap<CommandSeq, (String, ActivityOptions)>,
    timers: BTreeMap<CommandSeq, (Timestamp, Timestamp)>,
    children: BTreeMap<CommandSeq, String>,
    human_tasks: BTreeMap<CommandSeq, String>,
    /// Update names by update id.
    updates: BTreeMap<String, String>,
}

pub(super) async fn history(
    store: &dyn HistoryStore,
    id: &WorkflowId,
    run: Option<RunId>,
    out: Out<'_>,
) -> Result<(), CliError> {
    let (run, record) = pick_run(store, id, run).await?;
    let events = store.read_history(run, EventSeq(1)).await?;
    let header = Header {
        id,
        run,
        workflow_type: &record.workflow_type,
        status: record.status.as_str(),
        started_at: record.started_at,
        closed_at: record.closed_at,
    };
    timeline(&header, &events, out)?;
    if record.status.is_open() {
        open_run_footer(store, run, &record, out).await?;
    }
    Ok(())
}

/// What the timeline's first line says about the run.
pub(super) struct Header<'a> {
    pub(super) id: &'a WorkflowId,
    pub(super) run: RunId,
    pub(super) workflow_type: &'a str,
    pub(super) status: &'a str,
    pub(super) started_at: Timestamp,
    pub(super) closed_at: Option<Timestamp>,
}

/// The status a history ends in (a history from a file or the API, which
/// has no run record).
pub(super) fn status_of(events: &[Event]) -> &'static str {
    match events.last() {
        Some(Event::WorkflowCompleted { .. }) => "completed",
        Some(Event::WorkflowFailed { .. }) => "failed",
        Some(Event::WorkflowContinuedAsNew { .. }) => "continued-as-new",
        Some(Event::WorkflowCancelled { .. }) => "cancelled",
        Some(Event::WorkflowTerminated { .. }) => "terminated",
        _ => "running",
    }
}

/// Prints `events` as a timeline, one line per event.
pub(super) fn timeline(
    header: &Header<'_>,
    events: &[Event],
    out: Out<'_>,
) -> Result<(), CliError> {
    let activations = events
        .iter()
        .filter(|e| matches!(e, Event::ActivationStarted { .. }))
        .count();
    writeln!(
        out,
        "{}, run {} ({}, {}): {} events in {activations} activation{}",
        header.id,
        header.run.0,
        header.workflow_type,
        header.status,
        events.len(),
        if activations == 1 { "" } else { "s" }
    )?;
    writeln!(
        out,
        "Times are UTC. Events carry the time of the activation that recorded them; an inbound result arrived at most that much earlier. Retries happen inside the store: only the final attempt is recorded."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:>4}  {:<24}  {:>8}  EVENT",
        "SEQ", "TIME (UTC)", "WAIT"
    )?;
    let mut known = Commands::default();
    let mut time = header.started_at;
    let mut previous: Option<Timestamp> = None;
    let mut activation = 0;
    for (event, seq) in events.iter().zip(1u64..) {
        match event {
            Event::WorkflowStarted { start_time, .. } => time = *start_time,
            Event::ActivationStarted { time: t } => {
                time = *t;
                activation += 1;
            }
            // Appended by the store outside any activation: its only time
            // is the run's close.
            Event::WorkflowTerminated { .. } => time = header.closed_at.unwrap_or(time),
            _ => {}
        }
        let wait = match previous {
            Some(p) if time > p => format!("+{}", human(time.saturating_since(p))),
            _ => String::new(),
        };
        previous = Some(time);
        let text = describe_event(event, time, activation, &mut known);
        writeln!(out, "{seq:>4}  {:<24}  {wait:>8}  {text}", utc(time))?;
    }
    Ok(())
}

/// For an open run, what it is waiting on now: retries in progress are not
/// in the history yet.
async fn open_run_footer(
    store: &dyn HistoryStore,
    run: RunId,
    record: &RunRecord,
    out: Out<'_>,
) -> Result<(), CliError> {
    writeln!(out)?;
    writeln!(out, "now: the run is open")?;
    for &cmd in &record.pending_activities {
        if let Some(task) = store.activity_task(run, cmd).await? {
            let retry = match &task.last_failure {
                Some(f) if task.attempt > 1 => format!(
                    ", retrying after attempt {} failed: {}",
                    task.attempt - 1,
                    failure_text(f)
                ),
                _ => String::new(),
            };
            writeln!(
                out,
                "  activity {}{} (cmd {}) pending, attempt {}{}{retry}",
                task.activity_type,
                role_tag(&task.activity_type),
                cmd.0,
                task.attempt,
                attempts_of(&task.options),
            )?;
        }
    }
    for t in &record.pending_timers {
        writeln!(out, "  timer (cmd {}) fires {}", t.cmd.0, utc(t.fire_at))?;
    }
    for t in store.human_tasks_of_run(run).await? {
        let due = t
            .deadline
            .map(|d| format!(", due {}", utc(d)))
            .unwrap_or_default();
        writeln!(
            out,
            "  human task {} (cmd {}) waits for {} (level {}){due}",
            t.task, t.cmd.0, t.assignee, t.level
        )?;
    }
    if let Some(f) = &record.last_task_failure {
        let first = f.lines().next().unwrap_or_default();
        writeln!(
            out,
            "  activation failing: {first} (see `describe` for the full report)"
        )?;
    }
    Ok(())
}

/// One line per event: what an operator needs to follow the run.
fn describe_event(event: &Event, time: Timestamp, activation: u64, known: &mut Commands) -> String {
    let activity = |known: &Commands, cmd: &CommandSeq| -> String {
        match known.activities.get(cmd) {
            Some((name, _)) => format!("{name}{} (cmd {})", role_tag(name), cmd.0),
            None => format!("(cmd {})", cmd.0),
        }
    };
    let child = |known: &Commands, cmd: &CommandSeq| -> String {
        match known.children.get(cmd) {
            Some(name) => format!("{name} (cmd {})", cmd.0),
            None => format!("(cmd {})", cmd.0),
        }
    };
    match event {
        Event::WorkflowStarted {
            workflow_type,
            input,
            continued_from,
            parent,
            ..
        } => {
            let mut s = format!("started {workflow_type} with input {}", short(input));
            if let Some(from) = continued_from {
                let _ = write!(s, ", continuing run {}", from.0);
            }
            if let Some(p) = parent {
                let _ = write!(
                    s,
                    ", child of {} run {} (cmd {})",
                    p.workflow_id, p.run.0, p.cmd.0
                );
            }
            s
        }
        Event::ActivationStarted { .. } => format!("-- activation {activation}"),
        Event::ActivityScheduled {
            cmd,
            activity_type,
            input,
            options,
            ..
        } => {
            known
                .activities
                .insert(*cmd, (activity_type.clone(), options.clone()));
            format!(
                "schedule activity {} with input {}{}",
                activity(known, cmd),
                short(input),
                options_text(options)
            )
        }
        Event::ActivityCompleted {
            cmd,
            attempt,
            result,
        } => {
            let retries = if *attempt > 1 {
                format!(" after {} failed attempt(s), retried", attempt - 1)
            } else {
                String::new()
            };
            format!(
                "activity {} completed on attempt {attempt}{retries}: result {}",
                activity(known, cmd),
                short(result)
            )
        }
        Event::ActivityFailed {
            cmd,
            attempt,
            failure,
        } => {
            let why = known
                .activities
                .get(cmd)
                .map(|(_, o)| gave_up(failure, *attempt, o))
                .unwrap_or_default();
            format!(
                "activity {} FAILED on attempt {attempt}{why}: {}",
                activity(known, cmd),
                failure_text(failure)
            )
        }
        Event::TimerStarted { cmd, fire_at, .. } => {
            known.timers.insert(*cmd, (time, *fire_at));
            format!(
                "start timer (cmd {}) for {}, fires {}",
                cmd.0,
                human(fire_at.saturating_since(time)),
                utc(*fire_at)
            )
        }
        Event::TimerFired { cmd } => match known.timers.get(cmd) {
            Some((started, fire_at)) => format!(
                "timer (cmd {}) fired: {} since it was started at {}",
                cmd.0,
                human(fire_at.saturating_since(*started)),
                utc(*started)
            ),
            None => format!("timer (cmd {}) fired", cmd.0),
        },
        Event::TimerCancelled { cmd } => format!("cancel timer (cmd {})", cmd.0),
        Event::SignalReceived {
            name,
            payload,
            sender,
        } => format!(
            "signal {name} from {}: {}",
            sender.as_deref().unwrap_or("(sender not given)"),
            short(payload)
        ),
        Event::SideEffectRecorded { cmd, value, .. } => {
            format!("side effect (cmd {}) recorded {}", cmd.0, short(value))
        }
        Event::WorkflowCompleted { result } => {
            format!("workflow COMPLETED with result {}", short(result))
        }
        Event::WorkflowFailed { failure } => {
            format!("workflow FAILED: {}", failure_text(failure))
        }
        Event::PatchMarker {
            patch_id,
            deprecated,
        } => {
            if *deprecated {
                format!("patch {patch_id:?} (deprecated) marked")
            } else {
                format!("patch {patch_id:?} applied: this run takes the new code path")
            }
        }
        Event::WorkflowContinuedAsNew {
            input,
            carried_signals,
            ..
        } => format!(
            "CONTINUED AS NEW run with input {}, carrying {} signal(s)",
            short(input),
            carried_signals.len()
        ),
        Event::WorkflowCancelRequested {
            reason,
            requested_by,
        } => format!(
            "CANCEL REQUESTED by {}: {reason}",
            requested_by.as_deref().unwrap_or("(requester not given)")
        ),
        Event::ActivityCancelRequested { cmd } => {
            format!("cancel activity {}", activity(known, cmd))
        }
        Event::WorkflowCancelled { reason } => format!("workflow CANCELLED: {reason}"),
        Event::WorkflowTerminated {
            reason,
            terminated_by,
        } => match terminated_by {
            Some(who) => format!("workflow TERMINATED by {who}: {reason}"),
            None => format!("workflow TERMINATED: {reason}"),
        },
        Event::ChildWorkflowStarted {
            cmd,
            workflow_type,
            workflow_id,
            input,
            parent_close,
            ..
        } => {
            known
                .children
                .insert(*cmd, format!("{workflow_id} ({workflow_type})"));
            let on_close = match parent_close {
                ParentClosePolicy::Terminate => "terminated",
                ParentClosePolicy::RequestCancel => "asked to cancel",
                ParentClosePolicy::Abandon => "left running",
            };
            format!(
                "start child workflow {} with input {}; {on_close} if this run closes first",
                child(known, cmd),
                short(input)
            )
        }
        Event::ChildWorkflowCompleted { cmd, result } => format!(
            "child workflow {} completed: result {}",
            child(known, cmd),
            short(result)
        ),
        Event::ChildWorkflowFailed { cmd, failure } => format!(
            "child workflow {} FAILED: {}",
            child(known, cmd),
            failure_text(failure)
        ),
        Event::ChildWorkflowCancelRequested { cmd } => {
            format!("cancel child workflow {}", child(known, cmd))
        }
        Event::HumanTaskAssigned { .. }
        | Event::HumanTaskReminded { .. }
        | Event::HumanTaskEscalated { .. }
        | Event::HumanTaskDecided { .. }
        | Event::HumanTaskClosed { .. }
        | Event::HumanTaskClaimed { .. } => human_task_line(event, time, known),
        Event::UpdateRequested {
            update_id, name, ..
        } => format!("update {name:?} ({update_id}) requested (never recorded in a history)"),
        Event::UpdateAccepted {
            update_id,
            name,
            input,
        } => {
            known.updates.insert(update_id.clone(), name.clone());
            format!("accept update {name:?} ({update_id}) with {}", short(input))
        }
        Event::UpdateCompleted { update_id, result } => format!(
            "update {} completed: result {}",
            update(known, update_id),
            short(result)
        ),
        Event::UpdateFailed { update_id, failure } => format!(
            "update {} FAILED: {}",
            update(known, update_id),
            failure_text(failure)
        ),
    }
}

/// An update named by its id and, once its acceptance was seen, its name.
fn update(known: &Commands, update_id: &str) -> String {
    match known.updates.get(update_id) {
        Some(name) => format!("{name:?} ({update_id})"),
        None => format!("({update_id})"),
    }
}

/// The timeline line of a human-task event.
fn human_task_line(event: &Event, time: Timestamp, known: &mut Commands) -> String {
    let name = |known: &Commands, cmd: &CommandSeq| match known.human_tasks.get(cmd) {
        Some(task) => format!("human task {task} (cmd {})", cmd.0),
        None => format!("human task (cmd {})", cmd.0),
    };
    let due = |deadline: &Option<Timestamp>| match deadline {
        Some(d) => format!(", due in {} ({})", human(d.saturating_since(time)), utc(*d)),
        None => String::new(),
    };
    match event {
        Event::HumanTaskAssigned {
            cmd,
            task,
            assignee,
            form,
            deadline,
            escalations,
            ..
        } => {
            known.human_tasks.insert(*cmd, task.clone());
            let form = form
                .as_ref()
                .map(|f| format!(" with form {}", short(f)))
                .unwrap_or_default();
            let chain: Vec<&str> = escalations.iter().map(|e| e.assignee.as_str()).collect();
            let chain = if chain.is_empty() {
                String::new()
            } else {
                format!(", escalates to {}", chain.join(", then "))
            };
            format!(
                "ASSIGN {} to {assignee}{form}{}{chain}",
                name(known, cmd),
                due(deadline)
            )
        }
        Event::HumanTaskReminded { cmd, assignee } => {
            format!("remind {assignee} of {}", name(known, cmd))
        }
        Event::HumanTaskEscalated {
            cmd,
            from,
            to,
            level,
            deadline,
        } => format!(
            "ESCALATE {} from {from} to {to} (level {level}){}",
            name(known, cmd),
            due(deadline)
        ),
        Event::HumanTaskDecided {
            cmd,
            decision,
            decided_by,
            comment,
            decided_at,
        } => format!(
            "{} DECIDED by {decided_by} at {}: {}{}",
            name(known, cmd),
            utc(*decided_at),
            short(decision),
            comment
                .as_ref()
                .map(|c| format!(" ({c:?})"))
                .unwrap_or_default()
        ),
        Event::HumanTaskClosed { cmd, reason } => {
            format!("close {} without a decision: {reason}", name(known, cmd))
        }
        Event::HumanTaskClaimed {
            cmd,
            from,
            claimed_by,
            ..
        } => format!(
            "{} CLAIMED from group {from} by {claimed_by}",
            name(known, cmd)
        ),
        _ => String::new(),
    }
}

/// Why the store stopped retrying a failed activity.
fn gave_up(failure: &Failure, attempt: u32, options: &ActivityOptions) -> String {
    let retry = &options.retry;
    if failure.cause == FailureCause::Cancelled {
        " (cancelled)".into()
    } else if failure.non_retryable {
        " (not retryable)".into()
    } else if retry.non_retryable_kinds.contains(&failure.kind) {
        format!(" (kind {:?} is not retried)", failure.kind)
    } else if retry.max_attempts != 0 && attempt >= retry.max_attempts {
        format!(" (retries exhausted: {} attempts)", retry.max_attempts)
    } else if failure.cause == FailureCause::Timeout(TimeoutKind::ScheduleToClose) {
        " (schedule-to-close deadline passed)".into()
    } else {
        String::new()
    }
}

fn options_text(o: &ActivityOptions) -> String {
    let mut parts = Vec::new();
    match o.retry.max_attempts {
        0 => {}
        1 => parts.push("no retries".to_owned()),
        n => parts.push(format!("up to {n} attempts")),
    }
    if let Some(d) = o.start_to_close {
        parts.push(format!("start-to-close {}", human(d)));
    }
    if let Some(d) = o.schedule_to_close {
        parts.push(format!("schedule-to-close {}", human(d)));
    }
    if let Some(d) = o.heartbeat_timeout {
        parts.push(format!("heartbeat {}", human(d)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", parts.join(", "))
    }
}
