//! The OpenAPI 3.1 document of the API, written by hand.
//!
//! Each operation is described in [`operation`], keyed by the method and
//! path of [`super::table`]; the document's `paths` are built from that
//! table, and a test checks that every route has its description and
//! every description its route.

mod schemas;

use super::workflows::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::auth::ApiCaller;
use axum::http::Method;
use axum::Json;
use serde_json::{json, Map, Value};

/// `GET /api/v1/openapi.json`
pub(crate) async fn serve(_caller: ApiCaller) -> Json<Value> {
    Json(document())
}

/// The routes served outside `/api/v1` that the document describes too.
const OTHER_ROUTES: [(Method, &str); 2] = [(Method::GET, "/healthz"), (Method::GET, "/metrics")];

/// The whole document.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    let routes = super::table()
        .into_iter()
        .map(|r| (r.method, r.path))
        .chain(OTHER_ROUTES.iter().cloned());
    for (method, path) in routes {
        let op = operation(&method, path).unwrap_or_else(|| {
            json!({ "summary": "undocumented", "responses": { "default": { "description": "?" } } })
        });
        let item = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(method.as_str().to_ascii_lowercase(), op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Refrain HTTP API",
            "version": "1",
            "description": "Start, list, describe and act on Refrain workflows; decide human \
                tasks; operate schedules. Every route under /api/v1 needs \
                `Authorization: Bearer TOKEN`. Roles: viewer (read, query, decide own and \
                group human tasks), operator (+ start, signal, update, cancel, terminate, \
                pause/resume/trigger schedules), admin (+ everything). The actor recorded \
                (signal sender, cancel requested_by, decided_by) is always the caller's \
                identity name. Times are RFC 3339 UTC strings; payloads are JSON values (a \
                payload that is not JSON reads as {\"$bytes_base64\": \"...\"}). Request \
                bodies refuse unknown fields (400 bad_request). An error answer wrote nothing, \
                unless its code says otherwise."
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": schemas::components(),
    })
}

// ----- building blocks -----

/// A reference to schema `name` of the components.
pub(super) fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ok(description: &str, body: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": body } } })
}

/// The error answers `codes` (`"404"`, ...) of an operation, each with
/// the codes it may carry.
fn errors(list: &[(&str, &str)]) -> Map<String, Value> {
    let mut m = Map::new();
    let mut all: Vec<(&str, &str)> = vec![
        ("401", "unauthorized: no or unknown bearer token"),
        ("503", "unavailable: the store failed"),
        ("500", "damaged: stored data is damaged"),
    ];
    all.extend_from_slice(list);
    for (status, what) in all {
        // One response per status; the codes it may carry are listed.
        let description = match m.get(status) {
            Some(prev) => format!("{}; {what}", prev["description"].as_str().unwrap_or("")),
            None => what.to_owned(),
        };
        m.insert(
            status.to_owned(),
            json!({
                "description": description,
                "content": { "application/json": { "schema": schema("Error") } }
            }),
        );
    }
    m
}

fn path_param(name: &str, description: &str, integer: bool) -> Value {
    let ty = if integer { "integer" } else { "string" };
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": { "type": ty } })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description,
            "schema": schema })
}

fn body(schema_name: &str, required: bool) -> Value {
    json!({ "required": required,
            "content": { "application/json": { "schema": schema(schema_name) } } })
}

struct Op<'a> {
    summary: &'a str,
    role: &'a str,
    params: Vec<Value>,
    body: Option<Value>,
    success: (&'a str, Value),
    /// A second success answer (200 beside 201).
    also: Option<(&'a str, Value)>,
    errors: &'a [(&'a str, &'a str)],
}

impl Op<'_> {
    fn build(self) -> Value {
        let mut responses = errors(self.errors);
        responses.insert(self.success.0.to_owned(), self.success.1);
        if let Some((status, answer)) = self.also {
            responses.insert(status.to_owned(), answer);
        }
        let mut op = json!({
            "summary": self.summary,
            "description": format!("Role: {}.", self.role),
            "parameters": self.params,
            "responses": responses,
        });
        if let (Some(b), Value::Object(o)) = (self.body, &mut op) {
            o.insert("requestBody".into(), b);
        }
        op
    }
}

const BAD: (&str, &str) = (
    "400",
    "bad_request: malformed JSON, a missing or unknown field, a bad value",
);
const FORBIDDEN: (&str, &str) = ("403", "forbidden: the caller's role is too low");
const NOT_FOUND: (&str, &str) = ("404", "not_found: no workflow with this id");
const CLOSED: (&str, &str) = ("409", "closed: the workflow is closed");
const TOO_LARGE: (&str, &str) = (
    "413",
    "payload_too_large: a payload exceeds the store's limit",
);

fn id() -> Value {
    path_param("id", "The workflow id.", false)
}

/// The description of one operation, `None` for a route not described.
pub(crate) fn operation(method: &Method, path: &str) -> Option<Value> {
    let started = || ok("The run the start stands for.", schema("Started"));
    let op = match (method.as_str(), path) {
        ("GET", "/healthz") => json!({
            "summary": "Health check (no authentication).",
            "security": [],
            "responses": { "200": { "description": "ok",
                "content": { "text/plain": { "schema": { "type": "string", "const": "ok" } } } } }
        }),
        ("GET", "/metrics") => json!({
            "summary": "Prometheus metrics (any role).",
            "responses": {
                "200": { "description": "Prometheus text format",
                         "content": { "text/plain": { "schema": { "type": "string" } } } },
                "401": { "description": "unauthorized",
                         "content": { "application/json": { "schema": schema("Error") } } }
            }
        }),
        ("GET", "/api/v1/openapi.json") => Op {
            summary: "This document.",
            role: "viewer",
            params: vec![],
            body: None,
            success: ("200", ok("OpenAPI 3.1", json!({ "type": "object" }))),
            also: None,
            errors: &[],
        }
        .build(),
        ("POST", "/api/v1/workflows") => Op {
            summary: "Start a workflow. 201 when a run started; 200 (started: false) when \
                      on_conflict returned an existing run.",
            role: "operator",
            params: vec![],
            body: Some(body("StartRequest", true)),
            success: ("201", started()),
            also: Some((
                "200",
                ok(
                    "on_conflict returned an existing run (started: false).",
                    schema("Started"),
                ),
            )),
            errors: &[
                BAD,
                FORBIDDEN,
                (
                    "409",
                    "already_running: a run of the id is open (on_conflict fail)",
                ),
                TOO_LARGE,
            ],
        }
        .build(),
        ("GET", "/api/v1/workflows") => Op {
            summary: "List runs, filtered, oldest or newest first, page by page.",
            role: "viewer",
            params: vec![
                query_param("status", "Only runs in this state.", schema("Status")),
                query_param(
                    "type",
                    "Only runs of this workflow type.",
                    json!({"type": "string"}),
                ),
                query_param(
                    "id_prefix",
                    "Only workflow ids starting with this.",
                    json!({"type": "string"}),
                ),
                query_param(
                    "started_after",
                    "Only runs started at or after (RFC 3339).",
                    json!({"type": "string", "format": "date-time"}),
                ),
                query_param(
                    "started_before",
                    "Only runs started before (RFC 3339).",
                    json!({"type": "string", "format": "date-time"}),
                ),
                query_param(
                    "limit",
                    "Page size.",
                    json!({"type": "integer", "minimum": 1,
                            "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
                ),
                query_param(
                    "cursor",
                    "The next_cursor of the previous page, read in the same order.",
                    json!({"type": "string"}),
                ),
                query_param(
                    "order",
                    "By run number, which follows start order: `oldest` (first started \
                     first) or `newest` (latest started first). Newest first, a run started \
                     after the first page was read is on none of the later pages.",
                    json!({"type": "string", "enum": ["oldest", "newest"],
                            "default": "oldest"}),
                ),
            ],
            body: None,
            success: ("200", ok("A page of runs.", schema("RunPage"))),
            also: None,
            errors: &[
                BAD,
                (
                    "400",
                    "bad_cursor: a cursor the server did not give out, or gave out for \
                     the other order",
                ),
            ],
        }
        .build(),
        ("GET", "/api/v1/workflows/{id}") => Op {
            summary: "Describe the latest run of a workflow, with what it waits on.",
            role: "viewer",
            params: vec![id()],
            body: None,
            success: ("200", ok("The description.", schema("Description"))),
            also: None,
            errors: &[NOT_FOUND],
        }
        .build(),
        ("GET", "/api/v1/workflows/{id}/history") => Op {
            summary: "A run's history in the documented JSON history form (what `refrain \
                      export --out x.json` writes).",
            role: "viewer",
            params: vec![
                id(),
                query_param(
                    "run",
                    "The run (default: the latest).",
                    json!({"type": "integer"}),
                ),
            ],
            body: None,
            success: (
                "200",
                ok(
                    "The history export (format refrain-history).",
                    json!({"type": "object"}),
                ),
            ),
            also: None,
            errors: &[
                BAD,
                ("404", "not_found: no such workflow, or no such run of it"),
            ],
        }
        .build(),
        ("POST", "/api/v1/workflows/{id}/signals/{name}") => Op {
            summary: "Send a signal; the sender recorded is the caller.",
            role: "operator",
            params: vec![id(), path_param("name", "The signal's name.", false)],
            body: Some(body("InputBody", false)),
            success: ("202", ok("Durable.", schema("Acted"))),
            also: None,
            errors: &[BAD, FORBIDDEN, NOT_FOUND, CLOSED, TOO_LARGE],
        }
        .build(),
        ("POST", "/api/v1/workflows/{id}/signal-with-start") => Op {
            summary: "Signal the open run of the id, starting one first if none is open.",
            role: "operator",
            params: vec![id()],
            body: Some(body("SignalWithStartRequest", true)),
            success: ("201", started()),
            also: Some((
                "200",
                ok(
                    "Signalled the open run (started: false).",
                    schema("Started"),
                ),
            )),
            errors: &[BAD, FORBIDDEN, TOO_LARGE],
        }
        .build(),
        ("POST", "/api/v1/workflows/{id}/queries/{name}") => Op {
            summary: "Ask the latest run a query (nothing is written).",
            role: "viewer",
            params: vec![id(), path_param("name", "The query's name.", false)],
            body: Some(body("InputBody", false)),
            success: ("200", ok("The handler's answer.", schema("Result"))),
            also: None,
            errors: &[
                BAD,
                NOT_FOUND,
                (
                    "503",
                    "query_failed: not answered (no worker runs \
                the type, the workflow does not answer this query, its handler failed)",
                ),
            ],
        }
        .build(),
        ("POST", "/api/v1/workflows/{id}/updates/{name}") => Op {
            summary: "Send an update and wait for the workflow's answer. The same update_id \
                      is the same request: never applied twice.",
            role: "operator",
            params: vec![id(), path_param("name", "The update's name.", false)],
            body: Some(body("UpdateRequest", false)),
            success: ("200", ok("The handler's result.", schema("Result"))),
            also: None,
            errors: &[
                BAD,
                FORBIDDEN,
                NOT_FOUND,
                CLOSED,
                TOO_LARGE,
                (
                    "422",
                    "update_rejected: the validator refused (nothing recorded); \
                         update_failed: the handler failed, or the run closed first",
                ),
            ],
        }
        .build(),
        ("POST", "/api/v1/workflows/{id}/cancel") => Op {
            summary: "Ask the open run to cancel; requested_by is the caller.",
            role: "operator",
            params: vec![id()],
            body: Some(body("ReasonBody", false)),
            success: ("202", ok("The request is durable.", schema("Acted"))),
            also: None,
            errors: &[BAD, FORBIDDEN, NOT_FOUND, CLOSED],
        }
        .build(),
        ("POST", "/api/v1/workflows/{id}/terminate") => Op {
            summary: "End the open run at once, without running its code; terminated_by is \
                      the caller.",
            role: "operator",
            params: vec![id()],
            body: Some(body("ReasonBody", false)),
            success: ("200", ok("Terminated.", schema("Acted"))),
            also: None,
            errors: &[BAD, FORBIDDEN, NOT_FOUND, CLOSED],
        }
        .build(),
        ("GET", "/api/v1/workflows/{id}/tasks") => Op {
            summary: "The open human tasks of the latest run.",
            role: "viewer",
            params: vec![id()],
            body: None,
            success: ("200", ok("The tasks.", schema("TaskList"))),
            also: None,
            errors: &[NOT_FOUND],
        }
        .build(),
        ("GET", "/api/v1/tasks") => Op {
            summary: "Without assignee: the caller's inbox, open tasks assigned to its name \
                      or one of its groups. With assignee: that assignee's open tasks (a \
                      viewer may name only itself or its groups).",
            role: "viewer",
            params: vec![query_param(
                "assignee",
                "An assignee name.",
                json!({"type": "string"}),
            )],
            body: None,
            success: ("200", ok("The tasks.", schema("TaskList"))),
            also: None,
            errors: &[BAD, ("403", "forbidden: a viewer naming another assignee")],
        }
        .build(),
        ("GET", "/api/v1/tasks/{run}/{cmd}") => Op {
            summary: "One open human task.",
            role: "viewer",
            params: vec![
                path_param("run", "The run.", true),
                path_param("cmd", "The task's command.", true),
            ],
            body: None,
            success: ("200", ok("The task.", schema("HumanTask"))),
            also: None,
            errors: &[
                BAD,
                ("404", "not_found: no such task"),
                (
                    "409",
                    "closed: the task was decided or closed, or its workflow ended",
                ),
            ],
        }
        .build(),
        ("POST", "/api/v1/tasks/{run}/{cmd}/decide") => Op {
            summary: "Decide an open human task. Only its assignee, or a member of the \
                      assignee group, may: any other caller gets 403, admin included. \
                      decided_by is the caller's name (a decided_by field is refused). \
                      The decision is recorded only if the task is still assigned to the \
                      assignee checked: one that escalated meanwhile answers 409 reassigned \
                      and records nothing.",
            role: "viewer (the assignee)",
            params: vec![
                path_param("run", "The run.", true),
                path_param("cmd", "The task's command.", true),
            ],
            body: Some(body("DecideRequest", true)),
            success: ("200", ok("Recorded.", schema("Decided"))),
            also: None,
            errors: &[
                BAD,
                ("403", "forbidden: the task is assigned to someone else"),
                ("404", "not_found: no such task"),
                (
                    "409",
                    "closed: already decided or closed, or its workflow ended; reassigned: \
                     the task escalated to another assignee after the caller's right was \
                     checked (the message names the new assignee; nothing was recorded)",
                ),
                TOO_LARGE,
            ],
        }
        .build(),
        ("POST", "/api/v1/tasks/{run}/{cmd}/claim") => Op {
            summary: "Claim a task assigned to a group: it leaves the other members' inboxes \
                      for the caller's, and the history records who claimed it \
                      (HumanTaskClaimed). Only a member of the group may claim, whatever the \
                      role. Afterwards a decision made as the group answers 409 reassigned; \
                      the deadline is unchanged, and an escalation moves the task on from \
                      the claimer.",
            role: "viewer (a member of the assignee group)",
            params: vec![
                path_param("run", "The run.", true),
                path_param("cmd", "The task's command.", true),
            ],
            body: None,
            success: ("200", ok("Claimed.", schema("Claimed"))),
            also: None,
            errors: &[
                BAD,
                (
                    "403",
                    "forbidden: the caller is not a member of the task's group",
                ),
                ("404", "not_found: no such task"),
                (
                    "409",
                    "claimed: a member claimed it already, or it moved on while the claim \
                     was made (nothing recorded); closed: decided or closed, or its \
                     workflow ended",
                ),
            ],
        }
        .build(),
        ("GET", "/api/v1/schedules") => Op {
            summary: "Every schedule, in creation order.",
            role: "viewer",
            params: vec![],
            body: None,
            success: (
                "200",
                ok(
                    "The schedules.",
                    json!({"type": "object", "required": ["schedules"],
                "properties": {"schedules": {"type": "array", "items": schema("Schedule")}}}),
                ),
            ),
            also: None,
            errors: &[],
        }
        .build(),
        ("GET", "/api/v1/schedules/{id}") => Op {
            summary: "One schedule.",
            role: "viewer",
            params: vec![path_param("id", "The schedule id.", false)],
            body: None,
            success: ("200", ok("The schedule.", schema("Schedule"))),
            also: None,
            errors: &[("404", "not_found: no schedule with this id")],
        }
        .build(),
        ("POST", "/api/v1/schedules/{id}/pause") | ("POST", "/api/v1/schedules/{id}/resume") => {
            Op {
                summary: if path.ends_with("pause") {
                    "Pause a schedule: no fires until resumed."
                } else {
                    "Resume a schedule."
                },
                role: "operator",
                params: vec![path_param("id", "The schedule id.", false)],
                body: None,
                success: ("200", ok("The schedule now.", schema("Schedule"))),
                also: None,
                errors: &[FORBIDDEN, ("404", "not_found: no schedule with this id")],
            }
            .build()
        }
        ("POST", "/api/v1/schedules/{id}/trigger") => Op {
            summary: "Fire a schedule now, as its own fire would under its overlap policy \
                      (a paused schedule too; it stays paused).",
            role: "operator",
            params: vec![path_param("id", "The schedule id.", false)],
            body: None,
            success: ("200", ok("What the fire did.", schema("Triggered"))),
            also: None,
            errors: &[FORBIDDEN, ("404", "not_found: no schedule with this id")],
        }
        .build(),
        ("POST", "/api/v1/purge") => Op {
            summary: "Purge closed runs whose retention passed (closed longer ago than \
                      older_than; of workflow_type only, when given), one batch of up to 500 \
                      per request: pass next back as after until it is null. Never an open \
                      run, nor a closed child of an open parent. dry_run names the runs and \
                      deletes nothing.",
            role: "admin",
            params: vec![],
            body: Some(body("PurgeRequest", true)),
            success: ("200", ok("The batch's runs.", schema("PurgeBatch"))),
            also: None,
            errors: &[BAD, FORBIDDEN],
        }
        .build(),
        _ => return None,
    };
    Some(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_and_every_description_is_a_route() {
        let table: Vec<(Method, &str)> = super::super::table()
            .into_iter()
            .map(|r| (r.method, r.path))
            .chain(OTHER_ROUTES.iter().cloned())
            .collect();
        for (method, path) in &table {
            assert!(
                operation(method, path).is_some(),
                "{method} {path} is served but not described"
            );
        }
        let doc = document();
        let mut described = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                described += 1;
                let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
                assert!(
                    table.iter().any(|(tm, tp)| *tm == m && tp == path),
                    "{method} {path} is described but not served"
                );
                assert!(
                    op["responses"].is_object(),
                    "{method} {path} has no responses"
                );
            }
        }
        assert_eq!(described, table.len());
    }

    #[test]
    fn every_schema_referenced_is_defined() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                schemas.contains_key(&name),
                "{name} is referenced, not defined"
            );
        }
    }
}
