//! What `Client::update_with_id` does when the run it asked closes before
//! answering. The store is driven by hand here (no worker), so the order of
//! events is exact: the request sits unread in the inbox when the run
//! closes.

use refrain::{Client, ClientError, Event, Payload, RunStatus, Store, StoreConfig, Update};
use refrain_history::{
    Activation, ActivationCommit, DurabilityMode, IdConflictPolicy, RunId, StartRequest, Timestamp,
    UpdateRejection,
};
use std::time::Duration;

struct Rename;
impl Update for Rename {
    const NAME: &'static str = "rename";
    type Args = String;
    type Result = String;
}

fn store(dir: &std::path::Path) -> Store {
    let config = StoreConfig {
        durability: DurabilityMode::None,
        ..StoreConfig::default()
    };
    Store::open(dir, config).unwrap()
}

fn p(s: &str) -> Payload {
    Payload::from_bytes(s.as_bytes().to_vec())
}

/// Waits until `run` has an update request in its inbox and claims it.
async fn claim_with_request(store: &Store, run: RunId) -> Activation {
    loop {
        if let Some(task) = store.claim_activation(run).unwrap() {
            if task.inbox.iter().any(Event::is_inbox_only) {
                return task;
            }
            store.release_activation(run, task.token, None).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Commits `task` with `commands`, consuming its whole inbox (update
/// requests left out of the history, as a worker does).
fn commit(store: &Store, task: &Activation, commands: Vec<Event>, rejected: Vec<UpdateRejection>) {
    let mut events = vec![Event::ActivationStarted {
        time: Timestamp(2_000),
    }];
    events.extend(task.inbox.iter().filter(|e| !e.is_inbox_only()).cloned());
    events.extend(commands);
    store
        .commit_activation(ActivationCommit {
            run: task.run,
            token: task.token,
            expected_last_seq: task.record.last_seq,
            inbox_upto: task.inbox_upto,
            events,
            rejected_updates: rejected,
            awaited_signals: Vec::new(),
        })
        .unwrap();
}

fn start(store: &Store) -> RunId {
    let out = store
        .start_workflow(StartRequest {
            workflow_id: "doc-1".into(),
            workflow_type: "doc".into(),
            input: p("null"),
            on_conflict: IdConflictPolicy::Reject,
            seed: 1,
            now: Timestamp(1_000),
        })
        .unwrap();
    let task = store.claim_activation(out.run).unwrap().unwrap();
    commit(store, &task, vec![], vec![]);
    out.run
}

#[tokio::test]
async fn a_request_unread_when_the_run_continues_as_new_goes_to_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let first = start(&store);
    let client = Client::new(store.clone());
    let caller = tokio::spawn(async move {
        client
            .update_with_id::<Rename>("doc-1", "r1", &"draft-2".into())
            .await
    });

    // The first run continues as new without looking at the request.
    let task = claim_with_request(&store, first).await;
    let next = Event::WorkflowContinuedAsNew {
        input: p("null"),
        seed: 2,
        carried_signals: vec![],
    };
    commit(&store, &task, vec![next], vec![]);
    let (second, record) = store.latest_run(&"doc-1".into()).unwrap().unwrap();
    assert_ne!(second, first);
    assert!(record.status.is_open());

    // The client sent it on: the second run's validator refuses it.
    let task = claim_with_request(&store, second).await;
    let no = UpdateRejection {
        update_id: "r1".into(),
        reason: "locked".into(),
    };
    commit(&store, &task, vec![], vec![no]);
    match caller.await.unwrap() {
        Err(ClientError::UpdateRejected { reason, .. }) => assert_eq!(reason, "locked"),
        other => panic!("expected the second run's answer, got {other:?}"),
    }
}

#[tokio::test]
async fn an_accepted_update_whose_run_completes_first_is_not_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let run = start(&store);
    let client = Client::new(store.clone());
    let caller = tokio::spawn(async move {
        client
            .update_with_id::<Rename>("doc-1", "r1", &"draft-2".into())
            .await
    });
    let task = claim_with_request(&store, run).await;
    let accept = Event::UpdateAccepted {
        update_id: "r1".into(),
        name: "rename".into(),
        input: p("\"draft-2\""),
    };
    let done = Event::WorkflowCompleted { result: p("null") };
    commit(&store, &task, vec![accept, done], vec![]);
    match caller.await.unwrap() {
        Err(ClientError::UpdateNotAnswered {
            accepted, status, ..
        }) => {
            assert!(accepted);
            assert_eq!(status, RunStatus::Completed);
        }
        other => panic!("expected no answer, got {other:?}"),
    }
}
