//! Updates in the store: a request waits in the run's inbox without being
//! part of its history; a rejection answers the caller and leaves the
//! history untouched; an accepted update is answered by the commit that
//! records its handler's result; a repeated request id is one request.

mod common;

use common::*;
use refrain_history::{
    Activation, ActivationCommit, Event, Failure, RunId, Store, StoreError, UpdateRejection,
    UpdateState, UpdateWait,
};

fn request(store: &Store, id: &str, update_id: &str) -> Result<RunId, StoreError> {
    store.request_update(
        &id.into(),
        update_id,
        "change-address",
        payload("{\"street\":\"1 Main St\"}"),
        at(100),
    )
}

fn claim(store: &Store, run: RunId) -> Activation {
    store.claim_activation(run).unwrap().expect("run is ready")
}

/// The commit of a worker that applied `task`'s inbox (leaving out update
/// requests, which never enter a history), produced `commands`, and
/// refused `rejected`.
fn commit(
    task: &Activation,
    commands: Vec<Event>,
    rejected: Vec<UpdateRejection>,
) -> ActivationCommit {
    let mut c = commit_for(task, at(200), commands);
    c.events.retain(|e| !e.is_inbox_only());
    c.rejected_updates = rejected;
    c
}

fn accepted(update_id: &str) -> Event {
    Event::UpdateAccepted {
        update_id: update_id.into(),
        name: "change-address".into(),
        input: payload("{\"street\":\"1 Main St\"}"),
    }
}

fn state(store: &Store, run: RunId, update_id: &str) -> UpdateState {
    store.update_record(run, update_id).unwrap().unwrap().state
}

fn a_request_waits_in_the_inbox_and_a_repeat_is_the_same_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-1", at(0));
    activate(&store, run, at(10), vec![]);

    assert_eq!(request(&store, "order-1", "u1").unwrap(), run);
    assert_eq!(request(&store, "order-1", "u1").unwrap(), run);
    let inbox = peek_inbox(&store, run);
    assert_eq!(inbox.len(), 1, "a repeated id is not delivered twice");
    assert!(matches!(&inbox[0], Event::UpdateRequested { update_id, .. } if update_id == "u1"));
    let record = store.update_record(run, "u1").unwrap().unwrap();
    assert_eq!(record.name, "change-address");
    assert_eq!(record.state, UpdateState::Requested);
    assert!(store.update_record(run, "other").unwrap().is_none());
}

fn a_rejected_update_is_answered_and_leaves_no_trace_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-2", at(0));
    activate(&store, run, at(10), vec![]);
    let before = store.read_history(run).unwrap();

    request(&store, "order-2", "u1").unwrap();
    let task = claim(&store, run);
    let rejection = UpdateRejection {
        update_id: "u1".into(),
        reason: "the parcel has already shipped".into(),
    };
    store
        .commit_activation(commit(&task, vec![], vec![rejection]))
        .unwrap();

    assert_eq!(
        state(&store, run, "u1"),
        UpdateState::Rejected("the parcel has already shipped".into())
    );
    let after = store.read_history(run).unwrap();
    assert_eq!(after.len(), before.len() + 1, "only the activation marker");
    assert!(after.iter().all(|e| !e.kind().starts_with("Update")));
    assert!(
        peek_inbox(&store, run).is_empty(),
        "the request was consumed"
    );
}

fn an_accepted_update_is_answered_by_the_commit_of_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-3", at(0));
    activate(&store, run, at(10), vec![]);
    request(&store, "order-3", "u1").unwrap();
    request(&store, "order-3", "u2").unwrap();

    let task = claim(&store, run);
    store
        .commit_activation(commit(&task, vec![accepted("u1"), accepted("u2")], vec![]))
        .unwrap();
    assert_eq!(state(&store, run, "u1"), UpdateState::Accepted);

    // The handlers finish in a later activation (say, after an activity).
    store
        .signal(&"order-3".into(), "poke", payload("1"))
        .unwrap();
    let task = claim(&store, run);
    let done = vec![
        Event::UpdateCompleted {
            update_id: "u1".into(),
            result: payload("\"label reprinted\""),
        },
        Event::UpdateFailed {
            update_id: "u2".into(),
            failure: Failure::application("too-late", "label already printed"),
        },
    ];
    store
        .commit_activation(commit(&task, done, vec![]))
        .unwrap();
    assert_eq!(
        state(&store, run, "u1"),
        UpdateState::Completed(payload("\"label reprinted\""))
    );
    assert!(matches!(state(&store, run, "u2"), UpdateState::Failed(f) if f.kind == "too-late"));
    let history = store.read_history(run).unwrap();
    let kinds: Vec<&str> = history.iter().map(Event::kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| k.starts_with("Update")).count(),
        4,
        "accepted ×2, completed, failed: {kinds:?}"
    );
    assert!(!kinds.contains(&"UpdateRequested"));
}

fn commits_that_skip_a_step_or_record_a_request_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-4", at(0));
    activate(&store, run, at(10), vec![]);
    request(&store, "order-4", "u1").unwrap();
    let task = claim(&store, run);

    // Answered before it was accepted.
    let early = Event::UpdateCompleted {
        update_id: "u1".into(),
        result: payload("1"),
    };
    let err = store
        .commit_activation(commit(&task, vec![early], vec![]))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidCommit { reason, .. } if reason.contains("requested to completed")),
        "{err}"
    );
    // Never requested.
    let err = store
        .commit_activation(commit(&task, vec![accepted("nope")], vec![]))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidCommit { reason, .. } if reason.contains("never requested")),
        "{err}"
    );
    // The request itself is not history.
    let err = store
        .commit_activation(commit_for(&task, at(200), vec![]))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidCommit { reason, .. } if reason.contains("UpdateRequested")),
        "{err}"
    );
    // Nothing of the refused commits was written.
    assert_eq!(state(&store, run, "u1"), UpdateState::Requested);
    store
        .commit_activation(commit(&task, vec![accepted("u1")], vec![]))
        .unwrap();
    assert_eq!(state(&store, run, "u1"), UpdateState::Accepted);
}

fn requests_to_closed_or_unknown_workflows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(matches!(
        request(&store, "nobody", "u1"),
        Err(StoreError::WorkflowNotFound { .. })
    ));
    let run = start(&store, "order-5", at(0));
    activate(
        &store,
        run,
        at(10),
        vec![Event::WorkflowCompleted {
            result: payload("null"),
        }],
    );
    assert!(matches!(
        request(&store, "order-5", "u1"),
        Err(StoreError::WorkflowClosed { .. })
    ));
    assert!(store.update_record(run, "u1").unwrap().is_none());
}

async fn a_waiter_learns_the_answer_or_that_the_run_closed_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = start(&store, "order-6", at(0));
    activate(&store, run, at(10), vec![]);
    request(&store, "order-6", "u1").unwrap();
    request(&store, "order-6", "u2").unwrap();

    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.wait_update(run, "u1").await })
    };
    let task = claim(&store, run);
    let rejection = UpdateRejection {
        update_id: "u1".into(),
        reason: "no".into(),
    };
    // u2 stays unread: the run completes in the same activation.
    let c = commit(
        &task,
        vec![Event::WorkflowCompleted {
            result: payload("null"),
        }],
        vec![rejection],
    );
    store.commit_activation(c).unwrap();

    match waiter.await.unwrap().unwrap() {
        UpdateWait::Answered(r) => assert_eq!(r.state, UpdateState::Rejected("no".into())),
        other => panic!("expected an answer, got {other:?}"),
    }
    match store.wait_update(run, "u2").await.unwrap() {
        UpdateWait::RunClosed { update, record } => {
            assert_eq!(update.state, UpdateState::Requested);
            assert!(!record.status.is_open());
        }
        other => panic!("expected the run to have closed, got {other:?}"),
    }
    assert!(matches!(
        store.wait_update(run, "never").await,
        Err(StoreError::UpdateNotFound { .. })
    ));
}

on_both_engines! {
    fn a_request_waits_in_the_inbox_and_a_repeat_is_the_same_request;
    fn a_rejected_update_is_answered_and_leaves_no_trace_in_the_history;
    fn an_accepted_update_is_answered_by_the_commit_of_its_result;
    fn commits_that_skip_a_step_or_record_a_request_are_refused;
    fn requests_to_closed_or_unknown_workflows_are_refused;
    async fn a_waiter_learns_the_answer_or_that_the_run_closed_first;
}
