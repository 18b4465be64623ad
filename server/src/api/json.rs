//! The JSON shapes of the API and their conversions: times as RFC 3339
//! UTC strings, payloads as JSON values, and the store's records as the
//! objects the OpenAPI document describes.
//!
//! Every shape is built here and only here, so the document
//! (`openapi.rs`) and the answers cannot drift apart file by file.

use crate::error::ApiError;
use chrono::{DateTime, SecondsFormat, Utc};
use refrain::PendingActivity;
use refrain_history::{
    Failure, FailureCause, OverlapPolicy, Payload, PendingTimer, RunStatus, RunSummary,
    ScheduleRecord, TimeoutKind, Timestamp, Trigger,
};
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

// ----- times -----

/// `t` as RFC 3339 UTC with milliseconds, `2026-12-07T22:14:03.123Z`.
pub fn time(t: Timestamp) -> Value {
    Value::String(time_text(t.0))
}

/// An optional time, `null` when absent.
pub fn opt_time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, time)
}

/// A `SystemTime` as [`time`] writes it.
pub fn system_time(t: SystemTime) -> Value {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Value::String(time_text(ms))
}

fn time_text(ms: u64) -> String {
    match i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
    {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        // Beyond chrono's range (year 262143): only a corrupt record gets
        // here, and the raw number still says what it holds.
        None => format!("{ms}ms since the epoch"),
    }
}

/// Parses an RFC 3339 time (any offset) given as request parameter
/// `name`.
///
/// # Errors
/// 400 naming the parameter, for text that is not RFC 3339 or a time
/// before 1970.
pub fn parse_time(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(format!(
            "{name} must be an RFC 3339 time such as 2026-12-07T22:14:03Z, got {text:?} ({why})"
        ))
    };
    let t = DateTime::parse_from_rfc3339(text).map_err(|e| bad(&e.to_string()))?;
    u64::try_from(t.timestamp_millis())
        .map(Timestamp)
        .map_err(|_| bad("before 1970"))
}

// ----- payloads -----

/// A recorded payload as a JSON value: the value itself when it is JSON
/// (every payload Refrain writes is), else `{"$bytes_base64": "..."}`.
pub fn payload(p: &Payload) -> Value {
    serde_json::from_slice(p.as_bytes())
        .unwrap_or_else(|_| json!({ "$bytes_base64": base64(p.as_bytes()) }))
}

/// An optional payload, `null` when absent.
pub fn opt_payload(p: Option<&Payload>) -> Value {
    p.map_or(Value::Null, payload)
}

/// A request's JSON value as the payload a typed client would have
/// recorded for the same value.
pub fn to_payload(v: &Value) -> Payload {
    // A `Value` always serializes: its map keys are strings.
    Payload::from_bytes(serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec()))
}

/// Standard base64 with padding (RFC 4648), for the rare payload that is
/// not JSON.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ----- runs -----

/// The status values of the API, as [`RunStatus::as_str`] names them.
pub const STATUSES: [RunStatus; 6] = [
    RunStatus::Running,
    RunStatus::Completed,
    RunStatus::Failed,
    RunStatus::ContinuedAsNew,
    RunStatus::Cancelled,
    RunStatus::Terminated,
];

/// Parses a status value.
///
/// # Errors
/// 400 listing the values.
pub fn parse_status(text: &str) -> Result<RunStatus, ApiError> {
    STATUSES
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<_> = STATUSES.iter().map(|s| s.as_str()).collect();
            ApiError::bad_request(format!(
                "unknown status {text:?}; one of: {}",
                names.join(", ")
            ))
        })
}

/// A row of the run list.
pub fn run_summary(r: &RunSummary) -> Value {
    json!({
        "workflow_id": r.workflow_id.as_str(),
        "run": r.run.0,
        "workflow_type": r.workflow_type,
        "status": r.status.as_str(),
        "started_at": time(r.started_at),
        "closed_at": opt_time(r.closed_at),
    })
}

/// A recorded failure: `{"kind","message","non_retryable","cause","details"}`.
pub fn failure(f: &Failure) -> Value {
    json!({
        "kind": f.kind,
        "message": f.message,
        "non_retryable": f.non_retryable,
        "cause": cause_name(f.cause),
        "details": opt_payload(f.details.as_ref()),
    })
}

/// The names the history's JSON form gives failure causes.
fn cause_name(cause: FailureCause) -> &'static str {
    match cause {
        FailureCause::Application => "application",
        FailureCause::Panicked => "panicked",
        FailureCause::NotRegistered => "not-registered",
        FailureCause::Cancelled => "cancelled",
        FailureCause::Terminated => "terminated",
        FailureCause::Timeout(TimeoutKind::StartToClose) => "timeout-start-to-close",
        FailureCause::Timeout(TimeoutKind::ScheduleToClose) => "timeout-schedule-to-close",
        FailureCause::Timeout(TimeoutKind::Heartbeat) => "timeout-heartbeat",
    }
}

/// A pending activity of a description.
pub fn pending_activity(a: &PendingActivity) -> Value {
    json!({
        "cmd": a.cmd.0,
        "activity_type": a.activity_type,
        "attempt": a.attempt,
        "running": a.running,
        "first_scheduled_at": system_time(a.first_scheduled_at),
        "next_attempt_at": a.next_attempt_at.map_or(Value::Null, system_time),
        "attempt_deadline": a.attempt_deadline.map_or(Value::Null, system_time),
        "last_failure": a.last_failure.as_ref().map_or(Value::Null, failure),
    })
}

/// A pending timer of a description.
pub fn pending_timer(t: &PendingTimer) -> Value {
    json!({ "cmd": t.cmd.0, "fire_at": time(t.fire_at) })
}

// ----- human tasks -----

/// One `waiting_on` entry of run `run`: its kind, the sentence an
/// operator reads (`text`), and the fields a program acts on.
pub fn waiting(run: u64, w: &refrain::Waiting) -> Value {
    use refrain::Waiting;
    let mut o = Map::new();
    o.insert("kind".into(), json!(w.kind()));
    o.insert("text".into(), json!(w.to_string()));
    let fields = match w {
        Waiting::Activation { events, first } => json!({ "events": events, "first": first }),
        Waiting::TaskFailure { message } => json!({ "message": message }),
        Waiting::Activity {
            cmd,
            activity_type,
            attempt,
            max_attempts,
            running_until,
            next_attempt_at,
            last_failure,
        } => json!({
            "cmd": cmd.0,
            "activity_type": activity_type,
            "attempt": attempt,
            "max_attempts": max_attempts,
            "running_until": opt_time(*running_until),
            "next_attempt_at": opt_time(*next_attempt_at),
            "last_failure": last_failure,
        }),
        Waiting::Timer { cmd, fire_at } => json!({ "cmd": cmd.0, "fire_at": time(*fire_at) }),
        Waiting::HumanTask {
            cmd,
            task,
            assignee,
            deadline,
            level,
            escalates_to,
        } => json!({
            "id": format!("{run}/{}", cmd.0),
            "cmd": cmd.0,
            "task": task,
            "assignee": assignee,
            "deadline": opt_time(*deadline),
            "level": level,
            "escalates_to": escalates_to,
        }),
        Waiting::Child { cmd, workflow_id } => {
            json!({ "cmd": cmd.0, "workflow_id": workflow_id.as_str() })
        }
        Waiting::Signal { names } => json!({ "names": names }),
        // Kinds newer than this server: the text says it.
        _ => json!({}),
    };
    if let Value::Object(fields) = fields {
        o.extend(fields);
    }
    Value::Object(o)
}

/// An open human task; `overdue` when its deadline is before `now`.
pub fn human_task(t: &refrain::HumanTask, now: SystemTime) -> Value {
    json!({
        "id": format!("{}/{}", t.run.0, t.cmd.0),
        "workflow_id": t.workflow_id.as_str(),
        "run": t.run.0,
        "cmd": t.cmd.0,
        "task": t.task,
        "assignee": t.assignee,
        "form": opt_payload(t.form.as_ref()),
        "deadline": t.deadline.map_or(Value::Null, system_time),
        "assigned_at": system_time(t.assigned_at),
        "level": t.level,
        "escalates_to": t.escalates_to,
        "claimed_from": t.claimed_from,
        "overdue": t.deadline.is_some_and(|d| d < now),
    })
}

// ----- schedules -----

/// A schedule: its spec, state and counters.
pub fn schedule(s: &ScheduleRecord) -> Value {
    let trigger = match &s.spec.trigger {
        Trigger::Every(d) => {
            json!({ "every_ms": u64::try_from(d.as_millis()).unwrap_or(u64::MAX) })
        }
        Trigger::Cron(expr) => json!({ "cron": expr }),
    };
    let last_run = s.last_run.as_ref().map_or(Value::Null, |r| {
        json!({
            "fire_time": time(r.fire_time),
            "workflow_id": r.workflow_id.as_str(),
            "run": r.run.0,
        })
    });
    let mut o = Map::new();
    o.insert("id".into(), json!(s.spec.id));
    o.insert("workflow_type".into(), json!(s.spec.workflow_type));
    o.insert("input".into(), payload(&s.spec.input));
    o.insert("trigger".into(), trigger);
    o.insert("overlap".into(), json!(overlap_name(s.spec.overlap)));
    o.insert(
        "catchup_window_ms".into(),
        json!(u64::try_from(s.spec.catchup_window.as_millis()).unwrap_or(u64::MAX)),
    );
    o.insert("created_at".into(), time(s.created_at));
    o.insert("paused".into(), json!(s.paused));
    o.insert("next_fire".into(), opt_time(s.next_fire));
    o.insert("last_fire".into(), opt_time(s.last_fire));
    o.insert("last_run".into(), last_run);
    o.insert("buffered_fire".into(), opt_time(s.buffered_fire));
    o.insert("runs_started".into(), json!(s.runs_started));
    o.insert("skipped".into(), json!(s.skipped));
    o.insert("missed".into(), json!(s.missed));
    Value::Object(o)
}

fn overlap_name(p: OverlapPolicy) -> &'static str {
    match p {
        OverlapPolicy::Skip => "skip",
        OverlapPolicy::BufferOne => "buffer-one",
        OverlapPolicy::AllowAll => "allow-all",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_millis_and_parse_back() {
        let t = Timestamp(1_796_681_643_123);
        assert_eq!(time(t), json!("2026-12-07T22:14:03.123Z"));
        assert_eq!(
            parse_time("started_after", "2026-12-07T22:14:03.123Z").unwrap(),
            t
        );
        assert_eq!(
            parse_time("started_after", "2026-12-07T23:14:03.123+01:00").unwrap(),
            t
        );
        let e = parse_time("started_after", "yesterday").unwrap_err();
        assert_eq!(e.code, crate::codes::BAD_REQUEST);
        assert!(e.message.contains("started_after"), "{}", e.message);
        assert!(parse_time("started_after", "1969-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn a_payload_that_is_not_json_is_shown_as_base64() {
        assert_eq!(
            payload(&Payload::from_bytes(b"{\"a\":1}".to_vec())),
            json!({"a": 1})
        );
        assert_eq!(
            payload(&Payload::from_bytes(vec![0xff, 0x00, b'a', b'b'])),
            json!({"$bytes_base64": "/wBhYg=="})
        );
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn a_task_is_overdue_once_its_deadline_has_passed() {
        use refrain_history::{CommandSeq, RunId, WorkflowId};
        use std::time::Duration;
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let task = |deadline: Option<SystemTime>| refrain::HumanTask {
            workflow_id: WorkflowId::new("loan-1"),
            run: RunId(7),
            cmd: CommandSeq(3),
            task: "review".into(),
            assignee: "underwriter-1".into(),
            form: None,
            deadline,
            assigned_at: UNIX_EPOCH,
            level: 0,
            escalates_to: None,
            claimed_from: None,
        };
        let before = now - Duration::from_millis(1);
        let after = now + Duration::from_millis(1);
        assert_eq!(human_task(&task(Some(before)), now)["overdue"], true);
        assert_eq!(human_task(&task(Some(after)), now)["overdue"], false);
        let open_ended = human_task(&task(None), now);
        assert_eq!(open_ended["overdue"], false);
        assert_eq!(open_ended["id"], "7/3");
        assert_eq!(open_ended["deadline"], Value::Null);
    }

    #[test]
    fn statuses_parse_by_their_names_only() {
        for s in STATUSES {
            assert_eq!(parse_status(s.as_str()).unwrap(), s);
        }
        assert!(parse_status("Running").is_err());
        assert!(parse_status("done").is_err());
    }

    #[test]
    fn overlap_policies_are_kebab_case() {
        assert_eq!(overlap_name(OverlapPolicy::Skip), "skip");
        assert_eq!(overlap_name(OverlapPolicy::BufferOne), "buffer-one");
    }
}
