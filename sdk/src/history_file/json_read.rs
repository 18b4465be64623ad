//! Reading the JSON form: the top level and the fields of each event
//! kind, taken with [`Obj`].

use super::json_fields::{describe, Obj, R};
use super::{HistoryExport, HistoryFileError, JSON_FORMAT, JSON_VERSION};
use refrain_history::{Event, RunId, Timestamp, WorkflowId};
use serde_json::value::RawValue;

pub(super) fn parse_export(top: &RawValue) -> R<HistoryExport> {
    let mut o =
        Obj::parse(top, None, String::new()).map_err(|_| HistoryFileError::NotAHistory {
            reason: format!("the top level is {}, not an object", describe(top)),
        })?;
    // Format and version first: a future version may have different fields.
    match o.fields.remove("format") {
        None => {
            return Err(HistoryFileError::NotAHistory {
                reason: "no \"format\" field".into(),
            })
        }
        Some(raw) => {
            let found: Option<String> = serde_json::from_str(raw.get()).ok();
            if found.as_deref() != Some(JSON_FORMAT) {
                return Err(HistoryFileError::NotAHistory {
                    reason: format!("\"format\" is {}, not \"{JSON_FORMAT}\"", raw.get()),
                });
            }
        }
    }
    let version = o.raw("version")?;
    if serde_json::from_str::<u64>(version.get()).ok() != Some(JSON_VERSION) {
        return Err(HistoryFileError::UnsupportedVersion {
            found: version.get().to_owned(),
            supported: JSON_VERSION,
        });
    }
    let workflow_id = WorkflowId(o.string("workflow_id")?);
    let run = RunId(o.req("run")?);
    let workflow_type = o.string("workflow_type")?;
    let raw_events = o.list("events")?;
    o.finish()?;
    let events = raw_events
        .into_iter()
        .enumerate()
        .map(|(i, raw)| parse_event(i, raw))
        .collect::<R<Vec<_>>>()?;
    Ok(HistoryExport {
        workflow_id,
        run,
        workflow_type,
        events,
    })
}

fn parse_event(index: usize, raw: &RawValue) -> R<Event> {
    let mut o = Obj::parse(raw, Some(index), String::new())?;
    let seq: u64 = o.req("seq")?;
    let expected = index as u64 + 1;
    if seq != expected {
        return Err(HistoryFileError::SeqMismatch {
            event: index,
            expected,
            found: seq,
        });
    }
    let kind = o.string("type")?;
    let event = match kind.as_str() {
        "WorkflowStarted" => Event::WorkflowStarted {
            workflow_type: o.string("workflow_type")?,
            workflow_id: WorkflowId(o.string("workflow_id")?),
            input: o.payload("input")?,
            seed: o.seed("seed")?,
            start_time: o.timestamp("start_time")?,
            continued_from: o.opt("continued_from")?.map(RunId),
            parent: o.parent("parent")?,
        },
        "ActivationStarted" => Event::ActivationStarted {
            time: o.timestamp("time")?,
        },
        "ActivityScheduled" => Event::ActivityScheduled {
            cmd: o.cmd("cmd")?,
            activity_type: o.string("activity_type")?,
            input: o.payload("input")?,
            options: o.options("options")?,
            callsite: o.callsite("callsite")?,
        },
        "ActivityCompleted" => Event::ActivityCompleted {
            cmd: o.cmd("cmd")?,
            attempt: o.req("attempt")?,
            result: o.payload("result")?,
        },
        "ActivityFailed" => Event::ActivityFailed {
            cmd: o.cmd("cmd")?,
            attempt: o.req("attempt")?,
            failure: o.failure("failure")?,
        },
        "TimerStarted" => Event::TimerStarted {
            cmd: o.cmd("cmd")?,
            fire_at: o.timestamp("fire_at")?,
            callsite: o.callsite("callsite")?,
        },
        "TimerFired" => Event::TimerFired { cmd: o.cmd("cmd")? },
        "TimerCancelled" => Event::TimerCancelled { cmd: o.cmd("cmd")? },
        "SignalReceived" => Event::SignalReceived {
            name: o.string("name")?,
            payload: o.payload("payload")?,
            sender: o.opt("sender")?,
        },
        "SideEffectRecorded" => Event::SideEffectRecorded {
            cmd: o.cmd("cmd")?,
            value: o.payload("value")?,
            callsite: o.callsite("callsite")?,
        },
        "WorkflowCompleted" => Event::WorkflowCompleted {
            result: o.payload("result")?,
        },
        "WorkflowFailed" => Event::WorkflowFailed {
            failure: o.failure("failure")?,
        },
        "PatchMarker" => Event::PatchMarker {
            patch_id: o.string("patch_id")?,
            deprecated: o.req("deprecated")?,
        },
        "WorkflowContinuedAsNew" => Event::WorkflowContinuedAsNew {
            input: o.payload("input")?,
            seed: o.seed("seed")?,
            carried_signals: o.signal_records("carried_signals")?,
        },
        "WorkflowCancelRequested" => Event::WorkflowCancelRequested {
            reason: o.string("reason")?,
            requested_by: o.opt("requested_by")?,
        },
        "ActivityCancelRequested" => Event::ActivityCancelRequested { cmd: o.cmd("cmd")? },
        "WorkflowCancelled" => Event::WorkflowCancelled {
            reason: o.string("reason")?,
        },
        "WorkflowTerminated" => Event::WorkflowTerminated {
            reason: o.string("reason")?,
            terminated_by: o.opt("terminated_by")?,
        },
        "ChildWorkflowStarted" => Event::ChildWorkflowStarted {
            cmd: o.cmd("cmd")?,
            workflow_type: o.string("workflow_type")?,
            workflow_id: WorkflowId(o.string("workflow_id")?),
            input: o.payload("input")?,
            seed: o.seed("seed")?,
            parent_close: o.parent_close("parent_close")?,
            callsite: o.callsite("callsite")?,
        },
        "ChildWorkflowCompleted" => Event::ChildWorkflowCompleted {
            cmd: o.cmd("cmd")?,
            result: o.payload("result")?,
        },
        "ChildWorkflowFailed" => Event::ChildWorkflowFailed {
            cmd: o.cmd("cmd")?,
            failure: o.failure("failure")?,
        },
        "ChildWorkflowCancelRequested" => {
            Event::ChildWorkflowCancelRequested { cmd: o.cmd("cmd")? }
        }
        "HumanTaskAssigned" => Event::HumanTaskAssigned {
            cmd: o.cmd("cmd")?,
            task: o.string("task")?,
            assignee: o.string("assignee")?,
            form: o.opt_payload("form")?,
            deadline: o.opt("deadline")?.map(Timestamp),
            level: o.req("level")?,
            callsite: o.callsite("callsite")?,
            escalations: o.escalations("escalations")?,
        },
        "HumanTaskReminded" => Event::HumanTaskReminded {
            cmd: o.cmd("cmd")?,
            assignee: o.string("assignee")?,
        },
        "HumanTaskEscalated" => Event::HumanTaskEscalated {
            cmd: o.cmd("cmd")?,
            from: o.string("from")?,
            to: o.string("to")?,
            level: o.req("level")?,
            deadline: o.opt("deadline")?.map(Timestamp),
        },
        "HumanTaskDecided" => Event::HumanTaskDecided {
            cmd: o.cmd("cmd")?,
            decision: o.payload("decision")?,
            decided_by: o.string("decided_by")?,
            comment: o.opt("comment")?,
            decided_at: o.timestamp("decided_at")?,
        },
        "HumanTaskClosed" => Event::HumanTaskClosed {
            cmd: o.cmd("cmd")?,
            reason: o.string("reason")?,
        },
        "HumanTaskClaimed" => Event::HumanTaskClaimed {
            cmd: o.cmd("cmd")?,
            from: o.string("from")?,
            claimed_by: o.string("claimed_by")?,
            claimed_at: o.timestamp("claimed_at")?,
        },
        "UpdateRequested" => Event::UpdateRequested {
            update_id: o.string("update_id")?,
            name: o.string("name")?,
            input: o.payload("input")?,
        },
        "UpdateAccepted" => Event::UpdateAccepted {
            update_id: o.string("update_id")?,
            name: o.string("name")?,
            input: o.payload("input")?,
        },
        "UpdateCompleted" => Event::UpdateCompleted {
            update_id: o.string("update_id")?,
            result: o.payload("result")?,
        },
        "UpdateFailed" => Event::UpdateFailed {
            update_id: o.string("update_id")?,
            failure: o.failure("failure")?,
        },
        _ => {
            return Err(HistoryFileError::UnknownEventType {
                event: index,
                found: kind,
            })
        }
    };
    o.finish()?;
    Ok(event)
}
