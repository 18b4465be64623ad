//! Cases of what an operator's tools (an HTTP API, a dashboard, the
//! command line) add to the client side: listing by id prefix and start
//! time, signal-with-start, and firing a schedule by hand.

use super::{activate, inbox_of, p, start, start_request, task_of, Fixture};
use crate::event::{Event, Payload};
use crate::history_store::{PageRequest, ScheduleError, StartError};
use crate::ids::{EventSeq, RunId, Timestamp, WorkflowId};
use crate::store::api::{IdConflictPolicy, RunFilter};
use crate::store::records::RunStatus;
use crate::store::schedules::{OverlapPolicy, ScheduleSpec, Trigger, TriggerOutcome};
use std::collections::HashSet;
use std::time::Duration;

/// Starts `id` with its start time recorded as `at`; returns its run.
async fn start_at(f: &Fixture, id: &str, at: u64) -> RunId {
    let mut req = start_request(id, IdConflictPolicy::Reject);
    req.now = Timestamp(at);
    let outcome = f.store.start(req).await.expect("start");
    assert!(outcome.started);
    outcome.run
}

/// Every run `filter` admits, read in pages of `limit`.
async fn list_all(f: &Fixture, filter: &RunFilter, limit: usize) -> Vec<RunId> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let got = f.store.list_runs(filter, page).await.expect("list");
        assert!(got.runs.len() <= limit, "a page longer than its limit");
        for r in &got.runs {
            assert!(
                filter.admits(&r.workflow_id, &r.workflow_type, r.status, r.started_at),
                "{r:?} does not pass {filter:?}"
            );
        }
        out.extend(got.runs.iter().map(|r| r.run));
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(cursor, limit),
            None => return out,
        }
    }
}

/// A list filters by workflow id prefix and by start time (from
/// `started_after` inclusive to `started_before` exclusive), alone and
/// with each other, and pages through a filtered list neither skipping
/// nor repeating a run while runs start.
pub async fn list_filters_by_id_prefix_and_start_time(f: &Fixture) {
    const T: u64 = 1_800_000_000_000;
    let inv1 = start_at(f, "inv-1", T).await;
    let inv2 = start_at(f, "inv-2", T + 10).await;
    let po1 = start_at(f, "po-1", T + 20).await;
    let inv3 = start_at(f, "inv-3", T + 30).await;
    let inv4 = start_at(f, "inv-4", T + 40).await;

    let prefix = |text: &str| RunFilter {
        id_prefix: Some(text.to_owned()),
        ..RunFilter::default()
    };
    assert_eq!(
        list_all(f, &prefix("inv-"), 100).await,
        [inv1, inv2, inv3, inv4]
    );
    assert_eq!(list_all(f, &prefix("po-"), 100).await, [po1]);
    assert_eq!(list_all(f, &prefix(""), 100).await.len(), 5);
    assert!(list_all(f, &prefix("inv-10"), 100).await.is_empty());

    let window = RunFilter {
        started_after: Some(Timestamp(T + 10)),
        started_before: Some(Timestamp(T + 40)),
        ..RunFilter::default()
    };
    assert_eq!(list_all(f, &window, 100).await, [inv2, po1, inv3]);
    let both = RunFilter {
        id_prefix: Some("inv-".into()),
        ..window.clone()
    };
    assert_eq!(list_all(f, &both, 100).await, [inv2, inv3]);
    let empty = RunFilter {
        started_after: Some(Timestamp(T + 40)),
        started_before: Some(Timestamp(T + 40)),
        ..RunFilter::default()
    };
    assert!(list_all(f, &empty, 100).await.is_empty());

    // Pages of one over the `inv-` runs, with runs of both prefixes
    // started between pages.
    let filter = prefix("inv-");
    let mut seen = Vec::new();
    let mut page = PageRequest::first(1);
    let mut late = 0;
    loop {
        let got = f.store.list_runs(&filter, page).await.expect("list");
        seen.extend(got.runs.iter().map(|r| r.run));
        if late < 3 {
            start(&*f.store, &format!("inv-late-{late}")).await;
            start(&*f.store, &format!("po-late-{late}")).await;
            late += 1;
        }
        match got.next_cursor {
            Some(cursor) => page = PageRequest::after(cursor, 1),
            None => break,
        }
    }
    let unique: HashSet<RunId> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a run was listed twice: {seen:?}");
    let before: Vec<RunId> = seen
        .iter()
        .copied()
        .filter(|r| [inv1, inv2, inv3, inv4].contains(r))
        .collect();
    assert_eq!(before, [inv1, inv2, inv3, inv4], "skipped or reordered");
}

/// Whether `events` is exactly one signal `name` from `sender`.
fn one_signal(events: &[Event], name: &str, sender: &str) -> bool {
    matches!(events, [Event::SignalReceived { name: n, sender: Some(s), .. }]
        if n == name && s == sender)
}

/// Signal-with-start delivers to the open run of the id (starting
/// nothing), starts a run when the id was never used (its first
/// activation sees the signal, before anything else reached it), and
/// starts a new run when the latest one closed; an oversized signal is
/// refused and writes nothing.
pub async fn signal_with_start_signals_the_open_run_or_starts_one(f: &Fixture) {
    let s = &*f.store;
    let sws = |id: &str| start_request(id, IdConflictPolicy::Reject);

    // Never used: a run starts, durable, with the signal waiting for its
    // first activation.
    let fresh = s
        .signal_with_start(sws("sws-new"), "stock-resolved", p("1"), Some("ops"))
        .await
        .expect("signal with start");
    assert!(fresh.started, "{fresh:?}");
    let (latest, record) = f
        .other
        .latest_run(&WorkflowId::new("sws-new"))
        .await
        .unwrap()
        .expect("the run is visible through another handle");
    assert_eq!(latest, fresh.run);
    assert_eq!(record.status, RunStatus::Running);
    let first = task_of(s, fresh.run).await;
    assert_eq!(
        first.record.last_seq,
        EventSeq(1),
        "not its first activation"
    );
    assert!(
        one_signal(&first.inbox, "stock-resolved", "ops"),
        "{:?}",
        first.inbox
    );
    s.fail_activation(first.run, first.token, None, Some(Duration::ZERO))
        .await
        .unwrap();

    // Open: the signal goes to the run, nothing starts.
    let open = start(s, "sws-open").await;
    activate(s, open, vec![]).await;
    let to_open = s
        .signal_with_start(sws("sws-open"), "approve", p("true"), Some("ops"))
        .await
        .unwrap();
    assert_eq!((to_open.run, to_open.started), (open, false));
    assert!(one_signal(
        &inbox_of(&*f.other, open).await,
        "approve",
        "ops"
    ));

    // Closed: a new run starts with the signal; the closed one is left
    // as it was.
    s.terminate(&"sws-open".into(), "test", None).await.unwrap();
    let closed_history = s.read_history(open, EventSeq(1)).await.unwrap();
    let next = s
        .signal_with_start(sws("sws-open"), "approve", p("false"), Some("ops"))
        .await
        .unwrap();
    assert!(next.started && next.run != open, "{next:?}");
    assert_eq!(
        s.read_history(open, EventSeq(1)).await.unwrap(),
        closed_history
    );
    let task = task_of(s, next.run).await;
    assert!(
        one_signal(&task.inbox, "approve", "ops"),
        "{:?}",
        task.inbox
    );

    // Too large: refused by name, nothing written.
    let big = Payload::from_bytes(vec![b'x'; f.max_payload_bytes + 1]);
    match s
        .signal_with_start(sws("sws-big"), "approve", big, None)
        .await
    {
        Err(StartError::PayloadTooLarge { limit, .. }) => {
            assert_eq!(limit, f.max_payload_bytes);
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert!(s.latest_run(&"sws-big".into()).await.unwrap().is_none());
}

/// A trigger fires a schedule now, whatever its next fire time, paused or
/// not, as its own fire would under its overlap policy: `Skip` drops a
/// fire while the previous run is open, `BufferOne` remembers one, and
/// `AllowAll` starts every one; the schedule's next fire is unchanged,
/// and an unknown id is refused by name.
pub async fn trigger_fires_a_schedule_now_under_its_overlap_policy(f: &Fixture) {
    let s = &*f.store;
    let hourly = |id: &str, overlap| {
        ScheduleSpec::new(
            id,
            "order-to-cash",
            p("{}"),
            Trigger::Every(Duration::from_secs(3600)),
        )
        .overlap(overlap)
    };
    // Fires a second apart, so that each has its own workflow id.
    let base = Timestamp::now().0;
    let mut tick = 0;
    let mut at = move || {
        tick += 1;
        Timestamp(base + tick * 1000)
    };

    let created = s
        .create_schedule(hourly("skip", OverlapPolicy::Skip))
        .await
        .unwrap();
    let first = match s.trigger_schedule("skip", at()).await.unwrap() {
        TriggerOutcome::Started(run) => run,
        other => panic!("expected a start, got {other:?}"),
    };
    let (latest, record) = f
        .other
        .latest_run(&first.workflow_id)
        .await
        .unwrap()
        .expect("the fire's run is visible through another handle");
    assert_eq!((latest, record.status), (first.run, RunStatus::Running));
    let after = f.other.describe_schedule("skip").await.unwrap();
    assert_eq!(after.next_fire, created.next_fire, "the next fire moved");
    assert_eq!(after.last_run.as_ref(), Some(&first));
    assert_eq!(after.runs_started, 1);

    // The previous run is open: `Skip` drops the fire.
    match s.trigger_schedule("skip", at()).await.unwrap() {
        TriggerOutcome::Skipped { open, .. } => assert_eq!(open, first),
        other => panic!("expected a skip, got {other:?}"),
    }
    let after = f.other.describe_schedule("skip").await.unwrap();
    assert_eq!((after.runs_started, after.skipped), (1, 1));

    // Closed and paused: a trigger starts a run; the schedule stays paused.
    s.terminate(&first.workflow_id, "test", None).await.unwrap();
    s.pause_schedule("skip").await.unwrap();
    let second = match s.trigger_schedule("skip", at()).await.unwrap() {
        TriggerOutcome::Started(run) => run,
        other => panic!("expected a start, got {other:?}"),
    };
    assert_ne!(second.workflow_id, first.workflow_id);
    let after = f.other.describe_schedule("skip").await.unwrap();
    assert!(after.paused);
    assert_eq!(after.runs_started, 2);

    // `BufferOne`: started, then remembered behind the open run, then
    // dropped while one is remembered.
    s.create_schedule(hourly("buffer", OverlapPolicy::BufferOne))
        .await
        .unwrap();
    let open = match s.trigger_schedule("buffer", at()).await.unwrap() {
        TriggerOutcome::Started(run) => run,
        other => panic!("expected a start, got {other:?}"),
    };
    let buffered_at = at();
    assert_eq!(
        s.trigger_schedule("buffer", buffered_at).await.unwrap(),
        TriggerOutcome::Buffered {
            fire_time: buffered_at,
            open: open.clone()
        }
    );
    assert!(matches!(
        s.trigger_schedule("buffer", at()).await.unwrap(),
        TriggerOutcome::Skipped { .. }
    ));
    let after = f.other.describe_schedule("buffer").await.unwrap();
    assert_eq!(after.buffered_fire, Some(buffered_at));

    // `AllowAll`: every trigger starts a run.
    s.create_schedule(hourly("all", OverlapPolicy::AllowAll))
        .await
        .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            s.trigger_schedule("all", at()).await.unwrap(),
            TriggerOutcome::Started(_)
        ));
    }
    let runs = s
        .list_runs(
            &RunFilter {
                id_prefix: Some("all@".into()),
                ..RunFilter::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap()
        .runs;
    assert_eq!(runs.len(), 2, "{runs:?}");

    assert!(matches!(
        s.trigger_schedule("no-such-schedule", at()).await,
        Err(ScheduleError::NotFound { id }) if id == "no-such-schedule"
    ));
}
