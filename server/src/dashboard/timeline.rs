//! A run's timeline: every event of its history with its time, the wait
//! since the event before, and what it means, in the words
//! `refrain history` prints, plus the source line of each recorded call.
//!
//! Events carry the time of the activation that recorded them (an inbound
//! result arrived at most that much earlier). Retries happen inside the
//! store: the history records an activity's final attempt, with its number
//! and, when it failed, its error; attempts still in progress are on the
//! run page's "waiting on" panel.

use super::fmt::{failure, human, short, utc};
use maud::{html, Markup};
use refrain_history::{
    ActivityOptions, Callsite, CommandSeq, Event, Failure, FailureCause, ParentClosePolicy,
    RunRecord, Timestamp,
};
use std::collections::BTreeMap;

/// Characters of a payload shown inline.
const SHORT: usize = 160;

/// What the timeline remembers about each command while it walks.
#[derive(Default)]
struct Known {
    activities: BTreeMap<CommandSeq, (String, ActivityOptions)>,
    timers: BTreeMap<CommandSeq, Timestamp>,
    children: BTreeMap<CommandSeq, String>,
    human_tasks: BTreeMap<CommandSeq, String>,
    updates: BTreeMap<String, String>,
}

/// The timeline of `events`, the history of the run `record` describes.
pub(super) fn render(events: &[Event], record: &RunRecord) -> Markup {
    let mut known = Known::default();
    let mut time = record.started_at;
    let mut previous: Option<Timestamp> = None;
    let mut activation = 0u64;
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        match event {
            Event::WorkflowStarted { start_time, .. } => time = *start_time,
            Event::ActivationStarted { time: t } => {
                time = *t;
                activation += 1;
            }
            // Appended outside any activation: its only time is the close.
            Event::WorkflowTerminated { .. } => time = record.closed_at.unwrap_or(time),
            _ => {}
        }
        let wait = match previous {
            Some(p) if time > p => format!("+{}", human(time.saturating_since(p))),
            _ => String::new(),
        };
        previous = Some(time);
        rows.push((time, wait, describe(event, time, activation, &mut known)));
    }
    html! {
        table.timeline {
            thead { tr { th { "#" } th { "Time (UTC)" } th { "Wait" } th { "Event" } th { "Source" } } }
            tbody {
                @for ((event, (time, wait, text)), seq) in events.iter().zip(rows).zip(1u64..) {
                    tr class=(row_class(event)) {
                        td.seq { (seq) }
                        td.time { (utc(time)) }
                        td.wait { (wait) }
                        td.event { (text) }
                        td.source { @if let Some(c) = callsite(event) { code { (c.file) ":" (c.line) } } }
                    }
                }
            }
        }
    }
}

/// The class of a row, for the events an eye should find.
fn row_class(event: &Event) -> &'static str {
    match event {
        Event::ActivationStarted { .. } => "activation",
        Event::ActivityFailed { .. }
        | Event::WorkflowFailed { .. }
        | Event::ChildWorkflowFailed { .. }
        | Event::UpdateFailed { .. }
        | Event::WorkflowTerminated { .. } => "bad",
        Event::HumanTaskAssigned { .. }
        | Event::HumanTaskReminded { .. }
        | Event::HumanTaskEscalated { .. }
        | Event::HumanTaskDecided { .. }
        | Event::HumanTaskClosed { .. }
        | Event::HumanTaskClaimed { .. } => "human",
        _ => "",
    }
}

/// Where the workflow code made the call an event records.
fn callsite(event: &Event) -> Option<&Callsite> {
    match event {
        Event::ActivityScheduled { callsite, .. }
        | Event::TimerStarted { callsite, .. }
        | Event::SideEffectRecorded { callsite, .. }
        | Event::ChildWorkflowStarted { callsite, .. }
        | Event::HumanTaskAssigned { callsite, .. } => Some(callsite),
        _ => None,
    }
}

fn describe(event: &Event, time: Timestamp, activation: u64, known: &mut Known) -> Markup {
    let activity = |known: &Known, cmd: &CommandSeq| match known.activities.get(cmd) {
        Some((name, _)) => format!("{name} (cmd {})", cmd.0),
        None => format!("(cmd {})", cmd.0),
    };
    let child = |known: &Known, cmd: &CommandSeq| match known.children.get(cmd) {
        Some(name) => format!("{name} (cmd {})", cmd.0),
        None => format!("(cmd {})", cmd.0),
    };
    match event {
        Event::WorkflowStarted {
            workflow_type,
            input,
            continued_from,
            parent,
            ..
        } => html! {
            "started " strong { (workflow_type) } " with input " code { (short(input, SHORT)) }
            @if let Some(from) = continued_from { ", continuing run " (from.0) }
            @if let Some(p) = parent {
                ", child of " a href={ "/runs/" (super::respond::enc(p.workflow_id.as_str())) "?run=" (p.run.0) } { (p.workflow_id.as_str()) }
                " run " (p.run.0) " (cmd " (p.cmd.0) ")"
            }
        },
        Event::ActivationStarted { .. } => html! { span.muted { "activation " (activation) } },
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
            html! {
                "schedule activity " strong { (activity(known, cmd)) } " with input " code { (short(input, SHORT)) }
                (options_text(options))
            }
        }
        Event::ActivityCompleted {
            cmd,
            attempt,
            result,
        } => html! {
            "activity " strong { (activity(known, cmd)) } " completed on attempt " (attempt)
            @if *attempt > 1 { " after " (attempt - 1) " failed attempt(s)" }
            ": result " code { (short(result, SHORT)) }
        },
        Event::ActivityFailed {
            cmd,
            attempt,
            failure: f,
        } => {
            let why = known
                .activities
                .get(cmd)
                .map(|(_, o)| gave_up(f, *attempt, o))
                .unwrap_or_default();
            html! {
                "activity " strong { (activity(known, cmd)) } " FAILED on attempt " (attempt) (why) ": "
                span.error { (failure(f)) }
            }
        }
        Event::TimerStarted { cmd, fire_at, .. } => {
            known.timers.insert(*cmd, time);
            html! {
                "start timer (cmd " (cmd.0) ") for " (human(fire_at.saturating_since(time)))
                ", fires " (utc(*fire_at))
            }
        }
        Event::TimerFired { cmd } => html! {
            "timer (cmd " (cmd.0) ") fired"
            @if let Some(started) = known.timers.get(cmd) { ", started at " (utc(*started)) }
        },
        Event::TimerCancelled { cmd } => html! { "cancel timer (cmd " (cmd.0) ")" },
        Event::SignalReceived {
            name,
            payload,
            sender,
        } => html! {
            "signal " strong { (name) } " from " strong { (sender.as_deref().unwrap_or("(sender not given)")) }
            ": " code { (short(payload, SHORT)) }
        },
        Event::SideEffectRecorded { cmd, value, .. } => html! {
            "side effect (cmd " (cmd.0) ") recorded " code { (short(value, SHORT)) }
        },
        Event::WorkflowCompleted { result } => html! {
            "workflow " strong { "COMPLETED" } " with result " code { (short(result, SHORT)) }
        },
        Event::WorkflowFailed { failure: f } => html! {
            "workflow " strong { "FAILED" } ": " span.error { (failure(f)) }
        },
        Event::PatchMarker {
            patch_id,
            deprecated,
        } => html! {
            "patch " code { (patch_id) }
            @if *deprecated { " (deprecated) marked" } @else { " applied: this run takes the new code path" }
        },
        Event::WorkflowContinuedAsNew {
            input,
            carried_signals,
            ..
        } => html! {
            strong { "CONTINUED AS NEW" } " with input " code { (short(input, SHORT)) }
            ", carrying " (carried_signals.len()) " signal(s)"
        },
        Event::WorkflowCancelRequested {
            reason,
            requested_by,
        } => html! {
            strong { "CANCEL REQUESTED" } " by " strong { (requested_by.as_deref().unwrap_or("(requester not given)")) }
            ": " (reason)
        },
        Event::ActivityCancelRequested { cmd } => {
            html! { "cancel activity " (activity(known, cmd)) }
        }
        Event::WorkflowCancelled { reason } => {
            html! { "workflow " strong { "CANCELLED" } ": " (reason) }
        }
        Event::WorkflowTerminated {
            reason,
            terminated_by,
        } => html! {
            "workflow " strong { "TERMINATED" }
            @if let Some(who) = terminated_by { " by " strong.who { (who) } }
            ": " (reason)
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
            html! {
                "start child workflow "
                a href={ "/runs/" (super::respond::enc(workflow_id.as_str())) } { (child(known, cmd)) }
                " with input " code { (short(input, SHORT)) } "; " (on_close) " if this run closes first"
            }
        }
        Event::ChildWorkflowCompleted { cmd, result } => html! {
            "child workflow " (child(known, cmd)) " completed: result " code { (short(result, SHORT)) }
        },
        Event::ChildWorkflowFailed { cmd, failure: f } => html! {
            "child workflow " (child(known, cmd)) " FAILED: " span.error { (failure(f)) }
        },
        Event::ChildWorkflowCancelRequested { cmd } => {
            html! { "cancel child workflow " (child(known, cmd)) }
        }
        Event::HumanTaskAssigned { .. }
        | Event::HumanTaskReminded { .. }
        | Event::HumanTaskEscalated { .. }
        | Event::HumanTaskDecided { .. }
        | Event::HumanTaskClosed { .. }
        | Event::HumanTaskClaimed { .. } => human_task(event, time, known),
        Event::UpdateRequested {
            update_id, name, ..
        } => html! { "update " code { (name) } " (" (update_id) ") requested" },
        Event::UpdateAccepted {
            update_id,
            name,
            input,
        } => {
            known.updates.insert(update_id.clone(), name.clone());
            html! { "accept update " code { (name) } " (" (update_id) ") with " code { (short(input, SHORT)) } }
        }
        Event::UpdateCompleted { update_id, result } => html! {
            "update " (update(known, update_id)) " completed: result " code { (short(result, SHORT)) }
        },
        Event::UpdateFailed {
            update_id,
            failure: f,
        } => html! {
            "update " (update(known, update_id)) " FAILED: " span.error { (failure(f)) }
        },
    }
}

fn update(known: &Known, update_id: &str) -> String {
    match known.updates.get(update_id) {
        Some(name) => format!("{name:?} ({update_id})"),
        None => format!("({update_id})"),
    }
}

/// A human-task event: assignment, reminder, escalation, decision (who
/// decided what, and why), closing.
fn human_task(event: &Event, time: Timestamp, known: &mut Known) -> Markup {
    let name = |known: &Known, cmd: &CommandSeq| match known.human_tasks.get(cmd) {
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
            let chain: Vec<&str> = escalations.iter().map(|e| e.assignee.as_str()).collect();
            html! {
                strong { "ASSIGN" } " " (name(known, cmd)) " to " strong.who { (assignee) }
                @if let Some(f) = form { " with form " code { (short(f, SHORT)) } }
                (due(deadline))
                @if !chain.is_empty() { ", escalates to " (chain.join(", then ")) }
            }
        }
        Event::HumanTaskReminded { cmd, assignee } => {
            html! { "remind " strong.who { (assignee) } " of " (name(known, cmd)) }
        }
        Event::HumanTaskEscalated {
            cmd,
            from,
            to,
            level,
            deadline,
        } => html! {
            strong { "ESCALATE" } " " (name(known, cmd)) " from " (from) " to " strong.who { (to) }
            " (level " (level) ")" (due(deadline))
        },
        Event::HumanTaskDecided {
            cmd,
            decision,
            decided_by,
            comment,
            decided_at,
        } => html! {
            (name(known, cmd)) " " strong { "DECIDED" } " by " strong.decided-by { (decided_by) }
            " at " (utc(*decided_at)) ": " code.decision { (short(decision, SHORT)) }
            @if let Some(c) = comment { br; span.comment { "“" (c) "”" } }
        },
        Event::HumanTaskClosed { cmd, reason } => html! {
            "close " (name(known, cmd)) " without a decision: " (reason)
        },
        Event::HumanTaskClaimed {
            cmd,
            from,
            claimed_by,
            ..
        } => html! {
            (name(known, cmd)) " " strong { "CLAIMED" } " from group " (from) " by " strong.who { (claimed_by) }
        },
        _ => html! {},
    }
}

/// Why the store stopped retrying a failed activity.
fn gave_up(f: &Failure, attempt: u32, options: &ActivityOptions) -> String {
    let retry = &options.retry;
    if f.cause == FailureCause::Cancelled {
        " (cancelled)".into()
    } else if f.non_retryable {
        " (not retryable)".into()
    } else if retry.non_retryable_kinds.contains(&f.kind) {
        format!(" (kind {:?} is not retried)", f.kind)
    } else if retry.max_attempts != 0 && attempt >= retry.max_attempts {
        format!(" (retries exhausted: {} attempts)", retry.max_attempts)
    } else if f.cause == FailureCause::Timeout(refrain_history::TimeoutKind::ScheduleToClose) {
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
