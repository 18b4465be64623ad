//! The race between the assignee check and the decision: underwriter-1
//! opened the task while it was theirs, it escalated to credit-manager,
//! then underwriter-1's decision arrived. The server read the task before
//! the escalation (a store wrapper answers the server's reads of the
//! run's open tasks as they were then), so its check passes; the store,
//! comparing the assignee in the transaction that writes, refuses the
//! decision: 409 `reassigned` through the API, a "moved" page on the
//! dashboard, and nothing recorded. credit-manager's decision lands.

use crate::api_support::{assert_error, loan, HOUR_MS};
use crate::dashboard_support::{login_with_form, submit};
use crate::harness::{identities, Reply, MANAGER, OPERATOR, UNDERWRITER, VIEWER};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use refrain::{Client, Store, StoreConfig};
use refrain_history::*;
use refrain_server::Server;
use refrain_tests::env::eventually;
use refrain_worker::Worker;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// A store whose answers to `human_tasks_of_run` are, for the runs set
/// with [`ReadsFrom::set`], the ones given: what a reader saw just before
/// the store changed. Everything else is the real store's.
struct ReadsFrom {
    inner: Arc<dyn HistoryStore>,
    stale: Mutex<HashMap<RunId, Vec<HumanTaskRecord>>>,
}

impl ReadsFrom {
    fn set(&self, run: RunId, tasks: Vec<HumanTaskRecord>) {
        self.stale.lock().expect("lock").insert(run, tasks);
    }

    fn forget(&self, run: RunId) {
        self.stale.lock().expect("lock").remove(&run);
    }
}

#[refrain::async_trait]
impl HistoryStore for ReadsFrom {
    async fn human_tasks_of_run(&self, run: RunId) -> Result<Vec<HumanTaskRecord>, ReadError> {
        let stale = self.stale.lock().expect("lock").get(&run).cloned();
        match stale {
            Some(tasks) => Ok(tasks),
            None => self.inner.human_tasks_of_run(run).await,
        }
    }

    // ----- the rest is the real store's -----

    async fn start(&self, req: StartRequest) -> Result<StartOutcome, StartError> {
        self.inner.start(req).await
    }
    async fn signal(
        &self,
        workflow_id: &WorkflowId,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<RunId, RunOpError> {
        self.inner.signal(workflow_id, name, payload, sender).await
    }
    async fn signal_with_start(
        &self,
        req: StartRequest,
        name: &str,
        payload: Payload,
        sender: Option<&str>,
    ) -> Result<StartOutcome, StartError> {
        self.inner
            .signal_with_start(req, name, payload, sender)
            .await
    }
    async fn cancel(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        requested_by: Option<&str>,
    ) -> Result<RunId, RunOpError> {
        self.inner.cancel(workflow_id, reason, requested_by).await
    }
    async fn terminate(
        &self,
        workflow_id: &WorkflowId,
        reason: &str,
        terminated_by: Option<&str>,
    ) -> Result<RunId, RunOpError> {
        self.inner
            .terminate(workflow_id, reason, terminated_by)
            .await
    }
    async fn update(&self, req: UpdateRequest) -> Result<UpdateWait, UpdateError> {
        self.inner.update(req).await
    }
    async fn query(
        &self,
        run: RunId,
        name: &str,
        args: Payload,
        wait: Duration,
    ) -> Result<Payload, QueryError> {
        self.inner.query(run, name, args, wait).await
    }
    async fn wait_closed(&self, run: RunId) -> Result<RunRecord, ReadError> {
        self.inner.wait_closed(run).await
    }
    async fn read_history(&self, run: RunId, from: EventSeq) -> Result<Vec<Event>, ReadError> {
        self.inner.read_history(run, from).await
    }
    async fn latest_run(
        &self,
        workflow_id: &WorkflowId,
    ) -> Result<Option<(RunId, RunRecord)>, ReadError> {
        self.inner.latest_run(workflow_id).await
    }
    async fn run_record(&self, run: RunId) -> Result<Option<RunRecord>, ReadError> {
        self.inner.run_record(run).await
    }
    async fn activity_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
    ) -> Result<Option<ActivityTaskRecord>, ReadError> {
        self.inner.activity_task(run, cmd).await
    }
    async fn list_runs(&self, filter: &RunFilter, page: PageRequest) -> Result<RunPage, ReadError> {
        self.inner.list_runs(filter, page).await
    }
    async fn list_human_tasks(&self, assignee: &str) -> Result<Vec<HumanTaskRecord>, ReadError> {
        self.inner.list_human_tasks(assignee).await
    }
    async fn decide_human_task(&self, decision: HumanTaskDecision) -> Result<(), HumanTaskError> {
        self.inner.decide_human_task(decision).await
    }
    async fn claim_human_task(
        &self,
        run: RunId,
        cmd: CommandSeq,
        group: &str,
        claimed_by: &str,
    ) -> Result<(), HumanTaskError> {
        self.inner
            .claim_human_task(run, cmd, group, claimed_by)
            .await
    }
    async fn create_schedule(&self, spec: ScheduleSpec) -> Result<ScheduleRecord, ScheduleError> {
        self.inner.create_schedule(spec).await
    }
    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, ScheduleError> {
        self.inner.list_schedules().await
    }
    async fn describe_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.inner.describe_schedule(id).await
    }
    async fn pause_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.inner.pause_schedule(id).await
    }
    async fn resume_schedule(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.inner.resume_schedule(id).await
    }
    async fn trigger_schedule(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<TriggerOutcome, ScheduleError> {
        self.inner.trigger_schedule(id, now).await
    }
    async fn delete_schedule(&self, id: &str) -> Result<(), ScheduleError> {
        self.inner.delete_schedule(id).await
    }
    async fn poll_workflow_tasks(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<WorkflowTask>, ReadError> {
        self.inner.poll_workflow_tasks(max, wait).await
    }
    async fn answer_query(
        &self,
        id: QueryId,
        answer: Result<Payload, QueryError>,
    ) -> Result<(), QueryError> {
        self.inner.answer_query(id, answer).await
    }
    async fn activation(&self, run: RunId) -> Result<Option<Activation>, ReadError> {
        self.inner.activation(run).await
    }
    async fn commit_activation(
        &self,
        commit: ActivationCommit,
        local: DirectActivities,
    ) -> Result<Vec<ActivityTask>, CommitError> {
        self.inner.commit_activation(commit, local).await
    }
    async fn fail_activation(
        &self,
        run: RunId,
        token: LeaseToken,
        failure: Option<String>,
        retry_after: Option<Duration>,
    ) -> Result<(), CommitError> {
        self.inner
            .fail_activation(run, token, failure, retry_after)
            .await
    }
    async fn poll_activity_tasks(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ActivityTask>, ActivityError> {
        self.inner.poll_activity_tasks(max, wait).await
    }
    async fn complete_activity(
        &self,
        attempt: AttemptRef,
        outcome: Result<Payload, Failure>,
    ) -> Result<ActivityResolution, ActivityError> {
        self.inner.complete_activity(attempt, outcome).await
    }
    async fn heartbeat_activity(
        &self,
        attempt: AttemptRef,
        details: Option<Payload>,
    ) -> Result<HeartbeatAck, ActivityError> {
        self.inner.heartbeat_activity(attempt, details).await
    }
    async fn fire_due(&self, now: Timestamp) -> Result<usize, ReadError> {
        self.inner.fire_due(now).await
    }
    async fn fire_due_schedules(&self, now: Timestamp) -> Result<ScheduleFires, ScheduleError> {
        self.inner.fire_due_schedules(now).await
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, ReadError> {
        self.inner.next_due().await
    }
    async fn wait_due(&self, wait: Duration) -> Result<(), ReadError> {
        self.inner.wait_due(wait).await
    }
    fn limits(&self) -> HistoryLimits {
        self.inner.limits()
    }
}

async fn call(router: &Router, method: Method, path: &str, token: &str, body: Value) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let req = if body.is_null() {
        req.body(Body::empty())
    } else {
        req.header("content-type", "application/json")
            .body(Body::from(body.to_string()))
    }
    .expect("request");
    let res = router.clone().oneshot(req).await.expect("infallible");
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// Whether `events` (the real store's history) holds a decision.
fn decided_by(events: &[Event]) -> Option<&str> {
    events.iter().find_map(|e| match e {
        Event::HumanTaskDecided { decided_by, .. } => Some(decided_by.as_str()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_checked_before_an_escalation_is_refused_and_records_nothing() {
    refrain_tests::env::init_tracing();
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path().join("db"), StoreConfig::default()).expect("store");
    let worker = refrain_examples::loan_approval::register(Worker::builder(store.clone())).start();
    let reads = Arc::new(ReadsFrom {
        inner: store.clone().into(),
        stale: Mutex::new(HashMap::new()),
    });
    let (router, _) = Server::new(Client::new(reads.clone() as Arc<dyn HistoryStore>))
        .identities(identities())
        .into_router();

    // underwriter-1 has a millisecond: the task escalates to credit-manager.
    let started = call(
        &router,
        Method::POST,
        "/api/v1/workflows",
        OPERATOR,
        json!({"workflow_type": "loan-approval", "workflow_id": "loan-r1",
               "input": loan("loan-r1", 1, HOUR_MS)}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let escalated = eventually("the task escalates to credit-manager", async || {
        store.list_human_tasks("credit-manager").unwrap().pop()
    })
    .await;
    let (run, cmd) = (escalated.run, escalated.cmd);
    // What the server read when underwriter-1 opened the task, just
    // before the escalation: the task as it was first assigned.
    let history = store.read_history(run).unwrap();
    let first = history
        .iter()
        .find_map(|e| match e {
            Event::HumanTaskAssigned {
                cmd: c, assignee, ..
            } if *c == cmd => Some(assignee),
            _ => None,
        })
        .expect("the assignment");
    assert_eq!(first, "underwriter-1");
    reads.set(
        run,
        vec![HumanTaskRecord {
            assignee: first.clone(),
            level: 0,
            ..escalated.clone()
        }],
    );
    let id = format!("{}/{}", run.0, cmd.0);
    let opened = call(
        &router,
        Method::GET,
        &format!("/api/v1/tasks/{id}"),
        VIEWER,
        Value::Null,
    )
    .await;
    assert_eq!(opened.body["assignee"], "underwriter-1", "{}", opened.body);

    // The API: the check passes on what was read; the store refuses.
    let decide = format!("/api/v1/tasks/{id}/decide");
    let late = call(
        &router,
        Method::POST,
        &decide,
        UNDERWRITER,
        json!({"decision": "Approve", "comment": "looks fine"}),
    )
    .await;
    assert_error(&late, StatusCode::CONFLICT, "reassigned");
    let message = late.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("credit-manager"), "{message}");
    assert_eq!(decided_by(&store.read_history(run).unwrap()), None);
    // Still open: a decision, even one the workflow has yet to apply,
    // takes the task out of its assignee's list.
    assert_eq!(
        store.list_human_tasks("credit-manager").unwrap(),
        std::slice::from_ref(&escalated)
    );

    // The dashboard: the same refusal, as a page naming the new assignee.
    let browser = login_with_form(&router, UNDERWRITER).await;
    let (status, _, html) = submit(
        &router,
        &browser,
        &format!("/inbox/{id}"),
        &[
            ("csrf", &browser.csrf),
            ("decision", "\"Approve\""),
            ("comment", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("This task moved"), "{html}");
    assert!(html.contains("credit-manager"), "{html}");
    assert_eq!(decided_by(&store.read_history(run).unwrap()), None);
    assert_eq!(
        store.list_human_tasks("credit-manager").unwrap(),
        std::slice::from_ref(&escalated)
    );

    // credit-manager, reading the task as it is, decides.
    reads.forget(run);
    let manager = call(
        &router,
        Method::POST,
        &decide,
        MANAGER,
        json!({"decision": "Reject"}),
    )
    .await;
    assert_eq!(manager.status, StatusCode::OK, "{}", manager.body);
    let by = eventually("the workflow applies the decision", async || {
        decided_by(&store.read_history(run).unwrap()).map(str::to_owned)
    })
    .await;
    assert_eq!(by, "credit-manager");
    worker.shutdown(Duration::from_secs(5)).await;
}
