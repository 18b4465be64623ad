//! Human tasks: the caller's inbox, one assignee's list, a workflow's open
//! tasks, one task, and deciding it.
//!
//! Only the assignee decides: the identity the task is assigned to now,
//! or a member of that group. No role overrides this, admin included: a
//! decision is a person's answer, recorded under their name
//! (`decided_by` is the caller's identity, never a field of the request),
//! so an administrator who must answer for someone else is made a member
//! of the group instead, and the history shows who did.
//!
//! The check and the write are one: the decision is made as the assignee
//! checked, and the store refuses it (409 `reassigned`, nothing written)
//! if the task escalated to someone else in between.
//!
//! A task assigned to a group can be claimed by one member, which makes it
//! theirs alone (`POST .../claim`): only a member of the group may claim,
//! whatever the role (403 otherwise); a task already claimed, or one that
//! moved on while the claim was made, is a 409 `claimed` and nothing is
//! written. After a claim, a decision made as the group answers 409
//! `reassigned`, and an escalation moves the task on from the claimer.

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::json;
use crate::auth::{ApiCaller, Identity, Role};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use refrain::{ClientError, HumanTask, HumanTaskRef};
use refrain_history::{CommandSeq, Event, EventSeq, RunId};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::SystemTime;

fn task_list(tasks: &[HumanTask]) -> Json<Value> {
    let now = SystemTime::now();
    let tasks: Vec<Value> = tasks.iter().map(|t| json::human_task(t, now)).collect();
    Json(json!({ "tasks": tasks }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InboxParams {
    assignee: Option<String>,
}

/// `GET /api/v1/tasks` (the caller's inbox) and
/// `GET /api/v1/tasks?assignee=NAME`.
pub(crate) async fn inbox(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(params): ApiQuery<InboxParams>,
) -> Result<Json<Value>, ApiError> {
    let who = &caller.0;
    let names: Vec<String> = match params.assignee {
        Some(name) => {
            if !who.is_assignee(&name) {
                caller.require(Role::Operator).map_err(|_| {
                    ApiError::forbidden(format!(
                        "{} may list only its own tasks and its groups'; {name} is neither",
                        who.name
                    ))
                })?;
            }
            vec![name]
        }
        None => who.inbox_names().map(str::to_owned).collect(),
    };
    // A task assigned to the caller and to one of its groups cannot be,
    // but a group named like a person can: each task once.
    let mut tasks = BTreeMap::new();
    for name in &names {
        for t in state.client().list_human_tasks(name).await? {
            tasks.insert((t.run, t.cmd), t);
        }
    }
    let tasks: Vec<HumanTask> = tasks.into_values().collect();
    Ok(task_list(&tasks))
}

/// `GET /api/v1/workflows/{id}/tasks`
pub(crate) async fn of_workflow(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let tasks = state.client().human_tasks_of(id.as_str()).await?;
    Ok(task_list(&tasks))
}

/// The open task `cmd` of `run`, or why there is none: 404 for a task the
/// run never assigned, 409 `closed` for one that is no longer open.
async fn open_task(state: &AppState, run: u64, cmd: u32) -> Result<HumanTask, ApiError> {
    let (run, cmd) = (RunId(run), CommandSeq(cmd));
    let store = state.store();
    let open = store
        .human_tasks_of_run(run)
        .await
        .map_err(ClientError::from)?
        .into_iter()
        .find(|t| t.cmd == cmd);
    if let Some(t) = open {
        return Ok(t.into());
    }
    let not_found = || ApiError::not_found(format!("no human task {}/{}", run.0, cmd.0));
    let history = match store.read_history(run, EventSeq(1)).await {
        Ok(h) => h,
        Err(refrain_history::ReadError::RunNotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(ClientError::from(e).into()),
    };
    let assigned = history.iter().find_map(|e| match e {
        Event::HumanTaskAssigned { cmd: c, task, .. } if *c == cmd => Some(task.clone()),
        _ => None,
    });
    match assigned {
        Some(task) => Err(ClientError::HumanTaskClosed {
            task: format!("{task} ({}/{})", run.0, cmd.0),
            why: "it was decided or closed, or its workflow ended".into(),
        }
        .into()),
        None => Err(not_found()),
    }
}

/// `GET /api/v1/tasks/{run}/{cmd}`
pub(crate) async fn one(
    State(state): State<AppState>,
    _caller: ApiCaller,
    ApiPath((run, cmd)): ApiPath<(u64, u32)>,
) -> Result<Json<Value>, ApiError> {
    let task = open_task(&state, run, cmd).await?;
    Ok(Json(json::human_task(&task, SystemTime::now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecideBody {
    decision: Value,
    comment: Option<String>,
}

/// Whether `who` may decide a task assigned to `assignee`.
fn may_decide(who: &Identity, assignee: &str) -> Result<(), ApiError> {
    if who.is_assignee(assignee) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this task is assigned to {assignee}; only {assignee} (or a member of group \
             {assignee}) may decide it, whatever the role"
        )))
    }
}

/// `POST /api/v1/tasks/{run}/{cmd}/claim`: the caller, a member of the
/// group the task is assigned to, takes it.
pub(crate) async fn claim(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath((run, cmd)): ApiPath<(u64, u32)>,
) -> Result<Json<Value>, ApiError> {
    let who = &caller.0;
    let task = open_task(&state, run, cmd).await?;
    let group = task.claimed_from.as_deref().unwrap_or(&task.assignee);
    if !who.groups.iter().any(|g| g == group) {
        return Err(ApiError::forbidden(format!(
            "this task is assigned to {group}; only a member of group {group} may claim it, \
             whatever the role"
        )));
    }
    if task.claimed_from.is_some() {
        return Err(ApiError::claimed(group, &task.assignee));
    }
    let claimed = state
        .client()
        .claim_human_task(&HumanTaskRef::from(&task), group, &who.name)
        .await;
    match claimed {
        Ok(()) => {}
        Err(ClientError::HumanTaskReassigned { assignee, .. }) => {
            return Err(ApiError::claimed(group, &assignee))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Json(json!({
        "workflow_id": task.workflow_id.as_str(),
        "run": task.run.0,
        "task": task.task,
        "claimed_from": group,
        "claimed_by": who.name,
    })))
}

/// `POST /api/v1/tasks/{run}/{cmd}/decide`
pub(crate) async fn decide(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath((run, cmd)): ApiPath<(u64, u32)>,
    ApiJson(body): ApiJson<DecideBody>,
) -> Result<Json<Value>, ApiError> {
    let who = &caller.0;
    let task = open_task(&state, run, cmd).await?;
    may_decide(who, &task.assignee)?;
    state
        .client()
        .decide_human_task_as_assignee(
            &HumanTaskRef::from(&task),
            &task.assignee,
            &body.decision,
            &who.name,
            body.comment.as_deref(),
        )
        .await?;
    Ok(Json(json!({
        "workflow_id": task.workflow_id.as_str(),
        "run": task.run.0,
        "task": task.task,
        "decided_by": who.name,
    })))
}
