//! The components of the OpenAPI document: the security scheme and the
//! schema of every JSON shape the API takes or gives (see `api::json`,
//! which builds the answers).

use super::schema;
use serde_json::{json, Map, Value};

/// The document's `components`.
pub(super) fn components() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    let opt_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let any = json!({});
    // Several literals: one would pass the `json!` macro's recursion limit.
    let groups = [
        json!({
            "Error": {
                "type": "object", "required": ["error"],
                "properties": { "error": { "type": "object", "required": ["code", "message"],
                    "properties": {
                        "code": { "type": "string", "enum": [
                            "bad_request", "bad_cursor", "unauthorized", "forbidden", "csrf",
                            "not_found", "method_not_allowed", "already_running", "closed", "reassigned",
                            "ambiguous", "payload_too_large", "update_rejected", "update_failed",
                            "workflow_failed", "query_failed", "damaged", "unavailable"] },
                        "message": { "type": "string" } } } }
            },
            "Status": { "type": "string", "enum": ["running", "completed", "failed",
                "continued-as-new", "cancelled", "terminated"] }
        }),
        json!({
            "StartRequest": {
                "type": "object", "additionalProperties": false,
                "required": ["workflow_type", "workflow_id"],
                "properties": {
                    "workflow_type": { "type": "string" },
                    "workflow_id": { "type": "string" },
                    "input": { "description": "The workflow's input (default null)." },
                    "on_conflict": { "type": "string", "enum": ["fail", "attach_to_open",
                        "use_existing"], "default": "fail" } }
            },
            "SignalWithStartRequest": {
                "type": "object", "additionalProperties": false,
                "required": ["signal", "workflow_type"],
                "properties": {
                    "signal": { "type": "string" },
                    "signal_input": any,
                    "workflow_type": { "type": "string" },
                    "input": any }
            },
            "InputBody": { "type": "object", "additionalProperties": false,
                "properties": { "input": { "description": "default null" } } },
            "UpdateRequest": { "type": "object", "additionalProperties": false,
                "properties": { "input": any, "update_id": { "type": "string" } } },
            "ReasonBody": { "type": "object", "additionalProperties": false,
                "properties": { "reason": { "type": "string" } } },
            "DecideRequest": { "type": "object", "additionalProperties": false,
                "required": ["decision"],
                "properties": { "decision": any, "comment": { "type": "string" } } }
        }),
        json!({
            "Started": { "type": "object", "required": ["workflow_id", "run", "started"],
                "properties": { "workflow_id": { "type": "string" }, "run": { "type": "integer" },
                    "started": { "type": "boolean" } } },
            "Acted": { "type": "object", "required": ["workflow_id", "run"],
                "properties": { "workflow_id": { "type": "string" }, "run": { "type": "integer" } } },
            "Result": { "type": "object", "required": ["result"], "properties": { "result": any } },
            "Decided": { "type": "object", "required": ["workflow_id", "run", "task", "decided_by"],
                "properties": { "workflow_id": { "type": "string" }, "run": { "type": "integer" },
                    "task": { "type": "string" }, "decided_by": { "type": "string" } } },
            "Claimed": { "type": "object",
                "required": ["workflow_id", "run", "task", "claimed_from", "claimed_by"],
                "properties": { "workflow_id": { "type": "string" }, "run": { "type": "integer" },
                    "task": { "type": "string" }, "claimed_from": { "type": "string" },
                    "claimed_by": { "type": "string" } } },
            "Triggered": { "type": "object",
                "required": ["schedule", "outcome", "fire_time", "workflow_id", "run"],
                "description": "What the fire did under the schedule's overlap policy. \
                    workflow_id and run: the run started, or (buffered, skipped) the open run \
                    that held the fire back.",
                "properties": { "schedule": { "type": "string" },
                    "outcome": { "type": "string", "enum": ["started", "buffered", "skipped"] },
                    "fire_time": { "type": "string", "format": "date-time" },
                    "workflow_id": { "type": "string" }, "run": { "type": "integer" } } }
        }),
        json!({
            "RunSummary": { "type": "object",
                "required": ["workflow_id", "run", "workflow_type", "status", "started_at", "closed_at"],
                "properties": { "workflow_id": { "type": "string" }, "run": { "type": "integer" },
                    "workflow_type": { "type": "string" }, "status": schema("Status"),
                    "started_at": time, "closed_at": opt_time } },
            "RunPage": { "type": "object", "required": ["runs", "next_cursor"],
                "properties": { "runs": { "type": "array", "items": schema("RunSummary") },
                    "next_cursor": { "type": ["string", "null"] } } },
            "Failure": { "type": "object",
                "properties": { "kind": { "type": "string" }, "message": { "type": "string" },
                    "non_retryable": { "type": "boolean" },
                    "cause": { "type": "string", "enum": ["application", "panicked",
                        "not-registered", "cancelled", "terminated", "timeout-start-to-close",
                        "timeout-schedule-to-close", "timeout-heartbeat"] },
                    "details": any } },
            "Waiting": { "type": "object", "required": ["kind", "text"],
                "description": "One thing the run waits on: kind, a sentence, and the kind's \
                    fields (activity: cmd, activity_type, attempt, max_attempts, running_until, \
                    next_attempt_at, last_failure; timer: cmd, fire_at; human_task: id, cmd, \
                    task, assignee, deadline, level, escalates_to; child: cmd, workflow_id; \
                    activation: events, first; task_failure: message; signal: names, the \
                    signals the workflow waits for, empty when not known).",
                "properties": { "kind": { "type": "string", "enum": ["activation",
                    "task_failure", "activity", "timer", "human_task", "child", "signal"] },
                    "text": { "type": "string" } } }
        }),
        json!({
            "PendingActivity": { "type": "object", "properties": {
                "cmd": { "type": "integer" }, "activity_type": { "type": "string" },
                "attempt": { "type": "integer" }, "running": { "type": "boolean" },
                "first_scheduled_at": time, "next_attempt_at": opt_time,
                "attempt_deadline": opt_time, "last_failure": any } },
            "PendingTimer": { "type": "object", "properties": {
                "cmd": { "type": "integer" }, "fire_at": time } },
            "HumanTask": { "type": "object",
                "required": ["id", "workflow_id", "run", "cmd", "task", "assignee", "form",
                    "deadline", "assigned_at", "level", "overdue"],
                "properties": { "id": { "type": "string", "description": "RUN/CMD" },
                    "workflow_id": { "type": "string" }, "run": { "type": "integer" },
                    "cmd": { "type": "integer" }, "task": { "type": "string" },
                    "assignee": { "type": "string" }, "form": any, "deadline": opt_time,
                    "assigned_at": time, "level": { "type": "integer" },
                    "escalates_to": { "type": ["string", "null"],
                        "description": "who gets the task when its deadline passes" },
                    "claimed_from": { "type": ["string", "null"],
                        "description": "the group the assignee claimed it from" },
                    "overdue": { "type": "boolean", "description": "deadline < now" } } },
            "TaskList": { "type": "object", "required": ["tasks"],
                "properties": { "tasks": { "type": "array", "items": schema("HumanTask") } } }
        }),
        json!({
            "Description": { "type": "object", "properties": {
                "workflow_id": { "type": "string" }, "run": { "type": "integer" },
                "workflow_type": { "type": "string" }, "status": schema("Status"),
                "started_at": time, "closed_at": opt_time, "result": any,
                "failure": { "oneOf": [schema("Failure"), { "type": "null" }] },
                "history_events": { "type": "integer" },
                "waiting_on": { "type": "array", "items": schema("Waiting") },
                "pending_activities": { "type": "array", "items": schema("PendingActivity") },
                "pending_timers": { "type": "array", "items": schema("PendingTimer") },
                "human_tasks": { "type": "array", "items": schema("HumanTask") },
                "last_task_failure": { "type": ["string", "null"] },
                "parent": { "type": ["object", "null"], "properties": {
                    "workflow_id": { "type": "string" }, "run": { "type": "integer" },
                    "cmd": { "type": "integer" } } },
                "continued_from": { "type": ["integer", "null"] },
                "continued_to": { "type": ["integer", "null"] } } },
            "Schedule": { "type": "object", "properties": {
                "id": { "type": "string" }, "workflow_type": { "type": "string" },
                "input": any,
                "trigger": { "oneOf": [
                    { "type": "object", "required": ["every_ms"],
                      "properties": { "every_ms": { "type": "integer" } } },
                    { "type": "object", "required": ["cron"],
                      "properties": { "cron": { "type": "string" } } }] },
                "overlap": { "type": "string", "enum": ["skip", "buffer-one", "allow-all"] },
                "catchup_window_ms": { "type": "integer" }, "created_at": time,
                "paused": { "type": "boolean" }, "next_fire": opt_time, "last_fire": opt_time,
                "last_run": { "type": ["object", "null"], "properties": {
                    "fire_time": time, "workflow_id": { "type": "string" },
                    "run": { "type": "integer" } } },
                "buffered_fire": opt_time, "runs_started": { "type": "integer" },
                "skipped": { "type": "integer" }, "missed": { "type": "integer" } } }
        }),
        json!({
            "PurgeRequest": { "type": "object", "additionalProperties": false,
                "required": ["older_than"],
                "properties": {
                    "older_than": { "type": "string", "pattern": "^[0-9]+[smhdw]$",
                        "description": "Closed runs are kept this long after they closed: \
                            a whole number and a unit (s, m, h, d, w), e.g. 30d." },
                    "workflow_type": { "type": "string",
                        "description": "Only runs of this type (others are kept)." },
                    "dry_run": { "type": "boolean", "default": false },
                    "after": { "type": "integer", "description": "next of the batch before" },
                    "limit": { "type": "integer", "minimum": 1, "maximum": 500,
                        "default": 500 } } },
            "PurgeBatch": { "type": "object", "required": ["dry_run", "runs", "examined", "next"],
                "properties": { "dry_run": { "type": "boolean" },
                    "runs": { "type": "array", "items": schema("RunSummary"),
                        "description": "Deleted (dry_run: that would be)." },
                    "examined": { "type": "integer" },
                    "next": { "type": ["integer", "null"],
                        "description": "after of the next batch; null: done" } } }
        }),
    ];
    let mut schemas = Map::new();
    for group in groups {
        if let Value::Object(m) = group {
            schemas.extend(m);
        }
    }
    json!({
        "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        "schemas": schemas,
    })
}
