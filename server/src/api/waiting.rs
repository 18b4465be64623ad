//! A run's `waiting_on` list as JSON: each entry's kind, the sentence an
//! operator reads (`text`), and the fields a program acts on.

use super::json;
use crate::error::ApiError;
use refrain::{Client, Waiting, WorkflowDescription};
use serde_json::{json, Map, Value};

/// What the latest run of the described workflow waits on; empty once it
/// is closed.
///
/// # Errors
/// As `Client::waiting_on`.
pub(crate) async fn describe(
    client: &Client,
    d: &WorkflowDescription,
) -> Result<Vec<Value>, ApiError> {
    let (run, _, waiting) = client.waiting_on(d.workflow_id.clone()).await?;
    Ok(waiting.iter().map(|w| entry(run.0, w)).collect())
}

fn entry(run: u64, w: &Waiting) -> Value {
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
            "running_until": json::opt_time(*running_until),
            "next_attempt_at": json::opt_time(*next_attempt_at),
            "last_failure": last_failure,
        }),
        Waiting::Timer { cmd, fire_at } => json!({ "cmd": cmd.0, "fire_at": json::time(*fire_at) }),
        Waiting::HumanTask {
            cmd,
            task,
            assignee,
            deadline,
            level,
        } => json!({
            "id": format!("{run}/{}", cmd.0),
            "cmd": cmd.0,
            "task": task,
            "assignee": assignee,
            "deadline": json::opt_time(*deadline),
            "level": level,
        }),
        Waiting::Child { cmd, workflow_id } => {
            json!({ "cmd": cmd.0, "workflow_id": workflow_id.as_str() })
        }
        // `signal`, and kinds newer than this server: the text says it.
        _ => json!({}),
    };
    if let Value::Object(fields) = fields {
        o.extend(fields);
    }
    Value::Object(o)
}
