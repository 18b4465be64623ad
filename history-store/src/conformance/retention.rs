//! Cases of retention: purging closed runs whose time is up, and nothing
//! else.

use super::{activate, callsite, commit_for, p, start, task_of, Fixture};
use crate::event::{Event, ParentClosePolicy};
use crate::history_store::ReadError;
use crate::ids::{CommandSeq, EventSeq, RunId, Timestamp, WorkflowId};
use crate::store::retention::{PurgeRequest, RetentionPolicy};
use crate::HistoryStore;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// Takes `run`'s activation and completes the workflow with the commit's
/// clock at `at`, which is when the run counts as closed.
async fn complete_at(store: &dyn HistoryStore, run: RunId, at: Timestamp) {
    let task = task_of(store, run).await;
    let commit = commit_for(&task, at, vec![Event::WorkflowCompleted { result: p("1") }]);
    store
        .commit_activation(commit, Default::default())
        .await
        .expect("complete");
}

/// Every run a purge under `policy` at `now` deletes (or names, with
/// `dry_run`), read in batches of `limit`.
async fn purge_all(
    store: &dyn HistoryStore,
    policy: &RetentionPolicy,
    now: Timestamp,
    limit: usize,
    dry_run: bool,
) -> Vec<RunId> {
    let mut gone = Vec::new();
    let mut req = PurgeRequest {
        limit,
        dry_run,
        ..PurgeRequest::new(policy.clone(), now)
    };
    loop {
        let batch = store.purge_closed(req.clone()).await.expect("purge");
        assert!(batch.runs.len() <= limit, "a batch longer than its limit");
        gone.extend(batch.runs.iter().map(|r| r.run));
        match batch.next {
            Some(next) => req.after = Some(next),
            None => return gone,
        }
    }
}

/// A purge deletes the closed runs whose retention passed, and only
/// them: never an open run, never a younger closed run, never a run of a
/// type the policy keeps, never the closed child of an open parent (until
/// the parent closes). A purged run reads as `RunNotFound` by number, its
/// id as never used, and a new run of the id gets a number of its own. A
/// dry run names the same runs and deletes nothing.
pub async fn purge_deletes_only_closed_runs_past_their_retention(f: &Fixture) {
    let store = f.store.as_ref();
    let t0 = Timestamp::now();
    let at = |days: u32| t0.saturating_add(DAY * days);

    let old = start(store, "ret-old").await;
    complete_at(store, old, at(1)).await;
    let young = start(store, "ret-young").await;
    complete_at(store, young, at(20)).await;
    let open = start(store, "ret-open").await;
    let parent = start(store, "ret-parent").await;
    activate(
        store,
        parent,
        vec![Event::ChildWorkflowStarted {
            cmd: CommandSeq(1),
            workflow_type: "order-to-cash".into(),
            workflow_id: WorkflowId::new("ret-child"),
            input: p("{}"),
            seed: 1,
            parent_close: ParentClosePolicy::Abandon,
            callsite: callsite(),
        }],
    )
    .await;
    let (child, _) = store
        .latest_run(&WorkflowId::new("ret-child"))
        .await
        .expect("latest")
        .expect("the child started");
    complete_at(store, child, at(1)).await;

    // Fifteen days' retention, thirty days on: `old` and `child` have
    // had their time, `young` has not; `child`'s parent is open.
    let policy = RetentionPolicy::keep_for(15 * DAY);
    let now = at(30);
    assert_eq!(purge_all(store, &policy, now, 1, true).await, [old]);
    assert!(store.run_record(old).await.expect("read").is_some());

    // A type of its own, kept longer, holds `old` back.
    let longer = policy.clone().with_type("order-to-cash", 60 * DAY);
    assert!(purge_all(store, &longer, now, 100, false).await.is_empty());

    let history_of_open = store.read_history(open, EventSeq(1)).await.expect("read");
    assert_eq!(purge_all(store, &policy, now, 1, false).await, [old]);
    match store.read_history(old, EventSeq(1)).await {
        Err(ReadError::RunNotFound { run }) => assert_eq!(run, old),
        other => panic!("the history of a purged run read as {other:?}"),
    }
    assert!(store.run_record(old).await.expect("read").is_none());
    let old_id = WorkflowId::new("ret-old");
    assert!(store.latest_run(&old_id).await.expect("read").is_none());
    for kept in [young, open, parent, child] {
        assert!(
            store.run_record(kept).await.expect("read").is_some(),
            "{kept} was purged"
        );
    }
    assert_eq!(
        store.read_history(open, EventSeq(1)).await.expect("read"),
        history_of_open
    );

    // The id starts again, with a number never used before.
    let again = start(store, "ret-old").await;
    assert!(again > old, "{again} reuses a number at or below {old}");

    // Once the parent closes, it and its child may both go.
    store
        .terminate(&WorkflowId::new("ret-parent"), "done", None)
        .await
        .expect("terminate");
    let mut gone = purge_all(store, &policy, now, 100, false).await;
    gone.sort_unstable();
    assert_eq!(gone, [parent, child]);
    assert!(store.run_record(open).await.expect("read").is_some());
    assert!(store.run_record(again).await.expect("read").is_some());
}
