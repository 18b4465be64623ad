//! Where an open run waits, in words, from its record and its open human
//! tasks.

use super::fmt::{failure, utc};
use crate::state::AppState;
use refrain_history::{ActivityState, HumanTaskRecord, ReadError, RunId, RunRecord, Timestamp};

/// One line per thing the run `run` (described by `record`) waits on;
/// empty for a closed run.
pub(super) async fn waiting_on(
    state: &AppState,
    run: RunId,
    record: &RunRecord,
    tasks: &[HumanTaskRecord],
) -> Result<Vec<String>, ReadError> {
    let mut out = Vec::new();
    if !record.status.is_open() {
        return Ok(out);
    }
    let store = state.store();
    for &cmd in &record.pending_activities {
        let Some(task) = store.activity_task(run, cmd).await? else {
            continue;
        };
        let mut line = format!("activity {}, attempt {}", task.activity_type, task.attempt);
        match task.state {
            ActivityState::Scheduled { visible_at } if task.attempt > 1 => {
                line.push_str(&format!(", next try at {}", utc(visible_at)));
            }
            ActivityState::Scheduled { .. } => line.push_str(", waiting for a worker"),
            ActivityState::Running { deadline, .. } => {
                line.push_str(&format!(", running (deadline {})", utc(deadline)));
            }
        }
        if let Some(f) = &task.last_failure {
            line.push_str(&format!("; last attempt failed: {}", failure(f)));
        }
        out.push(line);
    }
    for t in &record.pending_timers {
        out.push(format!("timer until {}", utc(t.fire_at)));
    }
    let now = Timestamp::now();
    for t in tasks {
        let mut line = format!("human task {} assigned to {}", t.task, t.assignee);
        if let Some(d) = t.deadline {
            line.push_str(&format!(", due {}", utc(d)));
            if d < now {
                line.push_str(" (overdue)");
            }
        }
        if t.level > 0 {
            line.push_str(&format!(", escalation level {}", t.level));
        }
        out.push(line);
    }
    for c in &record.pending_children {
        out.push(format!("child workflow {}", c.workflow_id));
    }
    if let Some(f) = &record.last_task_failure {
        let first = f.lines().next().unwrap_or_default();
        out.push(format!("its workflow task keeps failing: {first}"));
    }
    if out.is_empty() {
        out.push("a signal, an update or its next activation".to_owned());
    }
    Ok(out)
}
