//! Writing the JSON form. A small tree rather than serde_json::Value,
//! because Value can neither keep field order (readability) nor embed
//! payload bytes verbatim (exact round trips).

use super::scalars::{cause_name, has_bytes_key, hex, parent_close_name};
use super::{HistoryExport, JSON_FORMAT, JSON_VERSION};
use refrain_history::{
    ActivityOptions, Callsite, CommandSeq, Event, Failure, ParentRef, Payload, RetryPolicy,
    SignalRecord,
};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use std::time::Duration;

pub(super) enum J {
    Null,
    Bool(bool),
    Num(u64),
    Float(f64),
    Str(String),
    Raw(Box<RawValue>),
    List(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::Num(n) => s.serialize_u64(*n),
            J::Float(x) => s.serialize_f64(*x),
            J::Str(v) => s.serialize_str(v),
            J::Raw(r) => r.serialize(s),
            J::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            J::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

fn str_j(s: &str) -> J {
    J::Str(s.to_owned())
}

pub(super) fn export_json(export: &HistoryExport) -> J {
    let HistoryExport {
        workflow_id,
        run,
        workflow_type,
        events,
    } = export;
    J::Obj(vec![
        ("format", str_j(JSON_FORMAT)),
        ("version", J::Num(JSON_VERSION)),
        ("workflow_id", str_j(workflow_id.as_str())),
        ("run", J::Num(run.0)),
        ("workflow_type", str_j(workflow_type)),
        (
            "events",
            J::List(
                events
                    .iter()
                    .zip(1u64..)
                    .map(|(e, seq)| event_json(seq, e))
                    .collect(),
            ),
        ),
    ])
}

/// The JSON object of one event. Every variant and field is destructured
/// without `..`, so that adding either to `Event` stops this crate from
/// compiling until the format handles it.
fn event_json(seq: u64, event: &Event) -> J {
    let mut o: Vec<(&'static str, J)> = vec![("seq", J::Num(seq)), ("type", str_j(event.kind()))];
    match event {
        Event::WorkflowStarted {
            workflow_type,
            workflow_id,
            input,
            seed,
            start_time,
            continued_from,
            parent,
        } => {
            o.push(("workflow_type", str_j(workflow_type)));
            o.push(("workflow_id", str_j(workflow_id.as_str())));
            o.push(("input", payload_json(input)));
            o.push(("seed", seed_json(*seed)));
            o.push(("start_time", J::Num(start_time.0)));
            o.push((
                "continued_from",
                continued_from.map_or(J::Null, |r| J::Num(r.0)),
            ));
            o.push(("parent", parent.as_ref().map_or(J::Null, parent_json)));
        }
        Event::ActivationStarted { time } => o.push(("time", J::Num(time.0))),
        Event::ActivityScheduled {
            cmd,
            activity_type,
            input,
            options,
            callsite,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("activity_type", str_j(activity_type)));
            o.push(("input", payload_json(input)));
            o.push(("options", options_json(options)));
            o.push(("callsite", callsite_json(callsite)));
        }
        Event::ActivityCompleted {
            cmd,
            attempt,
            result,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("attempt", J::Num(u64::from(*attempt))));
            o.push(("result", payload_json(result)));
        }
        Event::ActivityFailed {
            cmd,
            attempt,
            failure,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("attempt", J::Num(u64::from(*attempt))));
            o.push(("failure", failure_json(failure)));
        }
        Event::TimerStarted {
            cmd,
            fire_at,
            callsite,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("fire_at", J::Num(fire_at.0)));
            o.push(("callsite", callsite_json(callsite)));
        }
        Event::TimerFired { cmd } | Event::TimerCancelled { cmd } => {
            o.push(("cmd", cmd_json(*cmd)));
        }
        Event::SignalReceived {
            name,
            payload,
            sender,
        } => {
            o.push(("name", str_j(name)));
            o.push(("payload", payload_json(payload)));
            o.push(("sender", sender.as_deref().map_or(J::Null, str_j)));
        }
        Event::SideEffectRecorded {
            cmd,
            value,
            callsite,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("value", payload_json(value)));
            o.push(("callsite", callsite_json(callsite)));
        }
        Event::WorkflowCompleted { result } => o.push(("result", payload_json(result))),
        Event::WorkflowFailed { failure } => o.push(("failure", failure_json(failure))),
        Event::PatchMarker {
            patch_id,
            deprecated,
        } => {
            o.push(("patch_id", str_j(patch_id)));
            o.push(("deprecated", J::Bool(*deprecated)));
        }
        Event::WorkflowContinuedAsNew {
            input,
            seed,
            carried_signals,
        } => {
            o.push(("input", payload_json(input)));
            o.push(("seed", seed_json(*seed)));
            o.push((
                "carried_signals",
                J::List(carried_signals.iter().map(signal_record_json).collect()),
            ));
        }
        Event::WorkflowCancelRequested {
            reason,
            requested_by,
        } => {
            o.push(("reason", str_j(reason)));
            o.push((
                "requested_by",
                requested_by.as_deref().map_or(J::Null, str_j),
            ));
        }
        Event::ActivityCancelRequested { cmd } => o.push(("cmd", cmd_json(*cmd))),
        Event::WorkflowCancelled { reason } => o.push(("reason", str_j(reason))),
        Event::WorkflowTerminated {
            reason,
            terminated_by,
        } => {
            o.push(("reason", str_j(reason)));
            // Omitted when not known, so that a history without it is
            // written exactly as before the field existed.
            if let Some(who) = terminated_by {
                o.push(("terminated_by", str_j(who)));
            }
        }
        Event::ChildWorkflowStarted {
            cmd,
            workflow_type,
            workflow_id,
            input,
            seed,
            parent_close,
            callsite,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("workflow_type", str_j(workflow_type)));
            o.push(("workflow_id", str_j(workflow_id.as_str())));
            o.push(("input", payload_json(input)));
            o.push(("seed", seed_json(*seed)));
            o.push(("parent_close", str_j(parent_close_name(*parent_close))));
            o.push(("callsite", callsite_json(callsite)));
        }
        Event::ChildWorkflowCompleted { cmd, result } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("result", payload_json(result)));
        }
        Event::ChildWorkflowFailed { cmd, failure } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("failure", failure_json(failure)));
        }
        Event::ChildWorkflowCancelRequested { cmd } => o.push(("cmd", cmd_json(*cmd))),
        Event::HumanTaskAssigned {
            cmd,
            task,
            assignee,
            form,
            deadline,
            level,
            callsite,
            escalations,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("task", str_j(task)));
            o.push(("assignee", str_j(assignee)));
            o.push(("form", opt_payload_json(form.as_ref())));
            o.push(("deadline", deadline.map_or(J::Null, |t| J::Num(t.0))));
            o.push(("level", J::Num(u64::from(*level))));
            o.push(("callsite", callsite_json(callsite)));
            // Omitted without a chain, as for `terminated_by`.
            let steps: Vec<J> = escalations
                .iter()
                .map(|e| {
                    J::Obj(vec![
                        ("assignee", str_j(&e.assignee)),
                        ("deadline_ms", e.deadline.map_or(J::Null, duration_json)),
                    ])
                })
                .collect();
            if !steps.is_empty() {
                o.push(("escalations", J::List(steps)));
            }
        }
        Event::HumanTaskReminded { cmd, assignee } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("assignee", str_j(assignee)));
        }
        Event::HumanTaskEscalated {
            cmd,
            from,
            to,
            level,
            deadline,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("from", str_j(from)));
            o.push(("to", str_j(to)));
            o.push(("level", J::Num(u64::from(*level))));
            o.push(("deadline", deadline.map_or(J::Null, |t| J::Num(t.0))));
        }
        Event::HumanTaskDecided {
            cmd,
            decision,
            decided_by,
            comment,
            decided_at,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("decision", payload_json(decision)));
            o.push(("decided_by", str_j(decided_by)));
            o.push(("comment", comment.as_deref().map_or(J::Null, str_j)));
            o.push(("decided_at", J::Num(decided_at.0)));
        }
        Event::HumanTaskClosed { cmd, reason } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("reason", str_j(reason)));
        }
        Event::HumanTaskClaimed {
            cmd,
            from,
            claimed_by,
            claimed_at,
        } => {
            o.push(("cmd", cmd_json(*cmd)));
            o.push(("from", str_j(from)));
            o.push(("claimed_by", str_j(claimed_by)));
            o.push(("claimed_at", J::Num(claimed_at.0)));
        }
        Event::UpdateRequested {
            update_id,
            name,
            input,
        }
        | Event::UpdateAccepted {
            update_id,
            name,
            input,
        } => {
            o.push(("update_id", str_j(update_id)));
            o.push(("name", str_j(name)));
            o.push(("input", payload_json(input)));
        }
        Event::UpdateCompleted { update_id, result } => {
            o.push(("update_id", str_j(update_id)));
            o.push(("result", payload_json(result)));
        }
        Event::UpdateFailed { update_id, failure } => {
            o.push(("update_id", str_j(update_id)));
            o.push(("failure", failure_json(failure)));
        }
    }
    J::Obj(o)
}

fn cmd_json(cmd: CommandSeq) -> J {
    J::Num(u64::from(cmd.0))
}

fn seed_json(seed: u64) -> J {
    J::Str(seed.to_string())
}

fn parent_json(p: &ParentRef) -> J {
    let ParentRef {
        workflow_id,
        run,
        cmd,
    } = p;
    J::Obj(vec![
        ("workflow_id", str_j(workflow_id.as_str())),
        ("run", J::Num(run.0)),
        ("cmd", cmd_json(*cmd)),
    ])
}

fn signal_record_json(s: &SignalRecord) -> J {
    let SignalRecord {
        name,
        payload,
        sender,
    } = s;
    J::Obj(vec![
        ("name", str_j(name)),
        ("payload", payload_json(payload)),
        ("sender", sender.as_deref().map_or(J::Null, str_j)),
    ])
}

fn callsite_json(c: &Callsite) -> J {
    let Callsite { file, line, column } = c;
    if *c == Callsite::default() {
        J::Null
    } else {
        J::Str(format!("{file}:{line}:{column}"))
    }
}

fn failure_json(f: &Failure) -> J {
    let Failure {
        kind,
        message,
        non_retryable,
        cause,
        details,
    } = f;
    J::Obj(vec![
        ("kind", str_j(kind)),
        ("message", str_j(message)),
        ("non_retryable", J::Bool(*non_retryable)),
        ("cause", str_j(cause_name(*cause))),
        (
            "details",
            match details {
                None => J::Null,
                // A present `null` payload would read back as absent.
                Some(p) if p.as_bytes() == b"null" => bytes_json(p),
                Some(p) => payload_json(p),
            },
        ),
    ])
}

fn options_json(o: &ActivityOptions) -> J {
    let ActivityOptions {
        start_to_close,
        schedule_to_close,
        heartbeat_timeout,
        retry,
    } = o;
    let RetryPolicy {
        initial_interval,
        backoff_coefficient,
        max_interval,
        max_attempts,
        non_retryable_kinds,
    } = retry;
    let opt = |d: &Option<Duration>| d.map_or(J::Null, duration_json);
    J::Obj(vec![
        ("start_to_close_ms", opt(start_to_close)),
        ("schedule_to_close_ms", opt(schedule_to_close)),
        ("heartbeat_timeout_ms", opt(heartbeat_timeout)),
        (
            "retry",
            J::Obj(vec![
                ("initial_interval_ms", duration_json(*initial_interval)),
                ("backoff_coefficient", float_json(*backoff_coefficient)),
                ("max_interval_ms", duration_json(*max_interval)),
                ("max_attempts", J::Num(u64::from(*max_attempts))),
                (
                    "non_retryable_kinds",
                    J::List(non_retryable_kinds.iter().map(|k| str_j(k)).collect()),
                ),
            ]),
        ),
    ])
}

fn float_json(x: f64) -> J {
    // serde_json writes non-finite floats as null, which would not read back.
    if x.is_nan() {
        str_j("NaN")
    } else if x == f64::INFINITY {
        str_j("inf")
    } else if x == f64::NEG_INFINITY {
        str_j("-inf")
    } else {
        J::Float(x)
    }
}

pub(super) fn duration_json(d: Duration) -> J {
    let nanos = d.as_nanos();
    let (ms, frac) = (nanos / 1_000_000, nanos % 1_000_000);
    if frac == 0 {
        if let Ok(ms) = u64::try_from(ms) {
            return J::Num(ms);
        }
    }
    let text = if frac == 0 {
        ms.to_string()
    } else {
        let frac = format!("{frac:06}");
        format!("{ms}.{}", frac.trim_end_matches('0'))
    };
    // The text is a plain decimal, always valid JSON; the string fallback
    // is read back just the same.
    match RawValue::from_string(text.clone()) {
        Ok(raw) => J::Raw(raw),
        Err(_) => J::Str(text),
    }
}

fn payload_json(p: &Payload) -> J {
    let bytes = p.as_bytes();
    match serde_json::from_slice::<Box<RawValue>>(bytes) {
        Ok(raw) if raw.get().as_bytes() == bytes && !has_bytes_key(raw.get()) => J::Raw(raw),
        _ => bytes_json(p),
    }
}

/// An optional payload: `null` when absent; a present payload whose bytes
/// are `null` in the `$bytes` form, so the two stay apart.
fn opt_payload_json(p: Option<&Payload>) -> J {
    match p {
        None => J::Null,
        Some(p) if p.as_bytes() == b"null" => bytes_json(p),
        Some(p) => payload_json(p),
    }
}

fn bytes_json(p: &Payload) -> J {
    J::Obj(vec![("$bytes", J::Str(hex(p.as_bytes())))])
}
